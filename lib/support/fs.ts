/**
 * File system helpers, and the one statement of when the code uses fs-extra and when `node:fs`.
 *
 * fs-extra (bundled into the bins by esbuild; no runtime dependency) does the ordinary tree
 * chores: `fse.remove` (a tree, or a file, gone; no error when it is missing) and `fse.ensureDir`
 * (a directory and its parents). Plain `node:fs` stays where the exact system call is the point:
 *
 * - Durability: `writeFileAtomic`, `appendLineDurable`, `fsyncDir` and `syncTree` here (used by
 *   the release store, history and lock) fsync files and directories; fs-extra's `outputFile`
 *   and `move` do not.
 * - Atomic steps: `rename(2)`, which replaces a name in one step or fails: the `current` symlink
 *   and a staged release (lib/node/release-store.ts), the lock taken by renaming a staged
 *   directory to `.lock` (lib/node/lock.ts), vendor-sync's apply, the bundle file. `fse.move`
 *   falls back to copy-and-delete across devices, which is neither.
 * - Opens with flags: `O_NOFOLLOW` for files read from an app or vendor tree
 *   (lib/pins/vendor-manifest.ts), `O_EXCL | O_NOFOLLOW` for files written out of git
 *   (lib/git/export.ts), `'wx'` for temp files no other run may share (here), `O_DIRECTORY` to
 *   fsync a directory.
 * - Symlink-safe walks that decide per entry: the install reuse copy (lib/install/reuse.ts)
 *   refuses absolute symlinks before creating them, digests exactly the listing it copies in the
 *   same pass, and clones files with `COPYFILE_FICLONE` (a reflink where the file system can);
 *   `fse.copy` would do a second pass, follow no such rule, and copy every byte.
 * - Undo logs: vendor-sync's apply makes missing folders one `mkdir` at a time to record which
 *   it made (`makeParents`), so a failed apply removes exactly those.
 * - lib/git and lib/git/pack read and write git's own files with positioned reads and writes.
 */
import {randomBytes} from 'node:crypto';
import {constants, promises as fsp} from 'node:fs';
import path from 'node:path';

/** fsync a directory so that a rename or a new entry in it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A name for a temporary sibling of `target` that no other run can pick. */
export function tempSibling(target: string, tag = 'tmp'): string {
  const base = path.basename(target);
  return path.join(
    path.dirname(target),
    `.${base}.${tag}-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
}

/**
 * Replace `file` with `data` so that readers see either the old or the new content, never a mix,
 * and the new content survives a crash once this resolves (temp file, fsync, rename, fsync dir).
 */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  mode = 0o644,
): Promise<void> {
  const tmp = tempSibling(file);
  const handle = await fsp.open(tmp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await fsp.rm(tmp, {force: true});
    throw error;
  }
  await handle.close();
  try {
    await fsp.rename(tmp, file);
  } catch (error) {
    await fsp.rm(tmp, {force: true});
    throw error;
  }
  await fsyncDir(path.dirname(file));
}

/**
 * Append one line and fsync it: for logs that must survive a crash of the writer. A file whose
 * last line was cut short (a power loss mid-append) gets a newline first, so the cut line does
 * not swallow this one.
 */
export async function appendLineDurable(file: string, line: string): Promise<void> {
  const handle = await fsp.open(file, 'a+', 0o644);
  try {
    const {size} = await handle.stat();
    const last = Buffer.alloc(1);
    if (size > 0) await handle.read(last, 0, 1, size - 1);
    // protection R41-newline: a record appended after a cut last line starts on a line of its own
    const lead = size > 0 && last[0] !== 0x0a ? '\n' : '';
    await handle.appendFile(`${lead}${line}${line.endsWith('\n') ? '' : '\n'}`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** lstat that answers undefined for a missing path instead of throwing. */
export async function lstatOrUndefined(p: string) {
  try {
    return await fsp.lstat(p);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Read and parse a JSON file; undefined when it does not exist. */
export async function readJsonIfExists(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return JSON.parse(text) as unknown;
}

/**
 * Flush everything written under `dir` to disk before it is switched to: one syncfs(2) through
 * coreutils `sync --file-system`, falling back to fsync of every file where that is missing.
 */
export async function syncTree(dir: string): Promise<void> {
  const {execFile} = await import('node:child_process');
  const ok = await new Promise<boolean>(resolve => {
    execFile('sync', ['--file-system', dir], error => {
      resolve(!error);
    });
  });
  if (ok) return;
  const walk = async (d: string): Promise<void> => {
    for (const entry of await fsp.readdir(d, {withFileTypes: true})) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.isFile()) {
        const handle = await fsp.open(p, 'r');
        await handle.sync().finally(() => handle.close());
      }
    }
    await fsyncDir(d);
  };
  await walk(dir);
}

/**
 * The first entry on the way from `root` to `root/rel` (rel itself included) that is a symlink,
 * as a path relative to `root`; undefined when there is none (or the path stops existing first).
 * An installer told to work in a folder of the app must not be led out of the release by a link
 * the app committed on the way.
 */
export async function linkOnPath(root: string, rel: string): Promise<string | undefined> {
  const parts = rel.split(/[\\/]+/).filter(part => part !== '' && part !== '.');
  for (let i = 1; i <= parts.length; i++) {
    const sub = parts.slice(0, i).join('/');
    const stat = await lstatOrUndefined(path.join(root, sub));
    if (stat === undefined) return undefined;
    if (stat.isSymbolicLink()) return sub;
  }
  return undefined;
}
