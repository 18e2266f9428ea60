import {createReadStream, createWriteStream, promises as fsp} from 'node:fs';
import {pipeline} from 'node:stream/promises';
import {checkingStream} from '../lib/pins/integrity.js';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import pLimit from 'p-limit';
import {SourceError} from '../lib/support/errors.js';
import {MANIFEST_FILE, type Artifact, type VendorManifest} from '../lib/pins/vendor-manifest.js';
import type {Http} from './http.js';
import type {Plan} from './plan.js';
import type {Progress} from './progress.js';

/**
 * A plan carried out in the work tree, not yet committed: `undo` puts every file (and the git
 * index) back as it was before; `finish` drops what undo would have needed. One of the two must
 * be called.
 */
export type AppliedPlan = {
  manifest: VendorManifest;
  undo(): Promise<void>;
  finish(): Promise<void>;
};

/**
 * Carry out a plan in the vendor work tree: download (8–16 at once, each through a temp file and
 * verified), then move the new files in, remove what nothing needs and write the manifest. Every
 * file replaced or removed is kept aside until the caller has committed, so a failure at any point
 * (a download, a move, the commit) leaves the work tree as it was.
 */
export async function applyPlan(options: {
  vendorDir: string;
  plan: Plan;
  http: Http;
  concurrency: number;
  progress: Progress;
}): Promise<AppliedPlan> {
  const {vendorDir, plan} = options;
  // Downloads land in a staging folder inside .git (same file system, outside the work tree).
  const staging = path.join(vendorDir, '.git', `vendor-sync-staging-${process.pid}`);
  await fse.remove(staging);
  const journal = new Journal(vendorDir, path.join(staging, 'aside'));
  try {
    const downloaded = await downloadAll(options, path.join(staging, 'new'));
    await journal.keepIndex();
    for (const artifact of downloaded) {
      await journal.replace(path.join(staging, 'new', ...artifact.path.split('/')), artifact.path);
    }
    for (const artifact of plan.remove) await journal.remove(artifact.path);
    const manifest = nextManifest(plan, downloaded);
    const written = path.join(staging, MANIFEST_FILE);
    await fsp.writeFile(written, `${JSON.stringify(manifest, null, 2)}\n`);
    await journal.replace(written, MANIFEST_FILE);
    const drop = () => fse.remove(staging);
    return {
      manifest,
      undo: async () => {
        await journal.undo();
        await drop();
      },
      finish: drop,
    };
  } catch (error) {
    await journal.undo();
    await fse.remove(staging);
    throw error;
  }
}

/** Every download of the plan into `dir`, verified; the artifacts as the manifest lists them. */
async function downloadAll(
  options: {plan: Plan; http: Http; concurrency: number; progress: Progress},
  dir: string,
): Promise<Artifact[]> {
  const limit = pLimit(options.concurrency);
  try {
    return await Promise.all(
      options.plan.download.map(item =>
        limit(async () => {
          const dest = path.join(dir, ...item.path.split('/'));
          const size = item.from
            ? await copyVerified(item.from, dest, item.integrity)
            : await options.http.download(item.url, dest, item.integrity, item.headers);
          options.progress.tick(`${item.ecosystem} ${item.name} ${item.version}`);
          const {ecosystem, name, version, path: rel, integrity, source} = item;
          return {ecosystem, name, version, path: rel, integrity, source, size};
        }),
      ),
    );
  } finally {
    options.progress.stop();
  }
}

/** Copy a file made by this run (a Yarn cache zip) to `dest`, checked against `integrity`. */
async function copyVerified(from: string, dest: string, integrity: string): Promise<number> {
  await fse.ensureDir(path.dirname(dest));
  await pipeline(createReadStream(from), checkingStream(integrity), createWriteStream(dest));
  return (await fsp.stat(dest)).size;
}

function nextManifest(plan: Plan, downloaded: Artifact[]): VendorManifest {
  const byPath = new Map<string, Artifact>();
  const removed = new Set(plan.remove.map(a => a.path));
  for (const artifact of plan.manifest.artifacts)
    if (!removed.has(artifact.path)) byPath.set(artifact.path, artifact);
  for (const artifact of downloaded) byPath.set(artifact.path, artifact);
  return {format: 1, artifacts: sortArtifacts([...byPath.values()])};
}

/**
 * What a run changed in the work tree, in order, with what it replaced kept aside: undone in
 * reverse. Renames only (aside is on the same file system, inside .git).
 */
class Journal {
  private readonly steps: Array<() => Promise<void>> = [];
  private count = 0;

  constructor(
    private readonly dir: string,
    private readonly aside: string,
  ) {}

  /** The git index as it is now, restored by undo (the commit stages into it). */
  async keepIndex(): Promise<void> {
    const index = path.join(this.dir, '.git', 'index');
    const copy = await this.asidePath();
    const had = await fsp.copyFile(index, copy).then(
      () => true,
      () => false,
    );
    this.steps.push(() => (had ? fsp.copyFile(copy, index) : fsp.rm(index, {force: true})));
  }

  /** Move `from` to the work-tree path `rel`, keeping aside what was there. */
  async replace(from: string, rel: string): Promise<void> {
    const target = path.join(this.dir, ...rel.split('/'));
    const old = await this.setAside(target);
    let made: string[];
    try {
      made = await makeParents(path.dirname(target), this.dir);
      await fsp.rename(from, target);
    } catch (error) {
      if (old) await fsp.rename(old, target);
      throw inTheWay(error, rel);
    }
    this.steps.push(async () => {
      await fsp.rm(target, {force: true});
      if (old) await fsp.rename(old, target);
      for (const dir of made.reverse()) await fsp.rmdir(dir).catch(() => undefined);
    });
  }

  /** Remove the work-tree path `rel` (kept aside), and the folders it leaves empty. */
  async remove(rel: string): Promise<void> {
    const target = path.join(this.dir, ...rel.split('/'));
    const old = await this.setAside(target);
    const emptied = await removeEmptyParents(path.dirname(target), this.dir);
    this.steps.push(async () => {
      for (const dir of emptied.reverse()) await fsp.mkdir(dir).catch(() => undefined);
      if (old) await fsp.rename(old, target);
    });
  }

  async undo(): Promise<void> {
    for (const step of this.steps.reverse()) await step();
    this.steps.length = 0;
  }

  private async setAside(target: string): Promise<string | undefined> {
    const exists = await fsp.lstat(target).then(
      () => true,
      () => false,
    );
    if (!exists) return undefined;
    const aside = await this.asidePath();
    await fsp.rename(target, aside);
    return aside;
  }

  private async asidePath(): Promise<string> {
    await fse.ensureDir(this.aside);
    return path.join(this.aside, String(this.count++));
  }
}

/** A file of the maintainer's where vendor-sync needs a folder (or the reverse): say which. */
function inTheWay(error: unknown, rel: string): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== 'ENOTDIR' && code !== 'EEXIST' && code !== 'EISDIR') return error;
  return new SourceError(
    `Could not place ${rel} in the vendor work tree: something that is not a folder is in the way (${code}).`,
    'Move the file that stands where vendor-sync writes (npm/, pypi/, github/ hold only what vendor-sync writes) and run it again; nothing was changed.',
    {cause: error},
  );
}

export function sortArtifacts(artifacts: Artifact[]): Artifact[] {
  return [...artifacts].sort(
    (a, b) =>
      a.ecosystem.localeCompare(b.ecosystem) ||
      a.name.localeCompare(b.name) ||
      a.version.localeCompare(b.version) ||
      a.path.localeCompare(b.path),
  );
}

/** Make the missing folders from `dir` up to `stopAt`; the ones made, outermost first. */
async function makeParents(dir: string, stopAt: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = dir; d.startsWith(`${stopAt}${path.sep}`); d = path.dirname(d)) {
    const exists = await fsp.lstat(d).then(
      () => true,
      () => false,
    );
    if (exists) break;
    missing.unshift(d);
  }
  for (const d of missing) await fsp.mkdir(d);
  return missing;
}

/** Remove the empty folders from `dir` up to `stopAt`; the ones removed, innermost first. */
async function removeEmptyParents(dir: string, stopAt: string): Promise<string[]> {
  const removed: string[] = [];
  for (let d = dir; d.startsWith(`${stopAt}${path.sep}`); d = path.dirname(d)) {
    try {
      await fsp.rmdir(d);
    } catch {
      break;
    }
    removed.push(d);
  }
  return removed;
}
