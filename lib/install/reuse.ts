import {createHash} from 'node:crypto';
import {constants, promises as fsp} from 'node:fs';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import pLimit from 'p-limit';
import {writeFileAtomic} from '../support/fs.js';
import {INSTALL_RECORD} from '../node/layout.js';

/**
 * Reusing the installed dependencies of the previous release (Zamboni rebuilt its virtualenv only
 * when the requirements changed). An installer that allows it gives a key over every input of the
 * install (lockfile, the verified artifacts' hashes, its settings, the Node and npm versions) and
 * the directories it produces. After each install the release records, in
 * `.repodeploy/install.json`, that key and a digest of each output's listing (path, type, mode,
 * size, mtime, link target). A later release with the same key copies the outputs instead of
 * installing, but only when the previous release's outputs still match their digest: a
 * node_modules edited by hand since is never carried forward.
 */

export type InstallRecord = {
  format: 1;
  key: string;
  outputs: Array<{path: string; digest: string; files: number}>;
};

export type ReuseOutcome = {reused: true; files: number} | {reused: false; reason: string};

/** What an installer gives for its install to be reused (Installer.reuse). */
export type ReuseSpec = {
  key: string;
  /** The directories the install produces, relative to the release. */
  outputs: string[];
  /** What the key covers, as the deploy output says it ("lockfile, artifacts and ..."). */
  inputs?: string;
  /**
   * Whether the outputs may hold symlinks to absolute paths outside the releases directory (a
   * virtualenv's interpreter); links into any release are refused all the same.
   */
  outsideLinks?: boolean;
  /**
   * Make the copied outputs right for the new release (a virtualenv names its own path); the
   * reason when they cannot be, for the caller to install afresh.
   */
  relocate?: (previousDir: string, releaseDir: string) => Promise<string | undefined>;
};

/** Read a release's install record, or undefined when it has none (or an unreadable one). */
export async function readInstallRecord(metaDir: string): Promise<InstallRecord | undefined> {
  try {
    const data = JSON.parse(
      await fsp.readFile(path.join(metaDir, INSTALL_RECORD), 'utf8'),
    ) as Partial<InstallRecord>;
    if (data.format !== 1 || typeof data.key !== 'string' || !Array.isArray(data.outputs))
      return undefined;
    return data as InstallRecord;
  } catch {
    return undefined;
  }
}

/** Record what the install of `releaseDir` produced, for the next release to reuse. */
export async function recordInstall(
  releaseDir: string,
  metaDir: string,
  key: string,
  outputs: string[],
  options: {outsideLinks?: boolean | undefined} = {},
): Promise<void> {
  const record: InstallRecord = {format: 1, key, outputs: []};
  const links = linkRule(releaseDir, options.outsideLinks);
  for (const output of outputs) {
    const {digest, files} = await walkTree(path.join(releaseDir, output), {links});
    record.outputs.push({path: output, digest, files});
  }
  await writeFileAtomic(path.join(metaDir, INSTALL_RECORD), `${JSON.stringify(record, null, 2)}\n`);
}

/**
 * Copy the install outputs of `previousDir` into `releaseDir` when the previous install had the
 * same key and its outputs are as it left them. On any difference nothing is left behind in
 * `releaseDir` and the reason is returned, for the caller to install afresh.
 */
export async function reuseInstall(options: {
  previousDir: string;
  previousMetaDir: string;
  releaseDir: string;
  key: string;
  outputs: string[];
  inputs?: string | undefined;
  outsideLinks?: boolean | undefined;
  relocate?: ReuseSpec['relocate'];
}): Promise<ReuseOutcome> {
  const previous = await readInstallRecord(options.previousMetaDir);
  if (!previous) return {reused: false, reason: 'the previous release recorded no install'};
  if (previous.key !== options.key) {
    return {
      reused: false,
      reason: `the ${options.inputs ?? 'lockfile, artifacts or install settings'} changed`,
    };
  }
  const wanted = [...options.outputs].sort().join('\n');
  if (
    previous.outputs
      .map(o => o.path)
      .sort()
      .join('\n') !== wanted
  ) {
    return {reused: false, reason: 'the previous install produced other directories'};
  }
  const links = linkRule(options.previousDir, options.outsideLinks);
  let files = 0;
  for (const output of previous.outputs) {
    const from = path.join(options.previousDir, output.path);
    const to = path.join(options.releaseDir, output.path);
    if (await exists(to)) {
      return {reused: false, reason: `${output.path} already exists in the new release`};
    }
    const copied = await walkTree(from, {copyTo: to, links}).catch((error: unknown) => ({
      error: error instanceof Error ? error.message : String(error),
    }));
    if ('error' in copied || copied.digest !== output.digest) {
      await fse.remove(to);
      return {
        reused: false,
        reason:
          'error' in copied
            ? `${output.path} of the previous release could not be copied (${copied.error})`
            : `${output.path} of the previous release changed since it was installed`,
      };
    }
    files += copied.files;
  }
  const refused = await options.relocate?.(options.previousDir, options.releaseDir);
  if (refused !== undefined) {
    for (const output of previous.outputs)
      await fse.remove(path.join(options.releaseDir, output.path));
    return {reused: false, reason: refused};
  }
  // The new release's own record is made by the caller once its after_install hook has run.
  return {reused: true, files};
}

type Walked = {digest: string; files: number};

/**
 * Which absolute symlink targets a walk lets through: none, or (for installers that ask) those
 * outside the releases directory, so that no link ever leads into the previous release.
 */
type LinkRule = {outside: string} | undefined;

function linkRule(releaseDir: string, outsideLinks: boolean | undefined): LinkRule {
  return outsideLinks ? {outside: path.dirname(path.resolve(releaseDir))} : undefined;
}

function allowedLink(target: string, links: LinkRule): boolean {
  if (!path.isAbsolute(target)) return true;
  if (!links) return false;
  const rel = path.relative(links.outside, path.resolve(target));
  return (rel === '..' || rel.startsWith(`..${path.sep}`)) && !path.isAbsolute(rel);
}

/**
 * Walk `dir` in a fixed order, hashing its listing; with `copyTo`, copy it there on the way
 * (copy-on-write where the file system can, symlinks as they are, modes kept). A symlink with an
 * absolute target is refused unless `links` allows it: it could point into the previous release.
 */
async function walkTree(
  dir: string,
  {copyTo, links}: {copyTo?: string; links: LinkRule},
): Promise<Walked> {
  const hash = createHash('sha256');
  const limit = pLimit(32);
  let files = 0;
  const line = (rel: string, stat: StatLike, link = '') => {
    const kind = stat.isDirectory() ? 'd' : stat.isSymbolicLink() ? 'l' : 'f';
    const size = stat.isDirectory() ? 0 : stat.size;
    hash.update(`${rel}\t${kind}\t${stat.mode.toString(8)}\t${size}\t${stat.mtimeMs}\t${link}\n`);
  };
  const visit = async (rel: string): Promise<void> => {
    const here = path.join(dir, rel);
    const names = (await fsp.readdir(here)).sort();
    const stats = await Promise.all(
      names.map(name => limit(() => fsp.lstat(path.join(here, name)))),
    );
    const copies: Array<Promise<void>> = [];
    const children: string[] = [];
    for (const [i, name] of names.entries()) {
      const stat = stats[i];
      if (!stat) continue;
      const childRel = rel ? `${rel}/${name}` : name;
      const from = path.join(dir, childRel);
      const to = copyTo ? path.join(copyTo, childRel) : undefined;
      if (stat.isSymbolicLink()) {
        const target = await fsp.readlink(from);
        if (!allowedLink(target, links)) {
          throw new Error(`${childRel} is a symlink to an absolute path`);
        }
        line(childRel, stat, target);
        if (to) await fsp.symlink(target, to);
      } else if (stat.isDirectory()) {
        line(childRel, stat);
        if (to) await fsp.mkdir(to, {mode: stat.mode & 0o7777});
        children.push(childRel);
      } else if (stat.isFile()) {
        line(childRel, stat);
        files++;
        if (to) copies.push(limit(() => copyWithTimes(from, to, stat)));
      } else {
        throw new Error(`${childRel} is not a file, directory or symlink`);
      }
    }
    await Promise.all(copies);
    for (const child of children) await visit(child);
  };
  if (copyTo) await fse.ensureDir(copyTo);
  await visit('');
  return {digest: hash.digest('hex'), files};
}

type StatLike = {
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  mode: number;
  size: number;
  mtimeMs: number;
  atime: Date;
  mtime: Date;
};

/**
 * A copy keeps its file's times, as `cp -p` does: Python trusts a .pyc only while its source's
 * mtime is the one it recorded, so a virtualenv copied with new times would compile everything
 * again on first use (and so change under the next deploy's check).
 */
async function copyWithTimes(from: string, to: string, stat: StatLike): Promise<void> {
  await fsp.copyFile(from, to, constants.COPYFILE_FICLONE);
  await fsp.utimes(to, stat.atime, stat.mtime);
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}
