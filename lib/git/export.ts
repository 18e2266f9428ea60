import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  openSync,
  promises as fsp,
  writeSync,
  type Stats,
} from 'node:fs';
import path from 'node:path';
import {Errors} from 'isomorphic-git';
import pLimit from 'p-limit';
import {IntegrityError} from '../support/errors.js';
import {ObjectReader} from './objects.js';
import {ObjectType} from './pack/format.js';
import {assertSafeEntryName} from './path-safety.js';
import type {GitStore} from './store.js';

/** One entry of a commit's tree, flattened. */
export type TreeFile = {
  path: string;
  oid: string;
  kind: 'file' | 'executable' | 'symlink' | 'dir' | 'gitlink';
};

/** `taken`: files placed by {@link ExportOptions.take} instead of written from git. */
export type ExportStats = {
  files: number;
  taken: number;
  symlinks: number;
  dirs: number;
  bytes: number;
};

export type ExportOptions = {
  label: string;
  entries?: TreeFile[];
  concurrency?: number;
  midway?: () => Promise<void>;
  /**
   * Place a regular file at `target` from elsewhere (the previous release) and return its stat,
   * or return undefined to have it written from git.
   */
  take?: (entry: TreeFile, target: string) => Stats | undefined;
  /** Told of every regular file once it is in place, with its stat. */
  written?: (entry: TreeFile, stat: Stats) => void;
};

const MODE_KIND: Record<string, TreeFile['kind']> = {
  '100644': 'file',
  '100755': 'executable',
  '120000': 'symlink',
  '040000': 'dir',
  '160000': 'gitlink',
};

/**
 * Every entry of the tree of `commit`, depth first, with each name checked before anything is
 * written: a hostile tree is refused whole.
 */
export async function listTree(
  store: GitStore,
  commit: string,
  label: string,
): Promise<TreeFile[]> {
  const objects = ObjectReader.open(store);
  try {
    const out: TreeFile[] = [];
    const visit = async (treeOid: string, dir: string): Promise<void> => {
      const tree = await readTreeChecked(objects, treeOid, dir, label);
      const names = new Set<string>();
      for (const entry of tree) {
        assertSafeEntryName(entry.path, dir, label);
        const rel = dir ? `${dir}/${entry.path}` : entry.path;
        // protection R16-duplicate: a name twice in a tree is refused
        if (names.has(entry.path)) {
          throw new IntegrityError(
            `Refused tree ${dir || '(root)'} in ${label}: the name "${entry.path}" appears twice.`,
            'The commit contains a corrupt tree; fix the repository.',
          );
        }
        names.add(entry.path);
        const kind = MODE_KIND[entry.mode];
        if (!kind) {
          throw new IntegrityError(`Refused ${rel} in ${label}: unknown file mode ${entry.mode}.`);
        }
        out.push({path: rel, oid: entry.oid, kind});
        if (kind === 'dir') await visit(entry.oid, rel);
      }
    };
    await visit(await objects.commitTree(commit), '');
    return out;
  } finally {
    objects.close();
  }
}

/**
 * Write the tree of `commit` into `dest` (created if missing; it must hold none of the tree's
 * paths), as `git archive` would:
 * content, the executable bit and symlinks as in git; gitlinks become empty directories.
 * Files are created with O_EXCL | O_NOFOLLOW, so nothing is ever written through a symlink.
 *
 * @example
 * await exportTree(store, sha, '/srv/app/releases/20261128T090000Z-abc1234', {label: 'app'})
 */
export async function exportTree(
  store: GitStore,
  commit: string,
  dest: string,
  options: ExportOptions,
): Promise<ExportStats> {
  const entries = options.entries ?? (await listTree(store, commit, options.label));
  const stats: ExportStats = {files: 0, taken: 0, symlinks: 0, dirs: 1, bytes: 0};
  // protection R14-fresh-dir: a release is written into a fresh directory, never over a copy
  await fsp.mkdir(dest, {mode: 0o755, recursive: true});
  // Directories first, in tree order (parents before children), so blobs can go in parallel.
  for (const entry of entries) {
    if (entry.kind === 'dir' || entry.kind === 'gitlink') {
      // protection R14-no-parents: each directory is made once, never through one already there
      await fsp.mkdir(path.join(dest, entry.path), {mode: 0o755});
      stats.dirs++;
    }
  }
  const limit = pLimit(options.concurrency ?? 16);
  const objects = ObjectReader.open(store);
  const readBlob = async (oid: string): Promise<Uint8Array> => {
    const object = await objects.read(oid);
    if (object.type !== ObjectType.blob) {
      throw new IntegrityError(`Object ${oid} in ${options.label} is not a blob.`);
    }
    return object.data;
  };
  const writeOne = async (entry: TreeFile) => {
    if (entry.kind === 'dir' || entry.kind === 'gitlink') return;
    const target = path.join(dest, entry.path);
    const taken = entry.kind === 'symlink' ? undefined : options.take?.(entry, target);
    if (taken) {
      options.written?.(entry, taken);
      stats.files++;
      stats.taken++;
      stats.bytes += taken.size;
      return;
    }
    const blob = await readBlob(entry.oid);
    if (entry.kind === 'symlink') {
      await fsp.symlink(Buffer.from(blob).toString('utf8'), target);
      stats.symlinks++;
      return;
    }
    const stat = writeNewFile(target, blob, entry.kind === 'executable' ? 0o755 : 0o644);
    options.written?.(entry, stat);
    stats.files++;
    stats.bytes += blob.length;
  };
  // Two halves, with options.midway between them (a point where a test can interrupt the write).
  const half = Math.ceil(entries.length / 2);
  try {
    await Promise.all(entries.slice(0, half).map(entry => limit(() => writeOne(entry))));
    await options.midway?.();
    await Promise.all(entries.slice(half).map(entry => limit(() => writeOne(entry))));
  } finally {
    objects.close();
  }
  return stats;
}

/**
 * Create `file` (it must not exist; a symlink in its place is not followed) with `data` and
 * `mode`, whatever the umask, and return its stat once written. Synchronous: for thousands of
 * small files a few direct syscalls each are several times faster than through the thread pool.
 */
export function writeNewFile(file: string, data: Uint8Array, mode: number): Stats {
  // protection R14-excl: files are created with O_EXCL | O_NOFOLLOW, never through a link
  const fd = openSync(
    file,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    mode,
  );
  try {
    let offset = 0;
    while (offset < data.length) offset += writeSync(fd, data, offset);
    // The umask must not decide whether a script stays executable.
    fchmodSync(fd, mode);
    return fstatSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Read one file of a commit's tree, or undefined when there is no entry at `filepath`. */
export async function readTreeFile(
  store: GitStore,
  commit: string,
  filepath: string,
): Promise<{content: Buffer; kind: TreeFile['kind']; oid: string} | undefined> {
  const objects = ObjectReader.open(store);
  try {
    let entry;
    try {
      entry = await objects.entryAt(await objects.commitTree(commit), filepath);
    } catch (error) {
      if (error instanceof Errors.NotFoundError) return undefined;
      throw treeError(error, path.posix.dirname(filepath), `commit ${commit}`);
    }
    if (!entry) return undefined;
    const kind = MODE_KIND[entry.mode] ?? 'file';
    if (kind === 'dir' || kind === 'gitlink') {
      return {content: Buffer.alloc(0), kind, oid: entry.oid};
    }
    const blob = await objects.read(entry.oid);
    if (blob.type !== ObjectType.blob)
      throw new IntegrityError(`Object ${entry.oid} is not a blob.`);
    return {content: blob.data, kind, oid: entry.oid};
  } finally {
    objects.close();
  }
}

/** Tree `oid`, with a tree that cannot be parsed reported as an {@link IntegrityError} naming where. */
async function readTreeChecked(objects: ObjectReader, oid: string, dir: string, label: string) {
  try {
    return await objects.tree(oid);
  } catch (error) {
    throw treeError(error, dir, label);
  }
}

function treeError(error: unknown, dir: string, label: string): unknown {
  if (error instanceof Errors.NotFoundError) return error;
  // A damaged store object already says what to do.
  if (error instanceof IntegrityError && error.hint) return error;
  const where = dir && dir !== '.' ? ` at ${dir}/` : '';
  return new IntegrityError(
    `Refused a tree${where} in ${label}: ${(error as Error).message}`,
    'The commit contains a path that could write outside the release or into git metadata, ' +
      'or a corrupt tree; fix the repository.',
    {cause: error},
  );
}
