import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import git, {type GitAuth, type HttpClient} from 'isomorphic-git';
import {SourceError} from '../lib/errors.js';
import {gitFs} from '../lib/git/fs.js';
import type {Credentials} from '../lib/git/remote.js';
import {translateHttpError} from '../lib/git/remote.js';
import {parseRepoLocation} from '../lib/repo-location.js';
import {MANIFEST_FILE} from '../lib/vendor-manifest.js';

/** A vendor repository work tree to write into: the maintainer's own, or a fresh clone of a URL. */
export type VendorRepo = {
  dir: string;
  /** The URL pushes go to (the clone's URL, or the work tree's `origin`). */
  pushUrl: string | undefined;
  cleanup: () => Promise<void>;
};

function auth(credentials: Credentials | undefined) {
  return {
    onAuth: (): GitAuth => (credentials ? {...credentials} : {cancel: true}),
    onAuthFailure: (): GitAuth => ({cancel: true}),
  };
}

/** Open `--vendor`: a work tree path (made a repository if it is a new empty directory) or a URL to clone. */
export async function openVendorRepo(options: {
  vendor: string;
  cwd: string;
  http: HttpClient;
  credentials: Credentials | undefined;
  branch?: string | undefined;
}): Promise<VendorRepo> {
  const location = parseRepoLocation(options.vendor, {cwd: options.cwd, what: 'vendor repository'});
  if (location.kind === 'path') {
    const dir = location.path;
    const dotgit = await fsp.stat(path.join(dir, '.git')).catch(() => undefined);
    if (!dotgit) {
      const entries = await fsp.readdir(dir).catch(() => undefined);
      if (entries && entries.length > 0) {
        throw new SourceError(
          `${dir} is not a git work tree.`,
          'Give the work tree of the vendor repository (or a new empty directory, or its URL).',
        );
      }
      await fsp.mkdir(dir, {recursive: true});
      await git.init({fs: gitFs, dir, defaultBranch: 'main'});
    }
    const pushUrl = (await git.getConfig({fs: gitFs, dir, path: 'remote.origin.url'})) as
      string | undefined;
    return {dir, pushUrl, cleanup: () => Promise.resolve()};
  }
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-vendor-'));
  try {
    await git.clone({
      fs: gitFs,
      http: options.http,
      dir,
      url: location.url,
      singleBranch: true,
      ...(options.branch ? {ref: options.branch} : {}),
      ...auth(options.credentials),
    });
  } catch (error) {
    await fsp.rm(dir, {recursive: true, force: true});
    throw translateHttpError(error, 'clone', location.url, options.credentials !== undefined);
  }
  return {dir, pushUrl: location.url, cleanup: () => fsp.rm(dir, {recursive: true, force: true})};
}

/**
 * Stage exactly the paths vendor-sync changed and commit them. Returns the new commit id, or
 * undefined when nothing changed.
 */
export async function commitVendor(options: {
  dir: string;
  added: string[];
  removed: string[];
  message: string;
  author: {name: string; email: string};
  now: Date;
}): Promise<string | undefined> {
  const {dir} = options;
  // Nothing added or removed and the manifest as committed: nothing to stage, no commit (no
  // object written, the index left alone).
  if (options.added.length === 0 && options.removed.length === 0) {
    const head = await headCommit(dir);
    const manifest = await fsp.readFile(path.join(dir, MANIFEST_FILE)).catch(() => undefined);
    if (head && manifest) {
      const committed = await git
        .readBlob({fs: gitFs, dir, oid: head, filepath: MANIFEST_FILE})
        .catch(() => undefined);
      const {oid} = await git.hashBlob({object: manifest});
      if (committed?.oid === oid) return undefined;
    }
  }
  for (const filepath of [...options.added, MANIFEST_FILE])
    await git.add({fs: gitFs, dir, filepath});
  for (const filepath of options.removed) await git.remove({fs: gitFs, dir, filepath});
  const matrix = await git.statusMatrix({
    fs: gitFs,
    dir,
    filepaths: [...options.added, ...options.removed, MANIFEST_FILE],
  });
  const changed = matrix.some(([, head, , stage]) => head !== stage);
  if (!changed) return undefined;
  const timestamp = Math.floor(options.now.getTime() / 1000);
  return git.commit({
    fs: gitFs,
    dir,
    message: options.message,
    author: {...options.author, timestamp, timezoneOffset: 0},
  });
}

/** The commit HEAD points at, if any. */
export async function headCommit(dir: string): Promise<string | undefined> {
  try {
    return await git.resolveRef({fs: gitFs, dir, ref: 'HEAD'});
  } catch {
    return undefined;
  }
}

/** Push HEAD to `remoteRef` of `url`. */
export async function pushVendor(options: {
  dir: string;
  url: string;
  /** Remote branch to update; the current branch of the same name when undefined. */
  remoteRef: string | undefined;
  force: boolean;
  http: HttpClient;
  credentials: Credentials | undefined;
}): Promise<void> {
  const branch = (await git.currentBranch({fs: gitFs, dir: options.dir, fullname: true})) ?? 'HEAD';
  try {
    const result = await git.push({
      fs: gitFs,
      http: options.http,
      dir: options.dir,
      url: options.url,
      ref: branch,
      ...(options.remoteRef ? {remoteRef: options.remoteRef} : {}),
      force: options.force,
      ...auth(options.credentials),
    });
    if (!result.ok) {
      const reason =
        Object.values(result.refs).find(r => !r.ok)?.error ?? result.error ?? 'rejected';
      throw new SourceError(
        `The push to ${options.url} was refused: ${reason}.`,
        'Pull the vendor repository and run vendor-sync again.',
      );
    }
  } catch (error) {
    throw translateHttpError(error, 'push to', options.url, options.credentials !== undefined);
  }
}
