import {promises as fsp, type Stats} from 'node:fs';
import {writeFileAtomic} from '../support/fs.js';
import {checkPack} from './pack/check.js';

/**
 * The file system handed to isomorphic-git: the one place that hooks into how isomorphic-git
 * (1.44) goes to the disk. It relies on these behaviours of isomorphic-git, each checked by a
 * test of its own in test/isomorphic-git-contract.test.ts, so an upgrade that changes one fails
 * there, naming it, rather than somewhere in a deploy:
 *
 * - A1. It tells a promise file system from a callback one by calling `readFile()` with no
 *   argument, on every command, and looking for a promise: answered here without the disk.
 * - A2. It looks every object up as a loose file first, `readFile(<gitdir>/objects/<2 hex>/<38
 *   hex>)`, and takes an error whose code is ENOENT as "not loose" before it searches the packs:
 *   when the fan-out directory is not in the listing of `objects/`, that error is made here.
 * - A3. It finds the packs with `readdir(<gitdir>/objects/pack)`, no options, expecting names:
 *   answered from the same listings.
 * - A4. It reaches the disk only through the methods of this object, and everything it adds or
 *   removes goes through writeFile, mkdir, rmdir, rm, unlink, rename or symlink: dropping the
 *   listings on each of those is enough for it to see its own writes at once.
 * - A5. It stats the gitdir on every command, only to tell a directory from a `.git` file: a stat
 *   up to a second old answers that.
 * - A6. A pack received by fetch or clone is stored by one `writeFile` of its bytes to
 *   `objects/pack/pack-<40 hex>.pack`, before anything reads it to index it: so every pack from
 *   the network is checked (checkPack) before isomorphic-git inflates it whole.
 * - A7 (relied on by lib/git/closure.ts, not hooked here). Reading a commit past a shallow
 *   repository's boundary is a NotFoundError: isomorphic-git does not read `shallow` to tell.
 *
 * Listings are kept for a moment, by each file system (a GitStore owns one): a listing another
 * process made stale can only make a read miss (an error), never return wrong bytes, since every
 * object is still read from the disk. Every file written goes through temp file + fsync +
 * rename, so a run killed mid-write never leaves a truncated pack index or ref behind.
 */
export type GitFs = ReturnType<typeof createGitFs>;

const LISTING_TTL_MS = 1000;
const LOOSE_OBJECT = /^(.*[/\\]objects)[/\\]([0-9a-f]{2})[/\\][0-9a-f]{38}$/;
const PACK_DIR = /[/\\]objects[/\\]pack[/\\]?$/;
const PACK_FILE = /[/\\]objects[/\\]pack[/\\]pack-[0-9a-f]+\.pack$/;

/** A file system for isomorphic-git with caches of its own (see the assumptions above). */
export function createGitFs() {
  const listings = new Map<string, {names: Set<string>; at: number}>();
  const gitdirStats = new Map<string, {stat: Stats; at: number}>();

  const listing = async (dir: string): Promise<Set<string>> => {
    const cached = listings.get(dir);
    if (cached && Date.now() - cached.at < LISTING_TTL_MS) return cached.names;
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      names = [];
    }
    const entry = {names: new Set(names), at: Date.now()};
    listings.set(dir, entry);
    return entry.names;
  };
  /** A4: any change through this file system may add objects or packs: forget every listing. */
  const changed =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      listings.clear();
      try {
        return await fn(...args);
      } finally {
        listings.clear();
      }
    };

  return {
    async readFile(file: string, options?: BufferEncoding | {encoding?: BufferEncoding | null}) {
      // A1: the probe, with no path.
      if (typeof file !== 'string') throw new TypeError('readFile: no path');
      const loose = LOOSE_OBJECT.exec(file);
      if (loose?.[1] && loose[2] && !(await listing(loose[1])).has(loose[2])) throw notFound(file);
      return fsp.readFile(file, options);
    },
    async readdir(dir: string, options?: unknown) {
      if (options === undefined && PACK_DIR.test(dir)) return [...(await listing(dir))];
      return fsp.readdir(dir, options as undefined);
    },
    writeFile: changed(async function writeFile(
      file: string,
      data: string | Uint8Array,
      options?: BufferEncoding | {mode?: number},
    ): Promise<void> {
      const mode = typeof options === 'object' && options.mode !== undefined ? options.mode : 0o644;
      // A6: a pack from the network is checked before it is stored, and so before anything
      // inflates it whole.
      if (PACK_FILE.test(file) && typeof data !== 'string') checkPack(data, 'the git server');
      await writeFileAtomic(file, data, mode);
    }),
    mkdir: changed(fsp.mkdir),
    rmdir: changed(fsp.rmdir),
    rm: changed(fsp.rm),
    unlink: changed(fsp.unlink),
    rename: changed(fsp.rename),
    /** A5: stat, with the repository directory itself remembered for a moment. */
    async stat(file: string) {
      if (!file.endsWith('.git')) return fsp.stat(file);
      const cached = gitdirStats.get(file);
      if (cached && Date.now() - cached.at < LISTING_TTL_MS) return cached.stat;
      const stat = await fsp.stat(file);
      gitdirStats.set(file, {stat, at: Date.now()});
      return stat;
    },
    lstat: fsp.lstat,
    readlink: fsp.readlink,
    symlink: changed(fsp.symlink),
  };
}

/**
 * The file system for work trees and repositories that are no GitStore (vendor-sync's checkout
 * of the vendor repo, the app work tree whose pin it updates): every read and write on those
 * goes through this one, so its listings never miss its own writes.
 */
export const gitFs = createGitFs();

function notFound(file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOENT: no such file or directory, open '${file}'`), {
    code: 'ENOENT',
    errno: -2,
    syscall: 'open',
    path: file,
  });
}
