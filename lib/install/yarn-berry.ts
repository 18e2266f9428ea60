import {constants, promises as fsp} from 'node:fs';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import pLimit from 'p-limit';
import semver from 'semver';
import YAML from 'yaml';
import type {YarnInstallSettings} from '../pins/deploy-config.js';
import type {PackageManagerPin} from '../pins/package-manager.js';
import {findArtifacts, verifyArtifactFile} from '../pins/vendor-manifest.js';
import {
  BERRY_LOCK_HINT,
  berryConditionsMatch,
  currentLibc,
  findBerryZip,
  NO_PROJECT_RC,
  writeHomeRc,
  berryReference,
  type BerryEntry,
  type BerryLock,
} from '../pins/yarn-berry-lock.js';
import {readAppYarnrc, type AppYarnrc} from '../pins/yarnrc.js';
import {ConfigError, InstallError} from '../support/errors.js';
import {linkOnPath} from '../support/fs.js';
import {workspaceMembers} from '../pins/workspaces.js';
import {appendLog, runLogged} from '../node/run-logged.js';
import {DEAD_REGISTRY, nodeHeaders} from './npm.js';
import {networkWall} from './no-network.js';
import {unpackPackageManager, verifyPackageManager} from './package-manager.js';
import {hermeticEnv, makeScratch} from './run.js';
import {IntegrityProblems, type InstallContext, type VerifiedArtifact} from './types.js';

/** What a Yarn 2+ install uses, read from the app: the lockfile's packages and the Yarn pin. */
export type BerryPlan = {pin: PackageManagerPin; lock: BerryLock; rel: string};

/** The entries Yarn fetches on a node of this platform: no `conditions`, or ones that hold. */
export function berryFetched(
  entries: BerryEntry[],
  platform: {os: string; cpu: string; libc?: string | undefined} = {
    os: process.platform,
    cpu: process.arch,
    libc: currentLibc(),
  },
): BerryEntry[] {
  return entries.filter(e => berryConditionsMatch(e.conditions, platform));
}

/**
 * Every cache zip Yarn will read on this node, found in the vendor tree and checked against the
 * lockfile's checksum before Yarn runs; then the Yarn release. Every problem in one error.
 */
export async function verifyBerry(
  ctx: InstallContext,
  plan: BerryPlan,
): Promise<VerifiedArtifact[]> {
  const problems = new IntegrityProblems('npm', BERRY_LOCK_HINT);
  const limit = pLimit(8);
  const entries = berryFetched(plan.lock.entries);
  // Zips for other platforms that Yarn fetched where vendor-sync ran (Yarn 3 asks for the npm
  // source of a conditional patch everywhere) are checked too, when vendored: Yarn reads them.
  const fetched = new Set(entries);
  const extra = plan.lock.entries.filter(
    e => !fetched.has(e) && e.checksum && zipFor(ctx, e, plan.lock.cacheKey).artifact,
  );
  entries.push(...extra);
  const outcomes = await Promise.all(
    entries.map(entry => limit(() => verifyZip(ctx, entry, plan.lock.cacheKey))),
  );
  const verified: VerifiedArtifact[] = [];
  outcomes.forEach((outcome, i) => {
    const entry = entries[i];
    if (typeof outcome === 'string') problems.add(entry?.name ?? '', outcome, 'missing');
    else if ('tampered' in outcome) problems.add(entry?.name ?? '', outcome.tampered, 'tampered');
    else verified.push(outcome);
  });
  problems.throwIfAny(ctx.manifest === undefined);
  return [...verified, await verifyPackageManager(ctx, plan.pin)];
}

/** The manifest's zips of this entry's package and reference, and the one that fits it. */
function zipFor(ctx: InstallContext, entry: BerryEntry, cacheKey: string) {
  const candidates = ctx.manifest
    ? findArtifacts(ctx.manifest, 'yarn', entry.name, berryReference(entry))
    : undefined;
  return {candidates, artifact: findBerryZip(candidates, entry, cacheKey)};
}

async function verifyZip(
  ctx: InstallContext,
  entry: BerryEntry,
  cacheKey: string,
): Promise<VerifiedArtifact | string | {tampered: string}> {
  const label = entry.resolution;
  const {candidates, artifact} = zipFor(ctx, entry, cacheKey);
  if (!artifact) {
    return candidates && candidates.length > 0
      ? `${label}: the vendor repo has its cache zip only with another checksum or cache key (${candidates[0]?.path ?? ''})`
      : `${label}: no Yarn cache zip for it in the vendor repo`;
  }
  try {
    const file = await verifyArtifactFile(ctx.vendorDir ?? '', artifact, artifact.integrity);
    return {
      name: entry.name,
      version: berryReference(entry),
      integrity: artifact.integrity,
      file,
      label: `${label} (${artifact.path})`,
    };
  } catch (error) {
    return {tampered: (error as Error).message};
  }
}

/**
 * The Yarn 2+ install, with the vendored Yarn and only the verified zips as its cache: our own
 * settings (the app's layout settings kept, nothing else), no network, no global cache, no
 * `yarnPath` or plugins of the app's. `install --immutable --immutable-cache` with dev
 * dependencies, else `workspaces focus --all --production` (Yarn 4 and later). Returns the
 * app's nodeLinker.
 */
export async function berryInstall(
  ctx: InstallContext,
  settings: YarnInstallSettings,
  plan: BerryPlan,
  verified: VerifiedArtifact[],
): Promise<string> {
  const manager = verified.at(-1);
  const zips = verified.slice(0, -1);
  if (manager?.name !== plan.pin.packageName || manager.version !== plan.pin.version) {
    throw new Error('yarn install: the verified artifacts do not end with the Yarn release');
  }
  const dir = path.join(ctx.releaseDir, settings.directory);
  const rc = await readAppYarnrc(ctx.releaseDir, settings.directory);
  await refuseOwnRcName(ctx.releaseDir, settings.directory);
  const members = await berryMembers(dir);
  await refuseLinkedOutputs(ctx.releaseDir, settings.directory, members);
  const args = await berryArgs(dir, settings, plan.pin, members);
  const scratch = await makeScratch('repodeploy-yarn-', ctx.scratchDir);
  try {
    const cache = await cacheFolder(ctx.releaseDir, settings.directory, rc, scratch.dir);
    for (const zip of zips) {
      const name = path.basename(zip.file);
      await fsp.copyFile(zip.file, path.join(cache, name), constants.COPYFILE_FICLONE);
    }
    const yarn = await unpackPackageManager(manager, 'yarn', path.join(scratch.dir, 'yarn'));
    await writeHomeRc(
      scratch.home,
      YAML.stringify({...rc.kept, ...ourSettings(settings, cache, scratch.dir, plan.pin)}),
    );
    const wall = await networkWall(ctx.env);
    await appendLog(ctx.logFile, berryLogLines(wall.describe, yarn.version, zips.length, rc));
    const [command, commandArgs] = wall.wrap(yarn.command, [...yarn.args, ...args]);
    await runLogged(command, commandArgs, {
      cwd: dir,
      env: {...berryEnv(ctx, settings, scratch, cache, plan.pin), ...wall.env},
      logFile: ctx.logFile,
      label: 'yarn install',
      timeoutMs: ctx.timeoutMs,
    });
    await checkLayout(dir, rc.nodeLinker);
  } finally {
    await scratch.cleanup();
  }
  return rc.nodeLinker;
}

/**
 * Yarn laid out what the settings asked for: a Yarn that read other settings (another linker,
 * a cache elsewhere) would leave a release that cannot start.
 */
async function checkLayout(dir: string, linker: string): Promise<void> {
  const wanted = linker === 'pnp' ? '.pnp.cjs' : 'node_modules';
  const other = linker === 'pnp' ? 'node_modules' : '.pnp.cjs';
  const has = (name: string) =>
    fsp.lstat(path.join(dir, name)).then(
      () => true,
      () => false,
    );
  const [hasWanted, hasOther] = [await has(wanted), await has(other)];
  if (!hasWanted || hasOther) {
    throw new InstallError(
      `yarn install did not lay out the app as nodeLinker ${linker} asks (${wanted} ${hasWanted ? 'there' : 'missing'}, ${other} ${hasOther ? 'there' : 'absent'}): Yarn did not read repodeploy's settings.`,
      'Report this with the Yarn version pinned in packageManager; nothing was switched.',
    );
  }
}

function berryLogLines(wall: string, version: string, zips: number, rc: AppYarnrc): string {
  const lines = [
    wall,
    `yarn ${version}: cache of ${zips} verified zips, nodeLinker ${rc.nodeLinker}`,
  ];
  if (rc.dropped.length > 0) {
    lines.push(`.yarnrc.yml settings not used (repodeploy sets these): ${rc.dropped.join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Lifecycle scripts Yarn 2+ runs for the app's own workspaces. */
const WORKSPACE_SCRIPTS = ['preinstall', 'install', 'postinstall'];

/**
 * Yarn's command: a full immutable install with dev dependencies, else a production focus of
 * every workspace, which only Yarn 4 has built in and which runs the app's own install scripts
 * whatever `enableScripts` says: refused then unless scripts are on.
 */
async function berryArgs(
  dir: string,
  settings: YarnInstallSettings,
  pin: PackageManagerPin,
  members: string[],
): Promise<string[]> {
  if (settings.dev) {
    return [
      'install',
      '--immutable',
      '--immutable-cache',
      ...(settings.scripts ? [] : ['--mode=skip-build']),
    ];
  }
  if (semver.major(pin.version) < 4) {
    throw new ConfigError(
      `Yarn ${pin.version} cannot install without dev dependencies (yarn workspaces focus --production is built into Yarn 4 and later).`,
      'Pin Yarn 4 in "packageManager", or set deploy.json install.dev to true.',
    );
  }
  if (!settings.scripts) {
    for (const member of ['.', ...members]) {
      const rel = path.posix.join(member, 'package.json');
      const pkg = JSON.parse(await fsp.readFile(path.join(dir, rel), 'utf8')) as {
        scripts?: Record<string, unknown>;
      };
      const own = WORKSPACE_SCRIPTS.filter(name => pkg.scripts?.[name] !== undefined);
      if (own.length > 0) {
        throw new ConfigError(
          `${rel} has its own ${own.join(', ')} script, which a production Yarn 2+ install runs even with scripts off.`,
          'Set deploy.json install.scripts to true, or install.dev to true (a full install skips every build script).',
        );
      }
    }
  }
  return ['workspaces', 'focus', '--all', '--production'];
}

/**
 * Where Yarn's cache goes: a scratch directory, except for Plug'n'Play, whose `.pnp.cjs` reads the
 * zips at run time from `<directory>/.yarn/cache` in the release. A cache the app committed there
 * (zero-installs) is replaced by the verified zips, and a link on its path is refused.
 */
async function cacheFolder(
  releaseDir: string,
  directory: string,
  rc: AppYarnrc,
  scratch: string,
): Promise<string> {
  if (rc.nodeLinker !== 'pnp') {
    const cache = path.join(scratch, 'cache');
    await fse.ensureDir(cache);
    return cache;
  }
  const rel = path.posix.join(directory, '.yarn', 'cache');
  const link = await linkOnPath(releaseDir, rel);
  if (link !== undefined) {
    throw new ConfigError(
      `The app's ${rel} is reached through the symlink ${link}.`,
      'Commit .yarn as a plain folder.',
    );
  }
  const cache = path.join(releaseDir, ...rel.split('/'));
  await fse.remove(cache);
  await fse.ensureDir(cache);
  return cache;
}

/** What Yarn writes under the install directory (and each workspace's node_modules). */
const YARN_OUTPUTS = [
  'node_modules',
  '.pnp.cjs',
  '.pnp.loader.mjs',
  '.pnp.data.json',
  '.yarn/unplugged',
  '.yarn/install-state.gz',
  '.yarn/build-state.yml',
  '.yarn/cache',
];

/**
 * A symlink the app committed where Yarn writes (`node_modules -> /etc`, `.pnp.cjs -> ...`), or
 * on the way to the install directory, would carry Yarn's writes out of the release: refused.
 */
async function refuseLinkedOutputs(
  releaseDir: string,
  directory: string,
  members: string[],
): Promise<void> {
  const outputs = ['.', ...YARN_OUTPUTS, ...members.map(m => `${m}/node_modules`)];
  for (const rel of outputs) {
    const link = await linkOnPath(releaseDir, path.posix.join(directory, rel));
    if (link !== undefined) {
      throw new ConfigError(
        `The app has a symlink at ${link}, where Yarn writes: it would write outside the release.`,
        'Remove the symlink from the app (Yarn makes these paths itself) and deploy again.',
      );
    }
  }
  // What the app committed there is Yarn's to make: a committed `.yarn/unplugged/<pkg>/.ready`
  // or node_modules would stand in for verified bytes (Yarn does not overwrite them).
  for (const rel of outputs.slice(1)) {
    await fse.remove(path.join(releaseDir, directory, ...rel.split('/')));
  }
}

/**
 * The workspace members, which Yarn installs into and runs scripts of: only patterns that can be
 * told here (`dir`, `dir/*`, no member through a link); Yarn's globs follow links out of the app.
 */
async function berryMembers(dir: string): Promise<string[]> {
  const pkg = JSON.parse(await fsp.readFile(path.join(dir, 'package.json'), 'utf8')) as {
    workspaces?: unknown;
  };
  const members = await workspaceMembers(dir, pkg.workspaces);
  if (typeof members === 'string') {
    throw new ConfigError(
      `package.json: ${members}, which a Yarn 2+ deploy cannot check.`,
      'List workspaces as plain "dir" or "dir/*" patterns of folders inside the app.',
    );
  }
  return members;
}

/** A file of our settings' name in the app would be read as project settings: refused. */
async function refuseOwnRcName(releaseDir: string, directory: string): Promise<void> {
  const parts = directory === '.' ? [] : directory.split('/');
  for (let i = parts.length; i >= 0; i--) {
    const rel = path.posix.join(...parts.slice(0, i), NO_PROJECT_RC);
    const there = await fsp.lstat(path.join(releaseDir, rel)).then(
      () => true,
      () => false,
    );
    if (there)
      throw new ConfigError(
        `The app has a file ${rel}, a name repodeploy keeps for itself.`,
        'Remove it.',
      );
  }
}

/** Settings repodeploy decides, written over the app's kept ones. */
function ourSettings(
  settings: YarnInstallSettings,
  cache: string,
  scratch: string,
  pin: PackageManagerPin,
): Record<string, unknown> {
  return {
    ...hardened(pin),
    cacheFolder: cache,
    enableGlobalCache: false,
    globalFolder: path.join(scratch, 'global'),
    enableNetwork: false,
    enableTelemetry: false,
    enableImmutableInstalls: true,
    checksumBehavior: 'throw',
    enableScripts: settings.scripts,
    npmRegistryServer: DEAD_REGISTRY,
    enableProgressBars: false,
  };
}

/**
 * Hardened mode off (it asks the registry for metadata): Yarn 4 has the setting, and Yarn 2/3
 * refuse a settings key or YARN_ variable they do not know, so it is set only for Yarn 4 on.
 */
function hardened(pin: PackageManagerPin): {enableHardenedMode?: false} {
  return semver.major(pin.version) >= 4 ? {enableHardenedMode: false} : {};
}

/**
 * The environment: clean (lib/install/run.ts), with the settings that matter most also as YARN_*
 * variables, which outrank every settings file, and `yarnPath` ignored (the vendored Yarn runs).
 */
function berryEnv(
  ctx: InstallContext,
  settings: YarnInstallSettings,
  scratch: {dir: string; home: string},
  cache: string,
  pin: PackageManagerPin,
): Record<string, string> {
  return hermeticEnv(ctx.env, scratch.home, {
    ...(hardened(pin).enableHardenedMode === false ? {YARN_ENABLE_HARDENED_MODE: '0'} : {}),
    YARN_RC_FILENAME: NO_PROJECT_RC,
    YARN_IGNORE_PATH: '1',
    YARN_ENABLE_NETWORK: '0',
    YARN_CACHE_FOLDER: cache,
    YARN_ENABLE_GLOBAL_CACHE: '0',
    YARN_GLOBAL_FOLDER: path.join(scratch.dir, 'global'),
    YARN_ENABLE_TELEMETRY: '0',
    YARN_ENABLE_SCRIPTS: settings.scripts ? '1' : '0',
    YARN_NPM_REGISTRY_SERVER: DEAD_REGISTRY,
    npm_config_registry: DEAD_REGISTRY,
    ...nodeHeaders(),
    RELEASE_DIR: ctx.releaseDir,
  });
}
