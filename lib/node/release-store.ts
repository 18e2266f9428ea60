import {promises as fsp} from 'node:fs';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import {z} from 'zod';
import {signaturesSchema} from '../signing/recorded.js';
import {ConfigError, UsageError} from '../support/errors.js';
import {pausePoint} from '../support/pause-points.js';
import {
  fsyncDir,
  lstatOrUndefined,
  readJsonIfExists,
  tempSibling,
  writeFileAtomic,
} from '../support/fs.js';
import {CURRENT_LINK, META_DIR, RELEASE_JSON, RELEASES_DIR} from './layout.js';

const META_FILE = `${META_DIR}/${RELEASE_JSON}`;
const STAGED_PREFIX = '.creating-';

export const releaseStates = ['building', 'ready', 'live', 'retired', 'failed', 'bad'] as const;
export type ReleaseState = (typeof releaseStates)[number];

const metaSchema = z.object({
  format: z.literal(1),
  id: z.string(),
  state: z.enum(releaseStates),
  createdAt: z.string(),
  finishedAt: z.string().optional(),
  user: z.string(),
  host: z.string(),
  tool: z.object({name: z.string(), version: z.string()}),
  app: z.object({url: z.string(), requested: z.string(), sha: z.string()}),
  vendor: z
    .object({url: z.string(), sha: z.string(), source: z.enum(['deploy.json', 'submodule'])})
    .nullable(),
  error: z.string().optional(),
  /**
   * The node's own order of events, never a clock's: `seq` when the release was made, `liveSeq`
   * when it last went live (one counter for both, one more than any in releases/). Rollback and
   * prune go by these; a clock stepped back or forward between deploys changes nothing.
   */
  seq: z.number().int().nonnegative().optional(),
  liveSeq: z.number().int().nonnegative().optional(),
  /** Who signed the app and vendor commits, verified by the node's signing policy (optional). */
  signatures: signaturesSchema.optional(),
});

/** `releases/<id>/.repodeploy/release.json`: what a release is and what state it is in. */
export type ReleaseMeta = z.infer<typeof metaSchema>;

/**
 * One directory of `releases/`. `meta` is undefined when it has none (`unreadable` unset: not a
 * release this tool made, or its metadata was removed) or when its release.json cannot be read by
 * this version (`unreadable` says why: a newer format after a downgrade, an unknown state, not
 * JSON). Either is kept and reported, never switched to, never pruned on its own.
 */
export type ReleaseInfo = {
  id: string;
  dir: string;
  meta: ReleaseMeta | undefined;
  unreadable?: string;
};

const RELEASE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * The releases of one node root and the `current` symlink. The switch lives here and only here.
 */
export class ReleaseStore {
  readonly releasesDir: string;
  readonly currentLink: string;

  constructor(readonly root: string) {
    this.releasesDir = path.join(root, RELEASES_DIR);
    this.currentLink = path.join(root, CURRENT_LINK);
  }

  dir(id: string): string {
    return path.join(this.releasesDir, id);
  }

  /**
   * A new release id: UTC time, then the short app sha (`20261128T093000Z-0123abc`), so ids sort by
   * time. `explicit` (from `--release-id`) is used as given, after checking it.
   */
  async newId(now: Date, sha: string, explicit?: string): Promise<string> {
    if (explicit !== undefined) {
      checkReleaseId(explicit);
      if (await lstatOrUndefined(this.dir(explicit))) {
        throw new UsageError(
          `Release ${explicit} already exists in ${this.releasesDir}.`,
          'Give a new --release-id; a release directory is never reused.',
        );
      }
      return explicit;
    }
    const stamp = now
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}Z$/, 'Z');
    const base = `${stamp}-${sha.slice(0, 7)}`;
    for (let n = 1; ; n++) {
      const id = n === 1 ? base : `${base}-${n}`;
      // protection R8-new-id: a new release id when the directory exists
      if (!(await lstatOrUndefined(this.dir(id)))) return id;
    }
  }

  /**
   * Create `releases/<id>/` (it must not exist) with its metadata in state `building`.
   * A release dir without metadata, or still `building`, is never switched to.
   */
  async create(given: ReleaseMeta): Promise<string> {
    await fse.ensureDir(this.releasesDir);
    const meta = {...given, seq: given.seq ?? (await this.nextSeq())};
    const dir = this.dir(meta.id);
    const exists = () =>
      new UsageError(`Release ${meta.id} already exists; a release directory is never reused.`);
    if (await lstatOrUndefined(dir)) throw exists();
    // Made with its metadata under a name no listing shows, then renamed into place: a release
    // directory without metadata is then never one of ours, and is left alone.
    const staged = path.join(this.releasesDir, `${STAGED_PREFIX}${meta.id}`);
    await fse.remove(staged);
    await fse.ensureDir(path.join(staged, META_DIR), 0o755);
    await writeFileAtomic(path.join(staged, META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
    try {
      await fsp.rename(staged, dir);
    } catch (error) {
      await fse.remove(staged);
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTEMPTY') throw exists();
      throw error;
    }
    await fsyncDir(this.releasesDir);
    return dir;
  }

  /** Release directories a killed run was still making (never listed, never switched to). */
  async removeStaged(): Promise<void> {
    const names = await fsp.readdir(this.releasesDir).catch(() => [] as string[]);
    for (const name of names.filter(n => n.startsWith(STAGED_PREFIX))) {
      await fse.remove(path.join(this.releasesDir, name));
    }
  }

  async writeMeta(meta: ReleaseMeta): Promise<void> {
    await writeFileAtomic(
      path.join(this.dir(meta.id), META_FILE),
      `${JSON.stringify(meta, null, 2)}\n`,
    );
  }

  async readMeta(id: string): Promise<ReleaseMeta | undefined> {
    const read = await this.readMetaOrWhy(id);
    return 'meta' in read ? read.meta : undefined;
  }

  /** The metadata of a release, or why there is none this version can use. */
  async readMetaOrWhy(id: string): Promise<{meta: ReleaseMeta} | {missing: true} | {why: string}> {
    let data: unknown;
    try {
      data = await readJsonIfExists(path.join(this.dir(id), META_FILE));
    } catch (error) {
      return {why: `${META_FILE} is not valid JSON (${(error as Error).message})`};
    }
    if (data === undefined) return {missing: true};
    const parsed = metaSchema.safeParse(data);
    if (parsed.success) return {meta: parsed.data};
    const {format, state} = (typeof data === 'object' && data !== null ? data : {}) as {
      format?: unknown;
      state?: unknown;
    };
    if (format !== 1) {
      return {
        why: `${META_FILE} has format ${JSON.stringify(format)} (written by a newer repodeploy?)`,
      };
    }
    if (!releaseStates.includes(state as ReleaseState)) {
      return {why: `${META_FILE} has the state ${JSON.stringify(state)}, unknown to this version`};
    }
    return {
      why: `${META_FILE} does not match this version's format (${parsed.error.issues[0]?.message ?? ''})`,
    };
  }

  /** Update a release's state (and optionally more fields); going live takes the next `liveSeq`. */
  async setState(id: string, state: ReleaseState, extra: Partial<ReleaseMeta> = {}): Promise<void> {
    const meta = await this.readMeta(id);
    if (!meta) return;
    const live = state === 'live' && meta.state !== 'live' ? {liveSeq: await this.nextSeq()} : {};
    await this.writeMeta({...meta, ...extra, ...live, state});
  }

  /** One more than any sequence number recorded in releases/ (the newest is never pruned). */
  async nextSeq(): Promise<number> {
    let max = 0;
    for (const {meta} of await this.list()) max = Math.max(max, meta?.seq ?? 0, meta?.liveSeq ?? 0);
    return max + 1;
  }

  /**
   * Mark a release that did not finish `failed`, and remove its tree, keeping only its metadata
   * and install log (`.repodeploy/`) as evidence: a failed release is never switched to, and a
   * half-written tree or a half-filled node_modules must not keep the disk full for the next run.
   * The tree goes first, so the metadata can be written even when the disk was full.
   * Never for the release `current` points at.
   */
  async markFailed(id: string, extra: Partial<ReleaseMeta> = {}): Promise<void> {
    if ((await this.current()) === id) {
      throw new Error(`markFailed: ${id} is current`);
    }
    const dir = this.dir(id);
    for (const name of await fsp.readdir(dir)) {
      // protection R33-failed-tree: a failed release gives its space back (a full disk recovers)
      if (name !== META_DIR) await fse.remove(path.join(dir, name));
    }
    await this.setState(id, 'failed', extra);
  }

  /** Every release directory, oldest first. */
  async list(): Promise<ReleaseInfo[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.releasesDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const out: ReleaseInfo[] = [];
    for (const id of names.sort()) {
      if (!RELEASE_ID.test(id)) continue;
      const stat = await lstatOrUndefined(this.dir(id));
      if (!stat?.isDirectory()) continue;
      const read = await this.readMetaOrWhy(id);
      out.push({
        id,
        dir: this.dir(id),
        meta: 'meta' in read ? read.meta : undefined,
        ...('why' in read ? {unreadable: read.why} : {}),
      });
    }
    // In the order they were made: by `seq`; those made before it was recorded first, by time.
    return out.sort(
      (a, b) =>
        (a.meta?.seq ?? 0) - (b.meta?.seq ?? 0) ||
        (a.meta?.createdAt ?? '').localeCompare(b.meta?.createdAt ?? '') ||
        a.id.localeCompare(b.id),
    );
  }

  /**
   * The id `current` points at, or undefined when there is no `current` yet.
   * Anything other than a symlink into `releases/` is refused, never removed.
   */
  async current(): Promise<string | undefined> {
    const stat = await lstatOrUndefined(this.currentLink);
    if (!stat) return undefined;
    // protection R4-symlink: current must be a symlink before a switch
    if (!stat.isSymbolicLink()) {
      throw new ConfigError(
        `${this.currentLink} is a ${stat.isDirectory() ? 'directory' : 'file'}, not a symlink.`,
        'Move it out of the way by hand (it is never deleted automatically), then deploy again.',
      );
    }
    const target = await fsp.readlink(this.currentLink);
    const resolved = path.resolve(this.root, target);
    if (path.dirname(resolved) !== this.releasesDir) {
      throw new ConfigError(
        `${this.currentLink} points at ${target}, outside ${this.releasesDir}.`,
        'Point it at a release by hand, or move it away, then deploy again.',
      );
    }
    return path.basename(resolved);
  }

  /**
   * Like {@link current}, and also refuses a `current` whose release directory is gone (a dangling
   * link): before a switch, the node must be in a state a human understands.
   */
  async currentForSwitch(): Promise<string | undefined> {
    const id = await this.current();
    if (id !== undefined && !(await lstatOrUndefined(this.dir(id)))?.isDirectory()) {
      throw new ConfigError(
        `${this.currentLink} points at releases/${id}, which does not exist.`,
        'Point it at an existing release by hand (or remove the link), then run again; it is never changed automatically.',
      );
    }
    return id;
  }

  /**
   * Point `current` at `releases/<id>` atomically: a fresh symlink under a unique temporary name
   * is renamed over `current` (rename(2) replaces it in one step), then the root is fsynced.
   * Readers of `current/...` see the old release or the new one, never neither.
   */
  async switchTo(id: string): Promise<void> {
    await this.currentForSwitch(); // refuses a `current` that is not a sound symlink before anything changes
    // protection R3-fresh-temp: a fresh temporary link name per switch
    const tmp = tempSibling(this.currentLink, 'switch');
    await fsp.symlink(path.join(RELEASES_DIR, id), tmp);
    try {
      // protection R2-rename: rename(2) over current: never a moment without it
      await fsp.rename(tmp, this.currentLink);
    } catch (error) {
      await fsp.rm(tmp, {force: true});
      throw error;
    }
    await pausePoint(this.root, 'after-rename');
    await fsyncDir(this.root);
  }

  /** Remove temporary switch links left by killed runs (they are never followed). */
  async removeStaleSwitchLinks(): Promise<void> {
    const prefix = `.${CURRENT_LINK}.switch-`;
    let names: string[];
    try {
      names = await fsp.readdir(this.root);
    } catch {
      return;
    }
    for (const name of names) {
      if (!name.startsWith(prefix)) continue;
      const p = path.join(this.root, name);
      const stat = await lstatOrUndefined(p);
      if (stat?.isSymbolicLink()) await fsp.unlink(p);
    }
  }
}

export function checkReleaseId(id: string): void {
  if (!RELEASE_ID.test(id) || id === CURRENT_LINK) {
    throw new UsageError(
      `"${id}" is not a valid release id.`,
      'Use 1 to 100 characters from A-Z a-z 0-9 . _ - , starting with a letter or digit.',
    );
  }
}
