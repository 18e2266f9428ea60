import semver from 'semver';
import validateName from 'validate-npm-package-name';
import YAML from 'yaml';
import {ConfigError} from '../support/errors.js';
import {IntegrityProblems} from '../install/types.js';

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
export function parseBerryLock(text: string, rel: string): BerryEntry[] {
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
    const checked = checkBerryEntry(key, value, cacheKey);
    if (typeof checked === 'string') problems.add(key, `${checked} in ${rel}`, 'lockfile');
    else if (checked) entries.push(checked);
  }
  problems.throwIfAny(false);
  return entries;
}

/** An entry as a package Yarn fetches, undefined for a workspace, or why it cannot be vendored. */
function checkBerryEntry(
  key: string,
  value: unknown,
  cacheKey: string,
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

/** Whether Yarn fetches an entry with these `conditions` on a node of this OS and CPU. */
export function berryConditionsMatch(
  conditions: string | undefined,
  platform: {os: string; cpu: string},
): boolean {
  if (!conditions) return true;
  return conditions.split('&').every(part => {
    const [field = '', wanted = ''] = part.trim().split('=');
    if (field === 'os') return wanted === platform.os;
    if (field === 'cpu') return platform.cpu === '*' || wanted === platform.cpu;
    return true;
  });
}
