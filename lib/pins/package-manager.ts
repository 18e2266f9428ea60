import {createHash} from 'node:crypto';
import path from 'node:path';
import semver from 'semver';
import ssri from 'ssri';
import {ConfigError, IntegrityError} from '../support/errors.js';
import {readRegularFile} from './vendor-manifest.js';

/** The package managers an app may pin in package.json `packageManager` and have vendored. */
export type ManagerName = 'pnpm' | 'yarn';

/**
 * A package manager as the app pins it (`"packageManager": "pnpm@9.15.9+sha512.<hex>"`, Corepack's
 * form), with the npm package that holds it: pnpm ships as `pnpm`, Yarn 1 as `yarn`, Yarn 2 and
 * later as `@yarnpkg/cli-dist`.
 */
export type PackageManagerPin = {
  manager: ManagerName;
  version: string;
  /** The hash after `+`, when the field carries one: Corepack's check of what it downloads. */
  hash: {algorithm: string; hex: string} | undefined;
  /** The npm package vendored for it. */
  packageName: string;
  /** The field as the app wrote it, for messages. */
  field: string;
};

/** Corepack's hash algorithms, with their hex lengths. */
const HASH_LENGTHS: Record<string, number> = {sha1: 40, sha224: 56, sha256: 64, sha512: 128};

const FIELD_HINT =
  'Write it as Corepack does: "packageManager": "<pnpm|yarn>@<exact version>[+<sha512|sha256|sha224|sha1>.<hex>]" (`corepack use pnpm@9` writes one).';

/** Parse a `packageManager` value; `where` names the package.json in errors. */
export function parsePackageManager(value: unknown, where: string): PackageManagerPin {
  if (typeof value !== 'string') {
    throw new ConfigError(`${where}: "packageManager" must be a string.`, FIELD_HINT);
  }
  const match = /^(pnpm|yarn)@([^+\s]+)(?:\+([a-z0-9]+)\.([0-9a-f]+))?$/.exec(value);
  const version = match?.[2];
  if (!match || version === undefined || semver.valid(version) !== version) {
    throw new ConfigError(
      `${where}: "packageManager": "${value}" is not a pnpm or Yarn release pinned to an exact version.`,
      FIELD_HINT,
    );
  }
  const manager = match[1] as ManagerName;
  const [algorithm, hex] = [match[3], match[4]];
  if (algorithm !== undefined && HASH_LENGTHS[algorithm] !== hex?.length) {
    throw new ConfigError(
      `${where}: "packageManager": "${value}" carries a hash that is not ${algorithm} hex.`,
      FIELD_HINT,
    );
  }
  return {
    manager,
    version,
    hash: algorithm !== undefined && hex !== undefined ? {algorithm, hex} : undefined,
    packageName: npmPackageOf(manager, version),
    field: value,
  };
}

function npmPackageOf(manager: ManagerName, version: string): string {
  if (manager === 'pnpm') return 'pnpm';
  return semver.major(version) < 2 ? 'yarn' : '@yarnpkg/cli-dist';
}

/**
 * The package manager the app at `appDir` pins in `<directory>/package.json`, which must be
 * `expected` (the install kind): a node has no pnpm or Yarn of its own, so the app must say which
 * release to vendor and run.
 */
export async function readPackageManager(
  appDir: string,
  directory: string,
  expected: ManagerName,
): Promise<PackageManagerPin> {
  const rel = path.posix.join(directory, 'package.json');
  const text = await readRegularFile(path.join(appDir, rel), rel);
  if (text === undefined) {
    throw new ConfigError(`deploy.json asks for a ${expected} install, but the app has no ${rel}.`);
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${rel} is not valid JSON: ${(error as Error).message}`, undefined, {
      cause: error,
    });
  }
  const field = (manifest as {packageManager?: unknown} | null)?.packageManager;
  if (field === undefined) {
    throw new ConfigError(
      `${rel} does not pin the ${expected} release to install with ("packageManager").`,
      `Add "packageManager": "${expected}@<version>" to ${rel} (\`corepack use ${expected}@<version>\` writes it with its hash); vendor-sync then vendors that release, so nodes need no ${expected} of their own.`,
    );
  }
  const pin = parsePackageManager(field, rel);
  if (pin.manager !== expected) {
    throw new ConfigError(
      `${rel} pins "${pin.field}", but deploy.json asks for a ${expected} install.`,
      `Set deploy.json "install" to "${pin.manager}", or pin a ${expected} release in "packageManager".`,
    );
  }
  return pin;
}

/**
 * The npm integrity of the tarball when the pin's own hash is one: pnpm's and Yarn 1's Corepack
 * hashes are over the npm tarball, and a sha512 one is the integrity npm publishes. Otherwise
 * (no hash, a weaker one, or Yarn 2+ whose Corepack hash may be over its single `yarn.js`)
 * undefined: the registry's integrity is taken and the hash checked with {@link checkPinnedHash}.
 */
export function pinIntegrity(pin: PackageManagerPin): string | undefined {
  if (pin.hash?.algorithm !== 'sha512' || pin.packageName === '@yarnpkg/cli-dist') return undefined;
  return ssri.fromHex(pin.hash.hex, 'sha512').toString();
}

/**
 * Check the pin's hash, if it has one, against the tarball's bytes or (Yarn 2+, whose Corepack
 * downloads a single file from repo.yarnpkg.com) against its `bin/yarn.js`. Throws an
 * IntegrityError naming the pin.
 */
export function checkPinnedHash(
  pin: PackageManagerPin,
  tarball: Buffer,
  innerYarnJs: Buffer | undefined,
): void {
  if (!pin.hash) return;
  const {algorithm, hex} = pin.hash;
  const digest = (data: Buffer) => createHash(algorithm).update(data).digest('hex');
  const candidates = [tarball, ...(innerYarnJs ? [innerYarnJs] : [])];
  if (candidates.some(data => digest(data) === hex)) return;
  throw new IntegrityError(
    `${pin.packageName}@${pin.version} does not match the hash package.json pins ("packageManager": "${pin.field}").`,
    'Restore the vendored release with vendor-sync, or fix the hash in package.json (`corepack use` writes it).',
  );
}
