import {AsyncLocalStorage} from 'node:async_hooks';
import {promises as fsp, type Stats} from 'node:fs';
import {writeFileAtomic} from '../support/fs.js';
import {checkPack} from './pack/check.js';
import {indexPack} from './pack/indexer.js';
import {PackReader} from './pack/reader.js';

/**
 * isomorphic-git looks every object up as a loose file first and lists objects/pack on every
 * read: for a tree of thousands of blobs that is thousands of failed opens and directory reads.
 * Listings of `objects/` and `objects/pack/` are kept here for a moment (and dropped on any write
 * through this file system), so a loose object whose fan-out directory does not exist fails
 * without touching the disk. A listing another process made stale can only make a read miss
 * (an error), never return wrong bytes: every object is still read from the disk.
 */
const LISTING_TTL_MS = 1000;
const listings = new Map<string, {names: Set<string>; at: number}>();
const gitdirStats = new Map<string, {stat: Stats; at: number}>();
const LOOSE_OBJECT = /^(.*[/\\]objects)[/\\]([0-9a-f]{2})[/\\][0-9a-f]{38}$/;
const PACK_DIR = /[/\\]objects[/\\]pack[/\\]?$/;

async function listing(dir: string): Promise<Set<string>> {
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
}

function notFound(file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOENT: no such file or directory, open '${file}'`), {
    code: 'ENOENT',
    errno: -2,
    syscall: 'open',
    path: file,
  });
}

/** Any change through this file system may add objects or packs: forget every listing. */
function changed<A extends unknown[], R>(fn: (...args: A) => Promise<R>) {
  return async (...args: A): Promise<R> => {
    listings.clear();
    try {
      return await fn(...args);
    } finally {
      listings.clear();
    }
  };
}

const PACK_FILE = /[/\\]objects[/\\]pack[/\\](pack-[0-9a-f]+)\.pack$/;

/** Set around a fetch into `gitdir` (see {@link fetchIndexed}). */
const fetchScope = new AsyncLocalStorage<{gitdir: string}>();

/** Thrown from writeFile once a fetched pack and its index are stored. */
class PackStored extends Error {
  constructor(readonly packfile: string) {
    super('pack stored and indexed');
  }
}

/**
 * Run isomorphic-git's fetch into `gitdir` with the received pack indexed by
 * lib/git/pack/indexer.ts instead of by isomorphic-git (the same index `git index-pack` writes).
 * Returns the stored pack's path relative to the gitdir, or undefined when nothing was stored.
 */
export async function fetchIndexed(
  gitdir: string,
  fetch: () => Promise<unknown>,
): Promise<string | undefined> {
  try {
    const result = await fetchScope.run({gitdir}, fetch);
    // isomorphic-git returns the new pack's path, though its FetchResult type does not declare it.
    return (result as {packfile?: string}).packfile;
  } catch (error) {
    if (error instanceof PackStored) return error.packfile;
    throw error;
  }
}

/**
 * The file system handed to isomorphic-git. Every file it writes (pack, pack index, ref, config)
 * goes through temp file + fsync + rename, so a run killed mid-write never leaves a truncated
 * pack index or ref behind for the next run to trip over.
 */
export const gitFs = {
  async readFile(file: string, options?: BufferEncoding | {encoding?: BufferEncoding | null}) {
    // isomorphic-git calls readFile() with no path on every API call, to see that it returns a
    // promise: answer without going to the disk.
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
    const pack = PACK_FILE.exec(file);
    if (pack?.[1] && typeof data !== 'string') {
      // A pack from the network is checked before it is stored, and so before anything inflates
      // it whole. Inside a fetch it is also indexed here, with native zlib, and the fetch is
      // stopped (the pack was the last thing it had to store; only its index was left).
      const fetching = fetchScope.getStore();
      if (fetching) {
        // The store's packs are opened only for a thin pack's outside bases.
        let reader: PackReader | undefined;
        let index: Buffer | undefined;
        try {
          index = indexPack(data, 'the git server', oid =>
            (reader ??= PackReader.open(fetching.gitdir)).readObject(oid),
          );
        } finally {
          reader?.close();
        }
        await writeFileAtomic(file, data, mode);
        if (index) {
          await writeFileAtomic(file.replace(/\.pack$/, '.idx'), index, mode);
          throw new PackStored(`objects/pack/${pack[1]}.pack`);
        }
        // A thin pack whose bases this store lacks: isomorphic-git indexes it.
        return;
      }
      checkPack(data, 'the git server');
    }
    await writeFileAtomic(file, data, mode);
  }),
  mkdir: changed(fsp.mkdir),
  rmdir: changed(fsp.rmdir),
  rm: changed(fsp.rm),
  unlink: changed(fsp.unlink),
  rename: changed(fsp.rename),
  /** Stat, with the repository directory itself remembered (isomorphic-git stats it per call). */
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
