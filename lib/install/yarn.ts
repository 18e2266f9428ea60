import {constants, promises as fsp} from 'node:fs';
import path from 'node:path';
import {workspaceMembers} from '../pins/workspaces.js';
import * as fse from 'fs-extra/esm';
import type {YarnInstallSettings} from '../pins/deploy-config.js';
import {sha256Hex} from '../pins/integrity.js';
import {readPackageManager, type PackageManagerPin} from '../pins/package-manager.js';
import {
  parseYarnClassicLock,
  readYarnLock,
  YARN_LOCK_HINT,
  type YarnClassicRequirement,
} from '../pins/yarn-lock.js';
import {ConfigError} from '../support/errors.js';
import {readBerryLock} from '../pins/yarn-berry-lock.js';
import {berryInstall, verifyBerry, type BerryPlan} from './yarn-berry.js';
import {readAppYarnrc} from '../pins/yarnrc.js';
import {appendLog, runLogged} from '../node/run-logged.js';
import {checkTarballs, DEAD_REGISTRY, nodeHeaders, verifyRequirements} from './npm.js';
import {networkWall} from './no-network.js';
import {unpackPackageManager, verifyPackageManager} from './package-manager.js';
import {hermeticEnv, makeScratch} from './run.js';
import type {ReuseSpec} from './reuse.js';
import {
  IntegrityProblems,
  type InstallContext,
  type Installer,
  type VerifiedArtifact,
} from './types.js';

/**
 * The Yarn installer. Yarn 1 (classic) installs with `--offline --frozen-lockfile` from an
 * offline mirror of our own holding exactly the verified tarballs; the Yarn release itself is the
 * one package.json `packageManager` pins, vendored and checked like any tarball.
 */
export function yarnInstaller(settings: YarnInstallSettings): Installer {
  return {
    kind: 'yarn',
    describe: `yarn install in ${settings.directory}${settings.scripts ? '' : ' (no lifecycle scripts)'}`,
    verify: ctx => verifyYarn(ctx, settings),
    reuse: settings.reuse ? (ctx, verified) => yarnReuseKey(ctx, settings, verified) : undefined,
    install: (ctx, verified) => yarnInstall(ctx, settings, verified),
  };
}

/** What a Yarn 1 install uses, read from the app: the lockfile's tarballs and the Yarn pin. */
export type YarnPlan = {pin: PackageManagerPin; requirements: YarnClassicRequirement[]};

/** A Yarn install of either kind: Yarn 1 (classic) or Yarn 2+ (Berry). */
export type AnyYarnPlan = ({flavor: 'classic'} & YarnPlan) | ({flavor: 'berry'} & BerryPlan);

/**
 * yarn.lock and package.json `packageManager`, which must agree: a classic lockfile with Yarn 1,
 * a Berry one with Yarn 2 or later.
 */
export async function readYarnPlan(
  releaseDir: string,
  settings: YarnInstallSettings,
): Promise<AnyYarnPlan> {
  const lock = await readYarnLock(releaseDir, settings);
  const pin = await readPackageManager(releaseDir, settings.directory, 'yarn');
  const classicPin = pin.packageName === 'yarn';
  if (lock.flavor === 'classic' && !classicPin) {
    throw new ConfigError(
      `${lock.rel} is a Yarn 1 lockfile, but package.json pins "${pin.field}".`,
      'Pin the Yarn 1 release that wrote the lockfile in "packageManager" (yarn@1.22.22), or regenerate yarn.lock with the pinned Yarn and commit it.',
    );
  }
  if (lock.flavor === 'berry') {
    if (classicPin) {
      throw new ConfigError(
        `${lock.rel} is a Yarn 2+ (Berry) lockfile, but package.json pins "${pin.field}".`,
        'Pin the Yarn release that wrote the lockfile in "packageManager", or regenerate yarn.lock with the pinned Yarn 1.',
      );
    }
    const berry = readBerryLock(lock.text, lock.rel, settings.registries);
    return {flavor: 'berry', pin, lock: berry, rel: lock.rel};
  }
  const requirements = parseYarnClassicLock(lock.text, lock.rel, settings.registries);
  return {flavor: 'classic', pin, requirements};
}

/**
 * Every tarball yarn.lock pins and the Yarn release, found in the vendor tree and checked against
 * their hashes. The Yarn release comes last.
 */
async function verifyYarn(
  ctx: InstallContext,
  settings: YarnInstallSettings,
): Promise<VerifiedArtifact[]> {
  const plan = await readYarnPlan(ctx.releaseDir, settings);
  if (plan.flavor === 'berry') return verifyBerry(ctx, plan);
  const {pin, requirements} = plan;
  const verified = await verifyRequirements(
    ctx,
    requirements,
    new IntegrityProblems('npm', YARN_LOCK_HINT),
  );
  return [...verified, await verifyPackageManager(ctx, pin)];
}

/**
 * `yarn install --offline --frozen-lockfile` with the vendored Yarn, in a scratch of its own: an
 * offline mirror of the verified tarballs under the names Yarn looks for, our own .yarnrc (no
 * other rc file is read), an empty cache, a dead registry and no network.
 */
async function yarnInstall(
  ctx: InstallContext,
  settings: YarnInstallSettings,
  verified: VerifiedArtifact[],
): Promise<void> {
  const plan = await readYarnPlan(ctx.releaseDir, settings);
  if (plan.flavor === 'berry') {
    const linker = await berryInstall(ctx, settings, plan, verified);
    if (linker === 'node-modules') {
      await ensureMemberModules(path.join(ctx.releaseDir, settings.directory));
    }
    return;
  }
  const {pin, requirements} = plan;
  const manager = verified.at(-1);
  const tarballs = verified.slice(0, -1);
  if (manager?.name !== pin.packageName || manager.version !== pin.version) {
    throw new Error('yarn install: the verified artifacts do not end with the Yarn release');
  }
  const scratch = await makeScratch('repodeploy-yarn-', ctx.scratchDir);
  try {
    // Every tarball Yarn unpacks is checked first (lib/install/tarball-check.ts).
    await checkTarballs(tarballs);
    const mirror = path.join(scratch.dir, 'mirror');
    await fillMirror(mirror, requirements, tarballs);
    const yarn = await unpackPackageManager(manager, 'yarn', path.join(scratch.dir, 'yarn'));
    const rc = path.join(scratch.dir, 'yarnrc');
    await fsp.writeFile(rc, yarnrc(mirror));
    const wall = await networkWall(ctx.env);
    await appendLog(
      ctx.logFile,
      `${wall.describe}\nyarn ${yarn.version}: offline mirror of ${tarballs.length} verified tarballs\n`,
    );
    const [command, args] = wall.wrap(yarn.command, [
      ...yarn.args,
      ...yarnArgs(settings, rc, path.join(scratch.dir, 'cache')),
    ]);
    await runLogged(command, args, {
      cwd: path.join(ctx.releaseDir, settings.directory),
      env: {...yarnEnv(ctx, scratch.home), ...wall.env},
      logFile: ctx.logFile,
      label: 'yarn install',
      timeoutMs: ctx.timeoutMs,
    });
    await ensureMemberModules(path.join(ctx.releaseDir, settings.directory));
  } finally {
    await scratch.cleanup();
  }
}

/** The mirror Yarn 1 reads with --offline: each verified tarball under its mirror name. */
async function fillMirror(
  mirror: string,
  requirements: YarnClassicRequirement[],
  verified: VerifiedArtifact[],
): Promise<void> {
  await fse.ensureDir(mirror);
  const files = new Map(verified.map(a => [`${a.name}@${a.version}`, a.file]));
  for (const req of requirements) {
    const file = files.get(`${req.name}@${req.version}`);
    if (file === undefined) throw new Error(`yarn install: ${req.name}@${req.version} unverified`);
    await fsp.copyFile(file, path.join(mirror, req.mirrorName), constants.COPYFILE_FICLONE);
  }
}

/** Our whole Yarn 1 configuration: the mirror, never pruned, and no self-update check. */
function yarnrc(mirror: string): string {
  return [
    `yarn-offline-mirror ${JSON.stringify(mirror)}`,
    'yarn-offline-mirror-pruning false',
    'disable-self-update-check true',
    `registry ${JSON.stringify(DEAD_REGISTRY)}`,
    '',
  ].join('\n');
}

function yarnArgs(settings: YarnInstallSettings, rc: string, cache: string): string[] {
  return [
    'install',
    // Only our rc file: neither the node's ~/.yarnrc, ~/.npmrc nor the app's own.
    '--no-default-rc',
    '--use-yarnrc',
    rc,
    '--offline',
    '--frozen-lockfile',
    '--non-interactive',
    '--no-progress',
    '--cache-folder',
    cache,
    ...(settings.dev ? [] : ['--production']),
    ...(settings.scripts ? [] : ['--ignore-scripts']),
  ];
}

function yarnEnv(ctx: InstallContext, home: string): Record<string, string> {
  return hermeticEnv(ctx.env, home, {
    npm_config_registry: DEAD_REGISTRY,
    YARN_REGISTRY: DEAD_REGISTRY,
    ...nodeHeaders(),
    RELEASE_DIR: ctx.releaseDir,
  });
}

/** Lifecycle scripts Yarn 1 runs for the app itself, with the whole release in reach. */
const ROOT_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepublish', 'prepare'];

type AppPackage = {scripts?: Record<string, unknown>; workspaces?: unknown};

/**
 * The key of a Yarn install (lib/install/reuse.ts): package.json (and each workspace member's),
 * yarn.lock, every verified tarball's and the Yarn release's hash, the settings, and the Node,
 * OS and CPU. The outputs are node_modules of the root and of each member. Not reusable when the
 * app runs install scripts of its own.
 */
async function yarnReuseKey(
  ctx: {releaseDir: string},
  settings: YarnInstallSettings,
  verified: VerifiedArtifact[],
): Promise<ReuseSpec | {reason: string}> {
  const dir = path.join(ctx.releaseDir, settings.directory);
  const packageJson = await fsp.readFile(path.join(dir, 'package.json'));
  const lockfile = await fsp.readFile(path.join(dir, 'yarn.lock'));
  let pkg: AppPackage;
  try {
    pkg = JSON.parse(packageJson.toString('utf8')) as AppPackage;
  } catch {
    return {reason: 'package.json does not parse'};
  }
  const own = settings.scripts
    ? ROOT_SCRIPTS.filter(name => pkg.scripts?.[name] !== undefined)
    : [];
  if (own.length > 0) {
    return {reason: `package.json has its own ${own.join(', ')} script (it may write anywhere)`};
  }
  const berry = verified.at(-1)?.name === '@yarnpkg/cli-dist';
  const rc = berry ? await readAppYarnrc(ctx.releaseDir, settings.directory) : undefined;
  if (rc && rc.nodeLinker !== 'node-modules') {
    return {
      reason: `Yarn's ${rc.nodeLinker} layout is not reused (only nodeLinker: node-modules is)`,
    };
  }
  const members = await workspaceMembers(dir, pkg.workspaces);
  if (typeof members === 'string') return {reason: members};
  const memberFiles = await Promise.all(
    members.map(async m => sha256Hex(await fsp.readFile(path.join(dir, m, 'package.json')))),
  );
  const key = sha256Hex(
    JSON.stringify({
      installer: 'yarn',
      settings,
      packageJson: sha256Hex(packageJson),
      members: members.map((m, i) => `${m}:${memberFiles[i] ?? ''}`),
      lockfile: sha256Hex(lockfile),
      yarnrc: rc?.kept,
      artifacts: verified.map(a => a.integrity).sort(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    }),
  );
  const outputs = ['.', ...members].map(m =>
    path.posix.join(settings.directory, m, 'node_modules'),
  );
  return {
    key,
    outputs,
    inputs: `package.json files, yarn.lock${rc ? ', .yarnrc.yml' : ''}, artifacts and install settings`,
  };
}

/** Each workspace member gets a node_modules, so that a reusable install has every output. */
async function ensureMemberModules(dir: string): Promise<void> {
  const pkg = JSON.parse(await fsp.readFile(path.join(dir, 'package.json'), 'utf8')) as AppPackage;
  const members = await workspaceMembers(dir, pkg.workspaces);
  if (typeof members === 'string') return;
  for (const member of members) await fse.ensureDir(path.join(dir, member, 'node_modules'));
}
