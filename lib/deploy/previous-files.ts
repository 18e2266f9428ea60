import {constants, copyFileSync, lstatSync, rmSync, type Stats} from 'node:fs';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import type {TreeFile} from '../git/export.js';
import {FILES_MANIFEST, META_DIR} from '../node/layout.js';
import type {ReleaseStore} from '../node/release-store.js';
import {writeFileAtomic} from '../support/fs.js';

/**
 * Taking the unchanged files of a new release from the previous one instead of writing them from
 * git (docs/performance.md, "Write only what changed"). Each release records, in
 * `.repodeploy/files.json`, what its write produced: per regular file the git oid and kind, and
 * the size, mtime, mode and inode it had once written. A later release takes a file from it only
 * when the oid and kind are the new entry's and the file still has that stat: a file edited,
 * replaced or turned into a symlink since is written from git instead. Files are copied, never
 * hard-linked: a file shared with the live release could then be changed through the new one.
 */

/** One regular file as written: path, oid, kind, size, mtimeMs, mode, inode. */
export type FileRecord = [string, string, 'file' | 'executable', number, number, number, number];

export type TreeRecord = {sha: string; files: FileRecord[]};

/** What the write of one release produced (`.repodeploy/files.json`). */
export type FilesManifest = {format: 1; app: TreeRecord; vendor: TreeRecord | null};

/** The previous release a new one takes unchanged files from, with what its write recorded. */
export type PreviousRelease = {dir: string; manifest: FilesManifest};

/**
 * Release `id` with its manifest, when it has one that describes the commits its release.json
 * records (a release written before manifests existed, or from a bundle, has none: all is
 * written from git).
 */
export async function previousRelease(
  releases: ReleaseStore,
  id: string | undefined,
): Promise<PreviousRelease | undefined> {
  if (!id) return undefined;
  const dir = releases.dir(id);
  const [manifest, meta] = await Promise.all([readFilesManifest(dir), releases.readMeta(id)]);
  if (!manifest || !meta || meta.app.sha !== manifest.app.sha) return undefined;
  if ((meta.vendor?.sha ?? null) !== (manifest.vendor?.sha ?? null)) return undefined;
  return {dir, manifest};
}

/** The record of a file just written (or taken), from its stat. */
export function fileRecord(entry: TreeFile, stat: Stats): FileRecord {
  const kind = entry.kind === 'executable' ? 'executable' : 'file';
  return [entry.path, entry.oid, kind, stat.size, stat.mtimeMs, stat.mode, stat.ino];
}

export async function writeFilesManifest(releaseDir: string, manifest: FilesManifest) {
  await writeFileAtomic(path.join(releaseDir, META_DIR, FILES_MANIFEST), JSON.stringify(manifest));
}

/** The manifest of a release, or undefined when it has none (older releases) or a bad one. */
export async function readFilesManifest(releaseDir: string): Promise<FilesManifest | undefined> {
  try {
    const data = JSON.parse(
      await fsp.readFile(path.join(releaseDir, META_DIR, FILES_MANIFEST), 'utf8'),
    ) as Partial<FilesManifest>;
    if (data.format !== 1 || !validTree(data.app)) return undefined;
    if (data.vendor !== null && !validTree(data.vendor)) return undefined;
    return data as FilesManifest;
  } catch {
    return undefined;
  }
}

function validTree(tree: unknown): tree is TreeRecord {
  const t = tree as Partial<TreeRecord> | undefined;
  return typeof t?.sha === 'string' && Array.isArray(t.files);
}

/**
 * The files of one tree of the previous release (its app tree, or its vendor tree under
 * `vendor/`) that a new tree may take, by path.
 */
export class PreviousFiles {
  private readonly byPath: Map<string, FileRecord>;

  constructor(
    private readonly dir: string,
    tree: TreeRecord,
  ) {
    this.byPath = new Map(tree.files.map(record => [record[0], record]));
  }

  /**
   * Copy the previous release's file for `entry` to `target` (created exclusively, as a write
   * from git is) when it is the same blob and still as it was written; return the new file's
   * stat, or undefined when it must be written from git.
   */
  take(entry: TreeFile, target: string): Stats | undefined {
    const record = this.byPath.get(entry.path);
    if (!record || record[1] !== entry.oid || record[2] !== entry.kind) return undefined;
    const source = path.join(this.dir, entry.path);
    const before = lstatOrUndefined(source);
    if (!before || !unchanged(before, record)) return undefined;
    try {
      // The destination is created exclusively (O_EXCL), as a write from git is (R14).
      copyFileSync(source, target, constants.COPYFILE_FICLONE | constants.COPYFILE_EXCL);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw error;
      rmSync(target, {force: true});
      return undefined;
    }
    // copyFile opens the source by name: had it been swapped for a link meanwhile, it shows here.
    const after = lstatOrUndefined(source);
    const copied = lstatSync(target);
    if (!after || !unchanged(after, record) || copied.size !== record[3]) {
      rmSync(target, {force: true});
      return undefined;
    }
    return copied;
  }
}

/** The lstat of `file`, or undefined when there is none to take (gone, or a parent is not a dir). */
function lstatOrUndefined(file: string): Stats | undefined {
  try {
    return lstatSync(file);
  } catch {
    return undefined;
  }
}

/** Still the regular file the record describes: one link, same size, mtime, mode and inode. */
function unchanged(stat: Stats, record: FileRecord): boolean {
  return (
    stat.isFile() &&
    stat.nlink === 1 &&
    stat.size === record[3] &&
    stat.mtimeMs === record[4] &&
    stat.mode === record[5] &&
    stat.ino === record[6]
  );
}
