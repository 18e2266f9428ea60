import {promises as fsp} from 'node:fs';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import git, {Errors} from 'isomorphic-git';
import {SourceError} from '../lib/support/errors.js';
import {collectMissingObjects} from '../lib/git/closure.js';
import {gitFs} from '../lib/git/isomorphic-hooks.js';
import {copyObjects, findGitdir} from '../lib/git/remote.js';
import {GitStore} from '../lib/git/store.js';

/**
 * A push to a repository on a path (isomorphic-git pushes over HTTP only): the objects the target
 * lacks are packed into it, then its branch is moved the way git's receive-pack moves it, under
 * the branch's `.lock` file and only from the value it had when the push started.
 */
export async function pushToPath(options: {
  /** The vendor work tree. */
  dir: string;
  /** The target repository: a bare repository or a work tree. */
  target: string;
  /** The local branch pushed (refs/heads/…). */
  ref: string;
  /** The branch it updates in the target (refs/heads/…). */
  remoteRef: string;
  force: boolean;
}): Promise<'pushed' | 'up to date'> {
  const source = path.join(options.dir, '.git');
  const head = await git.resolveRef({fs: gitFs, gitdir: source, ref: options.ref});
  const target = await openTarget(options.target, options.remoteRef);
  const old = await readRef(target.gitdir, options.remoteRef);
  if (old === head) return 'up to date';
  if (old && !options.force && !(await isAncestor(source, old, head))) {
    throw new SourceError(
      `The push to ${options.target} was refused: ${options.remoteRef} there (${old.slice(0, 12)}) is not an ancestor of ${head.slice(0, 12)}.`,
      'Pull the vendor repository and run vendor-sync again.',
    );
  }
  const repo = {fs: gitFs, gitdir: source, cache: {}};
  const missing = await collectMissingObjects(repo, target, head);
  if (missing.length > 0) await copyObjects(repo, target, missing);
  await moveRef(target.gitdir, options.remoteRef, old, head);
  return 'pushed';
}

/**
 * Check that `target` names a repository a push can go to (else throw why not); what its
 * `remoteRef` holds now.
 */
export async function checkPathTarget(
  target: string,
  remoteRef: string,
): Promise<string | undefined> {
  const store = await openTarget(target, remoteRef);
  return readRef(store.gitdir, remoteRef);
}

async function openTarget(target: string, remoteRef: string): Promise<GitStore> {
  const gitdir = await findGitdir(target);
  if (gitdir !== target) {
    // A work tree: git refuses to move the branch it has checked out (receive.denyCurrentBranch).
    const current = await git.currentBranch({fs: gitFs, gitdir, fullname: true}).catch(() => null);
    if (current === remoteRef) {
      throw new SourceError(
        `${target} is a work tree with ${remoteRef} checked out; a push would leave its files behind its branch.`,
        'Push to a bare repository (git init --bare), as git itself requires.',
      );
    }
  }
  return GitStore.open(gitdir);
}

async function readRef(gitdir: string, ref: string): Promise<string | undefined> {
  try {
    return await git.resolveRef({fs: gitFs, gitdir, ref});
  } catch (error) {
    if (error instanceof Errors.NotFoundError) return undefined;
    throw error;
  }
}

async function isAncestor(gitdir: string, ancestor: string, tip: string): Promise<boolean> {
  try {
    return await git.isDescendent({fs: gitFs, gitdir, oid: tip, ancestor, depth: -1});
  } catch (error) {
    // The target's commit is not in the work tree at all: not an ancestor.
    if (error instanceof Errors.NotFoundError) return false;
    throw error;
  }
}

/**
 * Set `ref` to `value` if it still holds `old` (undefined: absent), as git does: the new value is
 * written to `<ref>.lock` (created exclusively, so a concurrent push fails instead of racing) and
 * renamed over the ref.
 */
async function moveRef(
  gitdir: string,
  ref: string,
  old: string | undefined,
  value: string,
): Promise<void> {
  const file = path.join(gitdir, ...ref.split('/'));
  await fse.ensureDir(path.dirname(file));
  const lock = `${file}.lock`;
  let handle;
  try {
    handle = await fsp.open(lock, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    throw new SourceError(
      `The push was refused: ${lock} exists (another push is under way, or one was killed).`,
      'Wait and run vendor-sync again; remove the .lock file if no git process is running.',
    );
  }
  try {
    if ((await readRef(gitdir, ref)) !== old) {
      throw new SourceError(
        `The push was refused: ${ref} moved while vendor-sync was pushing.`,
        'Pull the vendor repository and run vendor-sync again.',
      );
    }
    await handle.writeFile(`${value}\n`);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fsp.rename(lock, file);
  } finally {
    await handle?.close();
    await fsp.rm(lock, {force: true});
  }
}
