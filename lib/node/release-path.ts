import {promises as fsp} from 'node:fs';
import path from 'node:path';
import type {DeployConfig} from '../pins/deploy-config.js';
import {ReleasePathError} from '../support/errors.js';
import type {TreeFile} from '../git/export.js';
import {META_DIR} from './layout.js';

/**
 * The paths `deploy.json` names (shared entries, the npm install directory and its node_modules,
 * pip's requirements file and virtualenv), resolved inside a release one component at a time
 * without following links. The deployer runs as root and removes, links and installs at these
 * paths: a symlink the app tree commits on the way (`var -> /var/lib/app`, `up -> ..`) would
 * carry that outside the release or into another release, so any link on the way is refused, as
 * is the release's own metadata directory. Checked from the tree listing before anything is
 * written, and on disk once the release is written, before anything is removed or installed.
 */

/** One path `deploy.json` names, with the key that names it. */
export type NamedPath = {
  /** The deploy.json key, as a user finds it in the file: `shared[0]`, `install.venv`. */
  key: string;
  /** The value as written. */
  declared: string;
  /** Its components; none is empty, "." or "..". Empty for the release directory itself. */
  parts: string[];
  /**
   * An installer writes anywhere beneath it (a virtualenv): a link anywhere below is refused too,
   * should the app tree commit a directory there.
   */
  below?: boolean;
};

/** What one path of the release is: from the app tree listing, or from the disk. */
export type PathNode =
  | {kind: 'missing' | 'dir' | 'file'}
  /** A gitlink in the listing: its content (the vendor tree) is checked on disk once written. */
  | {kind: 'opaque'}
  | {kind: 'symlink'; target: string}
  | {kind: 'other'; what: string};

/** What is at `rel` (a path relative to the release), and how to name where it was seen. */
export type PathLookup = {
  where: string;
  at: (rel: string) => Promise<PathNode>;
  /** The first symlink anywhere beneath the directory `rel`, if any. */
  linkBelow: (rel: string) => Promise<{path: string; target: string} | undefined>;
};

/**
 * Split `declared` into its components and refuse what can never be a path inside the release:
 * absolute, `..`, the release's metadata directory, and (unless `allowRoot`) the release itself.
 *
 * @example
 * namedPath('shared[0]', 'var/uploads/') // {key: 'shared[0]', declared: 'var/uploads/', parts: ['var', 'uploads']}
 */
export function namedPath(key: string, declared: string, allowRoot = false): NamedPath {
  const refuse = (why: string) =>
    new ReleasePathError(
      `deploy.json "${key}": ${JSON.stringify(declared)} ${why}.`,
      'Name a path inside the release in deploy.json (docs/deploy-json.md), and commit the fix.',
    );
  if (declared.startsWith('/') || declared.includes('\\') || declared.includes('\0')) {
    throw refuse('must be a relative path with "/" separators');
  }
  const parts = declared.split('/').filter(part => part !== '' && part !== '.');
  if (parts.includes('..')) throw refuse('leaves the release ("..")');
  // protection R34-metadata: deploy.json may not name .repodeploy, the release metadata
  if (parts[0]?.toLowerCase() === META_DIR) {
    throw refuse(`names ${META_DIR}, the release's own metadata, which only the deployer writes`);
  }
  if (parts.length === 0 && !allowRoot) throw refuse('names the release directory itself');
  return {key, declared, parts};
}

/** Every path `config` names, each checked by {@link namedPath}. */
export function namedPaths(config: DeployConfig): NamedPath[] {
  const out = (config.shared ?? []).map((entry, i) => namedPath(`shared[${i}]`, entry));
  const install = config.install;
  if (install?.type === 'npm' || install?.type === 'pnpm' || install?.type === 'yarn') {
    const dir = namedPath('install.directory', install.directory, true);
    out.push(dir, {...dir, parts: [...dir.parts, 'node_modules']});
  } else if (install?.type === 'pip') {
    out.push(namedPath('install.requirements', install.requirements), {
      ...namedPath('install.venv', install.venv),
      below: true,
    });
  } else if (install?.type === 'uv' || install?.type === 'poetry') {
    out.push(namedPath('install.lockfile', install.lockfile), {
      ...namedPath('install.venv', install.venv),
      below: true,
    });
  }
  return out;
}

/**
 * Walk `named` from the release directory down, component by component; throw a ReleasePathError
 * naming the key, the path and the link (with its target) at the first symlink, or at a file or
 * special file with more components below it. A missing component ends the walk: the deployer or
 * the installer creates it as a real directory.
 */
export async function resolveNamedPath(named: NamedPath, lookup: PathLookup): Promise<void> {
  let kind: PathNode['kind'] = 'dir';
  for (let i = 0; i < named.parts.length; i++) {
    const rel = named.parts.slice(0, i + 1).join('/');
    const node = await lookup.at(rel);
    if (node.kind === 'missing' || node.kind === 'opaque') return;
    // protection R34-symlink: no symlink on the way of a path deploy.json names
    if (node.kind === 'symlink') {
      throw pathError(
        named,
        `goes through ${rel}, a symlink to ${shownTarget(node.target)} in ${lookup.where}`,
      );
    }
    if (node.kind === 'other') throw pathError(named, `goes through ${rel}, ${node.what}`);
    if (node.kind === 'file' && i < named.parts.length - 1) {
      throw pathError(named, `goes through ${rel}, a file in ${lookup.where}`);
    }
    kind = node.kind;
  }
  // protection R34-venv-links: no link anywhere inside a virtualenv directory the app tree commits
  if (!named.below || kind !== 'dir' || named.parts.length === 0) return;
  const link = await lookup.linkBelow(named.parts.join('/'));
  if (link) {
    throw pathError(
      named,
      `has ${link.path} in it, a symlink to ${shownTarget(link.target)} in ${lookup.where}`,
    );
  }
}

/** A link target as the message shows it: quoted when it holds control characters (a newline). */
function shownTarget(target: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(target) ? JSON.stringify(target) : target;
}

function pathError(named: NamedPath, why: string): ReleasePathError {
  const rel = named.parts.join('/');
  const shown = rel === named.declared.replace(/\/+$/, '') ? '' : ` (${rel})`;
  return new ReleasePathError(
    `deploy.json "${named.key}": ${JSON.stringify(named.declared)}${shown} ${why}. ` +
      'Paths deploy.json names are resolved inside the release without following links.',
    'Name the real path in deploy.json, or commit a real directory in place of the link; ' +
      'nothing was removed or written outside the new release and current was not switched.',
  );
}

/**
 * Check every path `config` names against the app tree listing, before anything is written.
 * `readLink` gives the target of a symlink entry (for the message).
 */
export async function checkTreePaths(
  tree: TreeFile[],
  config: DeployConfig,
  where: string,
  readLink: (rel: string) => Promise<string>,
): Promise<void> {
  const byPath = new Map(tree.map(entry => [entry.path, entry]));
  const lookup: PathLookup = {
    where,
    at: async rel => {
      const entry = byPath.get(rel);
      if (!entry) return {kind: 'missing'};
      if (entry.kind === 'symlink') return {kind: 'symlink', target: await readLink(rel)};
      if (entry.kind === 'dir') return {kind: 'dir'};
      if (entry.kind === 'gitlink') return {kind: 'opaque'};
      return {kind: 'file'};
    },
    linkBelow: async rel => {
      const entry = tree.find(e => e.kind === 'symlink' && e.path.startsWith(`${rel}/`));
      return entry ? {path: entry.path, target: await readLink(entry.path)} : undefined;
    },
  };
  for (const named of namedPaths(config)) await resolveNamedPath(named, lookup);
}

/** What is at `rel` under `releaseDir` on disk, never following a link. */
function diskLookup(releaseDir: string): PathLookup {
  return {
    where: 'the release',
    at: async rel => {
      const full = path.join(releaseDir, rel);
      let stat;
      try {
        stat = await fsp.lstat(full);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {kind: 'missing'};
        throw error;
      }
      if (stat.isSymbolicLink()) return {kind: 'symlink', target: await fsp.readlink(full)};
      if (stat.isDirectory()) return {kind: 'dir'};
      if (stat.isFile()) return {kind: 'file'};
      return {kind: 'other', what: 'neither a file nor a directory'};
    },
    linkBelow: rel => firstLinkBelow(releaseDir, rel),
  };
}

/** The first symlink in the directory tree `rel` of `releaseDir` (never following one). */
async function firstLinkBelow(
  releaseDir: string,
  rel: string,
): Promise<{path: string; target: string} | undefined> {
  const entries = await fsp.readdir(path.join(releaseDir, rel), {withFileTypes: true});
  for (const entry of entries) {
    const child = `${rel}/${entry.name}`;
    if (entry.isSymbolicLink()) {
      return {path: child, target: await fsp.readlink(path.join(releaseDir, child))};
    }
    const found = entry.isDirectory() ? await firstLinkBelow(releaseDir, child) : undefined;
    if (found) return found;
  }
  return undefined;
}

/**
 * Check every path `config` names in the written release `releaseDir` (the vendor tree is
 * there now too), before shared links, hooks or the install touch anything.
 */
export async function checkReleasePaths(releaseDir: string, config: DeployConfig): Promise<void> {
  const lookup = diskLookup(releaseDir);
  for (const named of namedPaths(config)) await resolveNamedPath(named, lookup);
}

/**
 * The absolute path of `named` in `releaseDir`, checked on disk just before it is used.
 *
 * @example
 * const target = await releasePath('/srv/app/releases/r1', namedPath('shared[0]', 'var/uploads/'))
 */
export async function releasePath(releaseDir: string, named: NamedPath): Promise<string> {
  await resolveNamedPath(named, diskLookup(releaseDir));
  return path.join(releaseDir, ...named.parts);
}
