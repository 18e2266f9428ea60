import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import type {HttpClient} from 'isomorphic-git';
import {
  DEPLOY_JSON,
  parseDeployConfig,
  type DeployConfig,
  type GithubAsset,
  type NpmInstallSettings,
  type PipInstallSettings,
  type PnpmInstallSettings,
  type YarnInstallSettings,
  type PythonLockInstallSettings,
} from '../lib/pins/deploy-config.js';
import {PNPM_LOCKFILE, pnpmReleaseProblem, readPnpmLock} from '../lib/pins/pnpm-lock.js';
import {projectFile, readLockRequirements} from '../lib/install/python-lock.js';
import {ConfigError} from '../lib/support/errors.js';
import {storeDir} from '../lib/node/layout.js';
import {readTreeFile} from '../lib/git/export.js';
import {openRemote, type Credentials} from '../lib/git/remote.js';
import {resolveRev} from '../lib/git/resolve.js';
import {GitStore} from '../lib/git/store.js';
import {readLockfile, type NpmRequirement, type Platform} from '../lib/pins/npm-lockfile.js';
import {parseRequirements} from '../lib/pins/requirements.js';
import {pinFromSha256, pinFromSha512Hex} from '../lib/pins/integrity.js';
import {markerFilesIn} from '../lib/pins/detect-install.js';
import {markerFilesAt} from '../lib/pins/vendor-pin.js';
import {
  pinIntegrity,
  readPackageManager,
  type ManagerName,
  type PackageManagerPin,
} from '../lib/pins/package-manager.js';
import {readRegularFile} from '../lib/pins/vendor-manifest.js';
import {readYarnPlan} from '../lib/install/yarn.js';
import {berryConditionsMatch, berryReference} from '../lib/pins/yarn-berry-lock.js';
import {berryProjectFiles, berryTreeFiles, type BerryProject} from './sources/yarn-berry.js';
import {formatLocation, parseRepoLocation} from '../lib/git/location.js';

/** One artifact the app needs, with the hash the app pins for it. */
export type Need =
  | {
      ecosystem: 'npm';
      name: string;
      version: string;
      integrity: string;
      url: string;
      /** The lockfile paths installed from this one tarball. */
      keys: string[];
      /**
       * Set for the package manager the app pins (package.json `packageManager`): its integrity
       * and URL are '' until vendor-sync looks them up (vendor-sync/sources/package-manager.ts),
       * unless the pin's own hash is the tarball's sha512.
       */
      manager?: PackageManagerPin;
    }
  | {
      ecosystem: 'pypi';
      name: string;
      version: string;
      integrity: string;
      /** A lock's environment marker: no file for the nodes' platform is then no error. */
      marker?: string | undefined;
    }
  | {ecosystem: 'github'; name: string; version: string; integrity: string; asset: GithubAsset}
  | {
      ecosystem: 'yarn';
      name: string;
      /** The lockfile resolution after `name@`: `npm:1.0.0`, `patch:...`. */
      version: string;
      /** The lockfile's checksum as SRI; '' for an entry with `conditions` Yarn wrote none for. */
      integrity: string;
      checksum: {cacheKey: string; sha512Hex: string} | undefined;
      /** The lockfile's `__metadata.cacheKey`. */
      cacheKey: string;
      kind: 'npm' | 'patch';
      /** For other platforms only: vendored if Yarn fetches it here, else left out. */
      optional: boolean;
    };

export type AppNeeds = {
  /** The app commit read, or undefined for a work tree read as it is. */
  sha: string | undefined;
  config: DeployConfig;
  needs: Need[];
  /** The lockfile entries, requirement lines and assets these needs come from. */
  entries: number;
  /** Registries the lockfile may use (deploy.json install.registries). */
  npmRegistries: string[];
  /** For a Yarn 2+ app: what vendor-sync needs to run the pinned Yarn for its cache zips. */
  berry?: BerryProject | undefined;
};

/**
 * What the app needs at a changeset: the npm lockfile, the hashed requirements file, or the uv or
 * Poetry lock its `install` uses, and the GitHub release assets its `deploy.json` declares.
 * A work-tree path without `rev` is read as it stands (before the maintainer commits).
 */
export async function readAppNeeds(options: {
  app: string;
  rev?: string | undefined;
  cwd: string;
  http: HttpClient;
  credentials?: Credentials | undefined;
  platforms: Platform[];
}): Promise<AppNeeds> {
  const location = parseRepoLocation(options.app, {cwd: options.cwd, what: 'app repository'});
  if (location.kind === 'path' && options.rev === undefined) {
    return needsFromDir(location.path, undefined, options.platforms);
  }
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-vendor-sync-app-'));
  try {
    const store = await GitStore.open(storeDir(scratch, 'app'));
    const remote = openRemote(location, {http: options.http, credentials: options.credentials});
    const {sha} = await resolveRev(options.rev ?? 'HEAD', remote, store);
    const files = path.join(scratch, 'files');
    const wanted = [DEPLOY_JSON];
    const config = await readConfigAt(store, sha, formatLocation(location));
    const install = config.install;
    if (install?.type === 'npm')
      wanted.push(path.posix.join(install.directory, 'package-lock.json'));
    if (install?.type === 'pnpm') {
      wanted.push(
        path.posix.join(install.directory, PNPM_LOCKFILE),
        path.posix.join(install.directory, 'package.json'),
      );
    }
    if (install?.type === 'pip') wanted.push(install.requirements);
    if (install?.type === 'yarn') {
      wanted.push(...['yarn.lock', 'package.json'].map(f => path.posix.join(install.directory, f)));
      wanted.push(...(await berryTreeFiles(store, sha, install.directory)));
    }
    if (install?.type === 'uv' || install?.type === 'poetry') wanted.push(install.lockfile);
    if (install?.type === 'poetry') wanted.push(projectFile(install));
    for (const rel of wanted) {
      const entry = await readTreeFile(store, sha, rel);
      if (!entry || (entry.kind !== 'file' && entry.kind !== 'executable')) continue;
      await fse.ensureDir(path.dirname(path.join(files, rel)));
      await fsp.writeFile(path.join(files, rel), entry.content);
    }
    return await needsFromDir(files, sha, options.platforms);
  } finally {
    await fse.remove(scratch);
  }
}

async function readConfigAt(store: GitStore, sha: string, where: string): Promise<DeployConfig> {
  const entry = await readTreeFile(store, sha, DEPLOY_JSON);
  const at = `${DEPLOY_JSON} at ${sha.slice(0, 12)} in ${where}`;
  const rootFiles = await markerFilesAt(store, sha);
  return parseDeployConfig(entry ? entry.content.toString('utf8') : '{}', at, rootFiles);
}

async function needsFromDir(
  dir: string,
  sha: string | undefined,
  platforms: Platform[],
): Promise<AppNeeds> {
  const text = await readRegularFile(path.join(dir, DEPLOY_JSON), DEPLOY_JSON);
  const config = parseDeployConfig(text ?? '{}', DEPLOY_JSON, await markerFilesIn(dir));
  const install = config.install;
  const found = [
    install?.type === 'npm' ? await npmNeeds(dir, install, platforms) : undefined,
    install?.type === 'pnpm' ? await pnpmNeeds(dir, install, platforms) : undefined,
    install?.type === 'pnpm' ? await pnpmManagerNeed(dir, install.directory) : undefined,
    install?.type === 'pip' ? await pipNeeds(dir, install) : undefined,
    install?.type === 'yarn' ? await yarnNeeds(dir, install, platforms) : undefined,
    install?.type === 'yarn' ? await packageManagerNeed(dir, install.directory, 'yarn') : undefined,
    install?.type === 'uv' || install?.type === 'poetry'
      ? await lockNeeds(dir, install)
      : undefined,
    assetNeeds(config),
  ].filter(f => f !== undefined);
  const berry = found.find(f => f.berry)?.berry;
  return {
    sha,
    config,
    berry,
    needs: uniqueNeeds(found.flatMap(f => f.needs)),
    entries: found.reduce((sum, f) => sum + f.entries, 0),
    npmRegistries:
      install?.type === 'npm' || install?.type === 'pnpm' || install?.type === 'yarn'
        ? install.registries
        : [],
  };
}

/** Needs of one kind, and how many lockfile entries, requirement lines or assets named them. */
export type Found = {needs: Need[]; entries: number; berry?: BerryProject};

async function npmNeeds(
  dir: string,
  install: NpmInstallSettings,
  platforms: Platform[],
): Promise<Found> {
  // One need per tarball: readLockfile already merged the paths that install the same one.
  return tarballNeeds(await readLockfile(dir, install, platforms));
}

/** One npm need per registry tarball a lockfile pins (npm, pnpm and Yarn alike). */
function tarballNeeds(requirements: NpmRequirement[]): Found {
  return {
    entries: requirements.reduce((sum, req) => sum + req.keys.length, 0),
    needs: requirements.map(req => ({
      ecosystem: 'npm',
      name: req.name,
      version: req.version,
      integrity: req.integrity,
      url: req.resolved,
      keys: req.keys,
    })),
  };
}

/** The tarballs pnpm-lock.yaml pins for the nodes' platforms, one need per tarball. */
async function pnpmNeeds(
  dir: string,
  install: PnpmInstallSettings,
  platforms: Platform[],
): Promise<Found> {
  const {requirements} = await readPnpmLock(dir, install, platforms);
  return tarballNeeds(requirements);
}

/**
 * Every tarball yarn.lock pins: Yarn 1 fetches them all, even optional ones for another platform
 * (it learns `os` and `cpu` from the tarball) and dev ones with --production. A Yarn 2+ lockfile
 * pins Yarn's cache zips instead: one need per zip Yarn fetches on the nodes' platforms.
 */
async function yarnNeeds(
  dir: string,
  install: YarnInstallSettings,
  platforms: Platform[],
): Promise<Found> {
  const plan = await readYarnPlan(dir, install);
  if (plan.flavor === 'classic') return tarballNeeds(plan.requirements);
  const {cacheKey, entries} = plan.lock;
  const onPlatforms = (e: (typeof entries)[number]) =>
    platforms.some(p => berryConditionsMatch(e.conditions, {...p, libc: undefined}));
  // A checksummed entry for other platforms is vendored when Yarn fetches it all the same (Yarn
  // 3 fetches the npm source of a conditional builtin patch, fsevents on Linux: measured).
  const wanted = entries.filter(e => onPlatforms(e) || e.checksum);
  return {
    entries: entries.length,
    needs: wanted.map(e => ({
      ecosystem: 'yarn',
      name: e.name,
      version: berryReference(e),
      integrity: e.checksum ? pinFromSha512Hex(e.checksum.sha512Hex) : '',
      checksum: e.checksum,
      cacheKey,
      kind: e.kind,
      optional: !onPlatforms(e),
    })),
    berry: {
      directory: install.directory,
      pin: plan.pin,
      files: await berryProjectFiles(dir, install.directory),
      platforms,
    },
  };
}

/** The pinned pnpm release, refused early when the nodes could not run it. */
async function pnpmManagerNeed(dir: string, directory: string): Promise<Found> {
  const found = await packageManagerNeed(dir, directory, 'pnpm');
  const pin = found.needs[0]?.ecosystem === 'npm' ? found.needs[0].manager : undefined;
  const problem = pin ? pnpmReleaseProblem(pin) : undefined;
  if (problem) throw new ConfigError(problem.message, problem.hint);
  return found;
}

async function pipNeeds(dir: string, install: PipInstallSettings): Promise<Found> {
  const reqText = await readRegularFile(path.join(dir, install.requirements), install.requirements);
  if (reqText === undefined) {
    throw new ConfigError(
      `deploy.json asks for a pip install, but the app has no ${install.requirements}.`,
    );
  }
  const requirements = parseRequirements(reqText, install.requirements);
  return {
    entries: requirements.length,
    needs: requirements.map(req => ({
      ecosystem: 'pypi',
      name: req.name,
      version: req.version,
      integrity: req.integrity,
    })),
  };
}

/**
 * The package manager release the app pins for a pnpm or Yarn install, as an npm tarball need:
 * nodes run the vendored copy, never one of their own.
 */
export async function packageManagerNeed(
  dir: string,
  directory: string,
  kind: ManagerName,
): Promise<Found> {
  const pin = await readPackageManager(dir, directory, kind);
  return {
    entries: 1,
    needs: [
      {
        ecosystem: 'npm',
        name: pin.packageName,
        version: pin.version,
        integrity: pinIntegrity(pin) ?? '',
        url: '',
        keys: ['packageManager'],
        manager: pin,
      },
    ],
  };
}

/** uv.lock or poetry.lock: one need per package the app needs, with every file hash of it. */
async function lockNeeds(dir: string, install: PythonLockInstallSettings): Promise<Found> {
  const requirements = await readLockRequirements(dir, install);
  return {
    entries: requirements.length,
    needs: requirements.map(req => ({
      ecosystem: 'pypi',
      name: req.name,
      version: req.version,
      integrity: req.integrity,
      marker: req.marker,
    })),
  };
}

function assetNeeds(config: DeployConfig): Found {
  const assets = config.assets ?? [];
  return {
    entries: assets.length,
    needs: assets.map(asset => ({
      ecosystem: 'github',
      name: `${asset.repo}/${asset.name}`,
      version: asset.tag,
      integrity: pinFromSha256(asset.sha256),
      asset,
    })),
  };
}

/**
 * One need per artifact: the same requirement or asset listed twice is one download. (npm needs
 * are one per tarball already.)
 */
function uniqueNeeds(needs: Need[]): Need[] {
  const seen = new Map<string, Need>();
  for (const need of needs) {
    const key = `${need.ecosystem}\0${need.name}\0${need.version}\0${need.integrity}`;
    if (!seen.has(key)) seen.set(key, need);
  }
  return [...seen.values()];
}
