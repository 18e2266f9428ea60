import path from 'node:path';
import semver from 'semver';
import validateName from 'validate-npm-package-name';
import type {NpmInstallSettings} from './deploy-config.js';
import {ConfigError} from '../support/errors.js';
import {hasSha512, samePin, shortIntegrity} from './integrity.js';
import {readRegularFile} from './vendor-manifest.js';
import {IntegrityProblems} from '../install/types.js';

/** One `packages` entry of package-lock.json (v2/v3) that matters here. */
type LockEntry = {
  name?: string;
  version?: string;
  resolved?: string;
  integrity?: string;
  link?: boolean;
  inBundle?: boolean;
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  os?: string[];
  cpu?: string[];
};

/**
 * One artifact the install needs: a registry tarball, named by the real package's name and
 * version (an `npm:` alias is installed under another folder name, but it is the same tarball),
 * with every lockfile path npm ci installs it at.
 */
export type NpmRequirement = {
  name: string;
  version: string;
  resolved: string;
  integrity: string;
  /** The lockfile paths (`node_modules/a/node_modules/b`) installed from this artifact. */
  keys: string[];
};

/** An operating system and CPU, as npm's `os` and `cpu` fields name them (linux, x64). */
export type Platform = {os: string; cpu: string};

export function currentPlatform(): Platform {
  return {os: process.platform, cpu: process.arch};
}

/** Parse "linux-x64" (or "linux" for any CPU). */
export function parsePlatform(text: string): Platform {
  const [os = '', cpu = '*'] = text.split('-');
  return {os, cpu};
}

/** How many paths a message lists before "and N more". */
const SHOWN_KEYS = 3;

/** `name@version` and where the lockfile installs it, for messages. */
export function describeRequirement(req: NpmRequirement): string {
  const shown = req.keys.slice(0, SHOWN_KEYS).join(', ');
  const more = req.keys.length > SHOWN_KEYS ? `, and ${req.keys.length - SHOWN_KEYS} more` : '';
  return `${req.name}@${req.version} (${shown}${more})`;
}

/**
 * The artifacts `npm ci` will install, from package-lock.json (lockfileVersion 2 or 3), one per
 * distinct tarball however many paths install it. Entries the install skips (links, bundled
 * packages, dev packages when dev is off, optional packages for another platform) and the app's
 * own packages (workspace members and `file:` folders, which live in the app tree) are left out.
 * Every other entry must carry `resolved` on an allowed registry and a sha512 `integrity`, a valid
 * package name and version, and a path that stays inside the app: anything else is refused before
 * the installer runs.
 */
export async function readLockfile(
  releaseDir: string,
  settings: NpmInstallSettings,
  platforms: Platform[] = [currentPlatform()],
): Promise<NpmRequirement[]> {
  const rel = path.posix.join(settings.directory, 'package-lock.json');
  const lock = await loadLockfile(path.join(releaseDir, settings.directory), rel);
  const problems = new IntegrityProblems('npm');
  const byArtifact = new Map<string, NpmRequirement>();
  for (const [key, entry] of Object.entries(lock.packages ?? {})) {
    if (key === '') continue;
    const keyProblem = lockKeyProblem(key);
    if (keyProblem) {
      problems.add(key, `"${key}": ${keyProblem} in ${rel}`, 'lockfile');
      continue;
    }
    if (!installsArtifact(key, entry, settings, platforms)) continue;
    const checked = checkEntry(key, entry, rel, settings.registries);
    if (typeof checked === 'string') {
      problems.add(entry.name ?? key, checked, 'lockfile');
      continue;
    }
    addRequirement(byArtifact, checked, key, rel, problems);
  }
  problems.throwIfAny(false);
  return [...byArtifact.values()];
}

async function loadLockfile(
  dir: string,
  rel: string,
): Promise<{packages?: Record<string, LockEntry>}> {
  const text = await readRegularFile(path.join(dir, 'package-lock.json'), rel);
  if (text === undefined) {
    throw new ConfigError(
      `deploy.json asks for an npm install, but the app has no ${rel}.`,
      'Commit package-lock.json (npm install writes it).',
    );
  }
  let lock: {lockfileVersion?: number; packages?: Record<string, LockEntry>};
  try {
    lock = JSON.parse(text) as typeof lock;
  } catch (error) {
    throw new ConfigError(`${rel} is not valid JSON.`, undefined, {cause: error});
  }
  if (lock.lockfileVersion !== 2 && lock.lockfileVersion !== 3) {
    throw new ConfigError(
      `${rel} has lockfileVersion ${String(lock.lockfileVersion)}; 2 or 3 is needed.`,
      'Regenerate it with npm 7 or later: npm install --package-lock-only.',
    );
  }
  return lock;
}

/**
 * Why a lockfile key is not a path npm may install at inside the app: absolute, `..`, `.`, empty
 * segments or backslashes (npm refuses such a lockfile itself, after our checks passed; say so
 * first, and never let a path leave the app).
 */
function lockKeyProblem(key: string): string | undefined {
  if (key.includes('\\') || key.includes('\0')) return 'a path with a backslash or NUL';
  if (key.startsWith('/') || /^[A-Za-z]:/.test(key)) return 'an absolute path';
  const segments = key.split('/');
  if (segments.some(s => s === '..' || s === '.' || s === '')) {
    return 'a path with "..", "." or an empty segment (it would install outside the app)';
  }
  return undefined;
}

/**
 * Whether npm ci fetches a tarball for this entry: not for links, bundled packages, the app's own
 * folders (a key with no `node_modules/` in it: a workspace member or a `file:` package), dev
 * packages when dev is off, or optional packages for none of the platforms.
 */
function installsArtifact(
  key: string,
  entry: LockEntry,
  settings: NpmInstallSettings,
  platforms: Platform[],
): boolean {
  if (entry.link || entry.inBundle) return false;
  if (!isInstalledPackagePath(key)) return false;
  if (!settings.dev && entry.dev) return false;
  const optional = entry.optional ?? (!settings.dev && entry.devOptional);
  return !optional || platforms.some(platform => platformMatches(entry, platform));
}

/** `node_modules/x` or `packages/api/node_modules/@s/y`: a folder npm installs a package into. */
function isInstalledPackagePath(key: string): boolean {
  return key.startsWith('node_modules/') || key.includes('/node_modules/');
}

/** The folder name a lockfile key installs into: the part after the last `node_modules/`. */
function folderName(key: string): string {
  return key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
}

/** The entry as an artifact, or the message that says why it cannot be vendored. */
function checkEntry(
  key: string,
  entry: LockEntry,
  rel: string,
  registries: string[],
): Omit<NpmRequirement, 'keys'> | string {
  // An alias (`"x": "npm:y@1"`) is installed in folder x from package y: the entry names y.
  const name = entry.name ?? folderName(key);
  const version = entry.version ?? '';
  const where = `${name}@${version} (${key})`;
  if (!validateName(name).validForOldPackages)
    return `${where}: "${name}" is not an npm package name`;
  if (semver.parse(version) === null) return `${where}: "${version}" is not a version`;
  if (!entry.resolved) return `${where}: no "resolved" URL in ${rel}`;
  if (!entry.integrity) return `${where}: no "integrity" in ${rel}`;
  const hostProblem = resolvedProblem(entry.resolved, registries);
  // protection R23-registry: lockfile entries resolve to the registries deploy.json names
  if (hostProblem) return `${where}: ${hostProblem}`;
  if (!hasSha512(entry.integrity)) {
    return `${where}: integrity has no sha512 hash (${shortIntegrity(entry.integrity)}); sha1 alone is too weak`;
  }
  return {name, version, resolved: entry.resolved, integrity: entry.integrity};
}

/**
 * Add one lockfile path to its artifact. The same name@version pinned with two different hashes
 * would need two tarballs for one vendored file: refused.
 */
function addRequirement(
  byArtifact: Map<string, NpmRequirement>,
  artifact: Omit<NpmRequirement, 'keys'>,
  key: string,
  rel: string,
  problems: IntegrityProblems,
): void {
  const id = `${artifact.name}@${artifact.version}`;
  const known = byArtifact.get(id);
  if (!known) {
    byArtifact.set(id, {...artifact, keys: [key]});
    return;
  }
  if (samePin(known.integrity, artifact.integrity)) {
    known.keys.push(key);
    return;
  }
  problems.add(
    artifact.name,
    `${id}: ${rel} pins it with two different hashes (${known.keys[0] ?? ''}: ${shortIntegrity(known.integrity)}, ${key}: ${shortIntegrity(artifact.integrity)})`,
    'lockfile',
  );
}

/** Why a tarball URL is not one on an allowed registry (git, file, other hosts), or undefined. */
export function resolvedProblem(resolved: string, registries: string[]): string | undefined {
  let url: URL;
  try {
    url = new URL(resolved);
  } catch {
    return `"resolved" is not a URL (${resolved}): git, file and link dependencies cannot be vendored`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return `"resolved" uses ${url.protocol} (${resolved}); only registry tarballs can be vendored`;
  }
  const prefix = registries.map(r => new URL(r).href).find(r => url.href.startsWith(r));
  if (!prefix) {
    return `"resolved" points at ${url.origin}, which is not an allowed registry (${registries.join(', ')})`;
  }
  // The part after the registry is a path on it: "//" or ":" there would make a mirror's URL,
  // built from it, point at another host.
  const rest = url.href.slice(prefix.length);
  if (rest.startsWith('/') || rest.includes('//') || rest.includes(':') || /[?#\\]/.test(rest)) {
    return `"resolved" has a path no registry serves tarballs at (${resolved})`;
  }
  return undefined;
}

export function platformMatches(
  entry: {os?: string[]; cpu?: string[]},
  platform: Platform,
): boolean {
  const matches = (list: string[] | undefined, value: string) => {
    if (!list || list.length === 0) return true;
    const denied = list.filter(v => v.startsWith('!')).map(v => v.slice(1));
    const allowed = list.filter(v => !v.startsWith('!'));
    if (denied.includes(value)) return false;
    return allowed.length === 0 || allowed.includes(value);
  };
  return (
    matches(entry.os, platform.os) && (platform.cpu === '*' || matches(entry.cpu, platform.cpu))
  );
}
