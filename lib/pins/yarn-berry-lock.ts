import semver from 'semver';
import validateName from 'validate-npm-package-name';
import YAML from 'yaml';
import {ConfigError} from '../support/errors.js';
import {IntegrityProblems} from '../install/types.js';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {pinFromSha512Hex, samePin} from './integrity.js';
import type {Artifact} from './vendor-manifest.js';

/**
 * One package of a Yarn 2+ (Berry) lockfile that Yarn fetches: an npm package (`left@npm:1.1.0`)
 * or a patch of one (`resolve@patch:resolve@npm%3A1.22.8#...`), with the checksum Yarn records.
 * That checksum is over Yarn's cache zip of the package (its `cacheKey` names the zip layout),
 * not over the npm tarball.
 */
export type BerryEntry = {
  name: string;
  version: string;
  resolution: string;
  kind: 'npm' | 'patch';
  /**
   * Undefined only for a package with `conditions`: Yarn writes no checksum for one it never
   * fetched (an optional package for another platform). A node that needs it must refuse it.
   */
  checksum: {cacheKey: string; sha512Hex: string} | undefined;
  /** The lockfile descriptors resolved by this entry. */
  keys: string[];
  /** Yarn's `conditions` (`os=darwin & cpu=arm64`): fetched only where they hold. */
  conditions: string | undefined;
};

export const BERRY_LOCK_HINT =
  'Fix yarn.lock: every package needs an npm: (or builtin patch:) resolution and a checksum; git, file, link, portal and URL sources cannot be vendored. Regenerate it with the pinned Yarn (`yarn install`).';

type Raw = Record<string, unknown>;

/**
 * The packages a Berry yarn.lock pins, workspaces (the app's own) left out. Read as YAML with
 * every scalar a string (Yarn's own syml is a YAML subset: `version: 1.10` stays "1.10"). Every
 * other entry must resolve to an npm package (or a patch of one) and carry a sha512 checksum:
 * anything else is refused, every entry named.
 */
export function parseBerryLock(text: string, rel: string, registries?: string[]): BerryEntry[] {
  return readBerryLock(text, rel, registries).entries;
}

/** A Berry yarn.lock: its cache key (`10c0`, ...) and the packages Yarn fetches. */
export type BerryLock = {cacheKey: string; entries: BerryEntry[]};

/**
 * {@link parseBerryLock} with the lockfile's cache key. With `registries`, a package whose
 * resolution names a tarball URL of its own (`::__archiveUrl=`) must have it on one of them.
 */
export function readBerryLock(text: string, rel: string, registries?: string[]): BerryLock {
  let data: unknown;
  try {
    data = YAML.parse(text, {schema: 'failsafe', uniqueKeys: true});
  } catch (error) {
    throw new ConfigError(
      `${rel} does not parse as a Yarn 2+ lockfile: ${(error as Error).message}`,
    );
  }
  const lock = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
  const metadata = lock.__metadata as Raw | undefined;
  const cacheKey = typeof metadata?.cacheKey === 'string' ? metadata.cacheKey : undefined;
  if (!cacheKey || !/^[0-9a-z]+$/.test(cacheKey)) {
    throw new ConfigError(
      `${rel} has no __metadata.cacheKey.`,
      'Regenerate yarn.lock with the pinned Yarn.',
    );
  }
  const problems = new IntegrityProblems('npm', BERRY_LOCK_HINT);
  const entries: BerryEntry[] = [];
  for (const [key, value] of Object.entries(lock)) {
    if (key === '__metadata') continue;
    const checked = checkBerryEntry(key, value, cacheKey, registries);
    if (typeof checked === 'string') problems.add(key, `${checked} in ${rel}`, 'lockfile');
    else if (checked) entries.push(checked);
  }
  problems.throwIfAny(false);
  return {cacheKey, entries};
}

/** An entry as a package Yarn fetches, undefined for a workspace, or why it cannot be vendored. */
function checkBerryEntry(
  key: string,
  value: unknown,
  cacheKey: string,
  registries: string[] | undefined,
): BerryEntry | undefined | string {
  const entry = (typeof value === 'object' && value !== null ? value : {}) as Raw;
  const resolution = typeof entry.resolution === 'string' ? entry.resolution : '';
  const keys = key.split(/,\s*/);
  const where = `"${resolution || key}"`;
  const locator = /^(@[^/@]+\/[^/@]+|[^/@]+)@([a-z]+):(.*)$/.exec(resolution);
  if (!locator) return `${where}: no resolution`;
  const [, name = '', protocol = '', reference = ''] = locator;
  if (protocol === 'workspace') return undefined;
  if (protocol !== 'npm' && !(protocol === 'patch' && isNpmPatch(reference))) {
    return `${where}: a ${protocol}: source cannot be vendored (only npm: packages and patches of them)`;
  }
  if (!validateName(name).validForOldPackages) return `${where}: "${name}" is not a package name`;
  const archive = archiveUrlProblem(resolution, registries);
  if (archive) return `${where}: ${archive}`;
  const version = typeof entry.version === 'string' ? entry.version : '';
  if (semver.valid(version) !== version) return `${where}: "${version}" is not a version`;
  const checksum = parseChecksum(entry.checksum, cacheKey);
  const conditions = typeof entry.conditions === 'string' ? entry.conditions : undefined;
  if (!checksum && (entry.checksum !== undefined || conditions === undefined)) {
    return `${where}: no sha512 "checksum" (Yarn writes "<cacheKey>/<128 hex digits>")`;
  }
  return {
    name,
    version,
    resolution,
    kind: protocol === 'patch' ? 'patch' : 'npm',
    checksum,
    keys,
    conditions,
  };
}

/**
 * Yarn keeps a tarball URL that is not the registry's standard one in the resolution's
 * parameters (`left@npm:1.0.0::__archiveUrl=https%3A%2F%2F...`; inside a patch, the source is
 * percent-encoded once more). Read as Yarn reads it, the parameters decoded once, it must be on
 * an allowed registry: same protocol and host, under its path.
 */
function archiveUrlProblem(
  resolution: string,
  registries: string[] | undefined,
): string | undefined {
  const urls: string[] = [];
  const collect = (reference: string) => {
    const params = reference.split('::')[1];
    if (params === undefined) return;
    const found = new URLSearchParams(params.split('#')[0]).get('__archiveUrl');
    if (found !== null) urls.push(found);
  };
  collect(resolution);
  const patch = /^(?:@[^/@]+\/)?[^/@]+@patch:([^#]*)/.exec(resolution);
  if (patch?.[1] !== undefined) {
    try {
      collect(decodeURIComponent(patch[1]));
    } catch {
      return 'a patch source that does not decode';
    }
  }
  for (const url of urls) {
    if (registries !== undefined && !registries.some(r => underRegistry(url, r))) {
      return `its tarball ${url} is not on an allowed registry (install.registries)`;
    }
  }
  return undefined;
}

function underRegistry(url: string, registry: string): boolean {
  try {
    const u = new URL(url);
    const r = new URL(registry.endsWith('/') ? registry : `${registry}/`);
    return (
      u.protocol === r.protocol &&
      u.host === r.host &&
      u.username === '' &&
      u.password === '' &&
      u.pathname.startsWith(r.pathname)
    );
  } catch {
    return false;
  }
}

/** A patch whose source is an npm package (`resolve@npm%3A1.22.8#...`). */
function isNpmPatch(reference: string): boolean {
  return /^(@[^/@]+\/[^/@]+|[^/@]+)@npm%3A/.test(reference);
}

/** `10c0/<hex>` (Yarn 4) or a bare hex (Yarn 2/3, the lockfile's cacheKey): sha512 only. */
function parseChecksum(
  value: unknown,
  cacheKey: string,
): {cacheKey: string; sha512Hex: string} | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^(?:([0-9a-z]+)\/)?([0-9a-f]{128})$/.exec(value);
  if (!match?.[2]) return undefined;
  return {cacheKey: match[1] ?? cacheKey, sha512Hex: match[2]};
}

/** Whether Yarn fetches an entry with these `conditions` on a node of this OS, CPU and libc. */
export function berryConditionsMatch(
  conditions: string | undefined,
  platform: {os: string; cpu: string; libc?: string | undefined},
): boolean {
  if (!conditions) return true;
  return conditions.split('&').every(part => {
    const [field = '', wanted = ''] = part.trim().split('=');
    if (field === 'os') return wanted === platform.os;
    if (field === 'cpu') return platform.cpu === '*' || wanted === platform.cpu;
    if (field === 'libc') return platform.libc === undefined || wanted === platform.libc;
    return true;
  });
}

/** The C library Yarn sees on this node (`glibc` or `musl` on Linux), as its `libc` condition. */
export function currentLibc(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const report = process.report.getReport() as {header?: {glibcVersionRuntime?: string}};
  return report.header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/**
 * The settings file name Yarn is told to use while repodeploy runs it (`YARN_RC_FILENAME`): no
 * app has such a file (one that does is refused), so no project settings file is read as such.
 * Ours is written into Yarn's empty HOME under this name (Yarn 2/3 read `~/<that name>`) and as
 * `~/.yarnrc.yml` (Yarn 4 reads that one whatever the name).
 */
export const NO_PROJECT_RC = '.yarnrc.repodeploy.yml';

/** Write Yarn's settings into its HOME under both names it may read them by. */
export async function writeHomeRc(home: string, text: string): Promise<void> {
  for (const name of ['.yarnrc.yml', NO_PROJECT_RC])
    await fsp.writeFile(path.join(home, name), text);
}

/** A Yarn cache file name as Yarn writes it (`left-npm-1.0.0-812ad14604-4041b37c8f.zip`). */
const ZIP_NAME = /^[A-Za-z0-9@][A-Za-z0-9@._+-]*\.zip$/;

/** The part of a resolution after `name@` (`npm:1.0.0`, `patch:...`): the vendored version. */
export function berryReference(entry: Pick<BerryEntry, 'name' | 'resolution'>): string {
  return entry.resolution.slice(entry.name.length + 1);
}

/** The vendor path of a cache zip: `yarn/<cacheKey>/<Yarn's file name>`. */
export function berryZipPath(cacheKey: string, fileName: string): string {
  return `yarn/${cacheKey}/${fileName}`;
}

/**
 * The vendored cache zip of one entry: in `yarn/<cacheKey>/`, with the lockfile's checksum as
 * its sha512 (or, for an entry Yarn wrote no checksum for, the vendor manifest's).
 */
export function findBerryZip(
  artifacts: Artifact[] | undefined,
  entry: Pick<BerryEntry, 'checksum'>,
  cacheKey: string,
): Artifact | undefined {
  const key = entry.checksum?.cacheKey ?? cacheKey;
  const wanted = entry.checksum ? pinFromSha512Hex(entry.checksum.sha512Hex) : undefined;
  return artifacts?.find(
    a =>
      path.posix.dirname(a.path) === `yarn/${key}` &&
      ZIP_NAME.test(path.posix.basename(a.path)) &&
      (wanted === undefined || samePin(a.integrity, wanted)),
  );
}
