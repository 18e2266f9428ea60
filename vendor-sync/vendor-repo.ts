import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import git, {type GitAuth, type HttpClient} from 'isomorphic-git';
import {SourceError} from '../lib/support/errors.js';
import {gitFs} from '../lib/git/isomorphic-hooks.js';
import type {Credentials} from '../lib/git/remote.js';
import {translateHttpError} from '../lib/git/remote.js';
import {parseRepoLocation, type RepoLocation} from '../lib/git/location.js';
import {sshOnSign, type SshSigner} from '../lib/signing/ssh-sign.js';
import {MANIFEST_FILE} from '../lib/pins/vendor-manifest.js';
import {checkPathTarget, pushToPath} from './local-push.js';

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
      await fse.ensureDir(dir);
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
    await fse.remove(dir);
    throw translateHttpError(error, 'clone', location.url, options.credentials !== undefined);
  }
  return {dir, pushUrl: location.url, cleanup: () => fse.remove(dir)};
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
  /** Sign the commit with this SSH key (--signing-key), as git does with user.signingkey. */
  signer?: SshSigner | undefined;
}): Promise<string | undefined> {
  const {dir} = options;
  // Nothing added or removed and the manifest as committed: nothing to stage, no commit (no
  // object written, the index left alone).
  if (options.added.length === 0 && options.removed.length === 0) {
    const head = await headCommit(dir);
    const manifest = await fsp.readFile(path.join(dir, MANIFEST_FILE)).catch(() => undefined);
    if (head && manifest) {
      // The root tree's entry names the committed manifest's blob: comparing ids needs no
      // inflating of the blob (hundreds of KB for a thousand artifacts).
      const root = await git.readTree({fs: gitFs, dir, oid: head}).catch(() => undefined);
      const committed = root?.tree.find(entry => entry.path === MANIFEST_FILE);
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
    ...(options.signer ? {signingKey: 'ssh', onSign: sshOnSign(options.signer)} : {}),
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

/** Where a push goes, checked before anything is committed. */
export type PushTarget = {
  location: RepoLocation;
  /** The branch updated there (refs/heads/…). */
  remoteRef: string;
  /** What that branch holds now (undefined: it does not exist yet). */
  head: string | undefined;
};

type RemoteAccess = {http: HttpClient; credentials: Credentials | undefined};

/**
 * Check the push target before vendor-sync commits: a URL must answer (and accept our
 * credentials), a path must be a repository a push can go to. `url` is the remote as configured;
 * a relative path is taken from the work tree, as git takes it.
 */
export async function checkPushTarget(
  options: {dir: string; url: string; remoteRef: string | undefined} & RemoteAccess,
): Promise<PushTarget> {
  const location = parseRepoLocation(options.url, {cwd: options.dir, what: 'push target'});
  const remoteRef = options.remoteRef ?? (await currentBranchRef(options.dir));
  if (location.kind === 'path') {
    return {location, remoteRef, head: await checkPathTarget(location.path, remoteRef)};
  }
  try {
    const info = await git.getRemoteInfo({
      http: options.http,
      url: location.url,
      ...auth(options.credentials),
    });
    const branch = remoteRef.replace(/^refs\/heads\//, '');
    const heads = (info.refs as {heads?: Record<string, string>} | undefined)?.heads ?? {};
    return {location, remoteRef, head: heads[branch]};
  } catch (error) {
    throw translateHttpError(error, 'reach', location.url, options.credentials !== undefined);
  }
}

async function currentBranchRef(dir: string): Promise<string> {
  const branch = await git.currentBranch({fs: gitFs, dir, fullname: true});
  if (!branch) {
    throw new SourceError(
      `The vendor work tree ${dir} is on no branch (a detached HEAD): there is nothing to push.`,
      'Check out the branch vendor-sync should commit to (git switch main).',
    );
  }
  return branch;
}

/** Push HEAD to the checked target; 'up to date' when the target already holds it. */
export async function pushVendor(
  options: {dir: string; target: PushTarget; force: boolean} & RemoteAccess,
): Promise<'pushed' | 'up to date'> {
  const {target} = options;
  const ref = await currentBranchRef(options.dir);
  if (target.location.kind === 'path') {
    return pushToPath({
      dir: options.dir,
      target: target.location.path,
      ref,
      remoteRef: target.remoteRef,
      force: options.force,
    });
  }
  const url = target.location.url;
  if (target.head && target.head === (await headCommit(options.dir))) return 'up to date';
  try {
    const result = await git.push({
      fs: gitFs,
      http: options.http,
      dir: options.dir,
      url,
      ref,
      remoteRef: target.remoteRef,
      force: options.force,
      ...auth(options.credentials),
    });
    if (!result.ok) {
      const reason =
        Object.values(result.refs).find(r => !r.ok)?.error ?? result.error ?? 'rejected';
      throw new SourceError(
        `The push to ${url} was refused: ${reason}.`,
        'Pull the vendor repository and run vendor-sync again.',
      );
    }
    return 'pushed';
  } catch (error) {
    throw translateHttpError(error, 'push to', url, options.credentials !== undefined);
  }
}
