import {createReadStream, promises as fsp} from 'node:fs';
import http from 'node:http';
import type {AddressInfo} from 'node:net';
import path from 'node:path';
import {parse as parseYaml, stringify as stringifyYaml} from 'yaml';
import type {PnpmInstallSettings} from '../pins/deploy-config.js';
import {sha256Hex} from '../pins/integrity.js';
import {readPackageManager, type PackageManagerPin} from '../pins/package-manager.js';
import {
  PNPM_LOCKFILE,
  pnpmReleaseProblem,
  readPnpmLock,
  standardTarballUrl,
  type PnpmLock,
} from '../pins/pnpm-lock.js';
import {readRegularFile} from '../pins/vendor-manifest.js';
import {ConfigError, IntegrityError} from '../support/errors.js';
import {linkOnPath} from '../support/fs.js';
import {appendLog, runLogged} from '../node/run-logged.js';
import {networkWall} from './no-network.js';
import {checkTarballs, DEAD_REGISTRY, verifyRequirements} from './npm.js';
import {unpackPackageManager, verifyPackageManager} from './package-manager.js';
import {hermeticEnv, makeScratch} from './run.js';
import {
  IntegrityProblems,
  type InstallContext,
  type Installer,
  type VerifiedArtifact,
} from './types.js';

/**
 * The pnpm installer: the app's own pnpm release (package.json packageManager, vendored and
 * verified) fills a store in a scratch directory from a registry on 127.0.0.1 that serves only
 * verified tarballs (`pnpm fetch`, no scripts), then `pnpm install --offline --frozen-lockfile`
 * copies from that store into the release behind the network wall.
 */
export function pnpmInstaller(settings: PnpmInstallSettings): Installer {
  return {
    kind: 'pnpm',
    describe: `pnpm install in ${settings.directory}${settings.scripts ? '' : ' (no lifecycle scripts)'}`,
    verify: ctx => verifyPnpm(ctx, settings),
    reuse: settings.reuse ? (ctx, verified) => pnpmReuseKey(ctx, settings, verified) : undefined,
    install: (ctx, verified) => pnpmInstall(ctx, settings, verified),
  };
}

/**
 * A workspace project reached through a symlink the app committed would have pnpm write its
 * node_modules (and run its scripts) wherever the link points: refused.
 */
async function refuseLinkedProjects(
  releaseDir: string,
  directory: string,
  importers: string[],
): Promise<void> {
  for (const project of importers) {
    const rel = path.posix.join(directory, project);
    const link = await linkOnPath(releaseDir, rel);
    if (link !== undefined) {
      throw new ConfigError(
        `${PNPM_LOCKFILE} names the workspace project "${project}", reached through the symlink ${link} in the app.`,
        'Workspace projects must be folders of the app itself: commit them, not links to them.',
      );
    }
  }
}

/** The app's pnpm pin, refused when it names a release this installer cannot run. */
async function pnpmPin(
  releaseDir: string,
  settings: PnpmInstallSettings,
): Promise<PackageManagerPin> {
  const pin = await readPackageManager(releaseDir, settings.directory, 'pnpm');
  const problem = pnpmReleaseProblem(pin);
  if (problem) throw new ConfigError(problem.message, problem.hint);
  return pin;
}

/**
 * Every tarball the lockfile pins and the pnpm release itself, found in the vendor tree and
 * checked against their hashes; every problem in one IntegrityError.
 */
async function verifyPnpm(
  ctx: InstallContext,
  settings: PnpmInstallSettings,
): Promise<VerifiedArtifact[]> {
  const lock = await readPnpmLock(ctx.releaseDir, settings);
  const pin = await pnpmPin(ctx.releaseDir, settings);
  await refuseLinkedProjects(ctx.releaseDir, settings.directory, lock.importers);
  const problems = new IntegrityProblems('npm');
  // The release first, so that its problem is listed with the tarballs' in one error.
  let manager: VerifiedArtifact | undefined;
  try {
    manager = await verifyPackageManager(ctx, pin);
  } catch (error) {
    if (!(error instanceof IntegrityError)) throw error;
    problems.add(pin.packageName, error.message, 'tampered');
  }
  const verified = await verifyRequirements(ctx, lock.requirements, problems);
  return manager ? [...verified, manager] : verified;
}

/**
 * The install: every tarball checked (lib/install/tarball-check.ts), then the two pnpm runs.
 * The store lives in the scratch directory and pnpm copies from it (never hard links), so no
 * release file shares an inode with anything that outlives the install.
 */
async function pnpmInstall(
  ctx: InstallContext,
  settings: PnpmInstallSettings,
  verified: VerifiedArtifact[],
): Promise<void> {
  const lock = await readPnpmLock(ctx.releaseDir, settings);
  const pin = await pnpmPin(ctx.releaseDir, settings);
  const manager = verified.find(a => a.name === pin.packageName && a.version === pin.version);
  if (!manager) throw new IntegrityError(`${pin.field}: the pnpm release was not verified.`);
  // protection R18-tarball-check-pnpm: tarballs are checked before pnpm runs
  await checkTarballs(verified);
  const scratch = await makeScratch('repodeploy-pnpm-', ctx.scratchDir);
  const feed = await startFeed(lock, verified);
  try {
    const pnpm = await unpackPackageManager(manager, 'pnpm', path.join(scratch.dir, 'pnpm'));
    const store = path.join(scratch.dir, 'store');
    const env = await pnpmEnv(ctx, scratch);
    const started = Date.now();
    await pnpmFetch(ctx, settings, lock, {scratch: scratch.dir, store, env, feed: feed.url, pnpm});
    // Closed before anything of the app runs: its scripts find no feed on the loopback.
    await feed.close();
    const fetched = Date.now();
    await pnpmOffline(ctx, settings, {store, env, pnpm});
    await appendLog(
      ctx.logFile,
      `pnpm: store filled from the local feed in ${fetched - started} ms (${feed.served()} tarballs served), offline install in ${Date.now() - fetched} ms\n`,
    );
  } finally {
    await feed.close();
    await scratch.cleanup();
  }
}

type PnpmRun = {
  store: string;
  env: Record<string, string>;
  pnpm: {command: string; args: string[]};
};

/**
 * `pnpm fetch` in a scratch directory holding only a copy of the lockfile (and the workspace's
 * package list): the app's own config is not read, and tarball URLs are dropped so that pnpm asks
 * the feed for each by name. No script runs in a fetch; proxies are dead, only 127.0.0.1 is
 * reached.
 */
async function pnpmFetch(
  ctx: InstallContext,
  settings: PnpmInstallSettings,
  lock: PnpmLock,
  run: PnpmRun & {scratch: string; feed: string},
): Promise<void> {
  const dir = path.join(run.scratch, 'fetch');
  await fsp.mkdir(dir);
  const appDir = path.join(ctx.releaseDir, settings.directory);
  const text = await fsp.readFile(path.join(appDir, PNPM_LOCKFILE), 'utf8');
  await fsp.writeFile(path.join(dir, PNPM_LOCKFILE), lockfileForFeed(text));
  // pnpm fetch applies patches as it imports: the patch files, and nothing else of the app.
  for (const rel of lock.patches) {
    const link = await linkOnPath(appDir, rel);
    if (link !== undefined) {
      throw new ConfigError(
        `${PNPM_LOCKFILE} names the patch ${rel}, reached through the symlink ${link} in the app.`,
        'Commit patch files as files of the app, not links to them.',
      );
    }
    const patch = await readRegularFile(path.join(appDir, rel), rel);
    if (patch === undefined)
      throw new ConfigError(
        `${PNPM_LOCKFILE} names the patch ${rel}, which the app does not have.`,
      );
    await fsp.mkdir(path.dirname(path.join(dir, rel)), {recursive: true});
    await fsp.writeFile(path.join(dir, rel), patch);
  }
  if (lock.importers.length > 1 || lock.importers[0] !== '.') {
    await fsp.writeFile(
      path.join(dir, 'pnpm-workspace.yaml'),
      stringifyYaml({packages: lock.importers}),
    );
  }
  await runLogged(
    run.pnpm.command,
    [
      ...run.pnpm.args,
      'fetch',
      '--ignore-scripts',
      '--ignore-pnpmfile',
      ...(settings.dev ? [] : ['--prod']),
      ...commonFlags(run.store),
      `--config.registry=${run.feed}`,
    ],
    {
      cwd: dir,
      env: {...run.env, NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1'},
      logFile: ctx.logFile,
      label: 'pnpm fetch',
      timeoutMs: ctx.timeoutMs,
    },
  );
}

/** The lockfile with every `resolution.tarball` of a registry package dropped. */
function lockfileForFeed(text: string): string {
  const lock = parseYaml(text, {maxAliasCount: 100}) as {
    packages?: Record<string, {resolution?: {integrity?: string; tarball?: string}}>;
  };
  let changed = false;
  for (const entry of Object.values(lock.packages ?? {})) {
    const resolution = entry.resolution;
    if (resolution?.integrity && resolution.tarball && !resolution.tarball.startsWith('file:')) {
      delete resolution.tarball;
      changed = true;
    }
  }
  return changed ? stringifyYaml(lock) : text;
}

/** `pnpm install --offline --frozen-lockfile` in the release, behind the network wall. */
async function pnpmOffline(
  ctx: InstallContext,
  settings: PnpmInstallSettings,
  run: PnpmRun,
): Promise<void> {
  const wall = await networkWall(ctx.env);
  await appendLog(ctx.logFile, `${wall.describe}\n`);
  const [command, args] = wall.wrap(run.pnpm.command, [
    ...run.pnpm.args,
    'install',
    '--offline',
    '--frozen-lockfile',
    ...(settings.dev ? [] : ['--prod']),
    // The app's .pnpmfile.cjs is code: it runs only where the app's scripts may run.
    ...(settings.scripts ? [] : ['--ignore-scripts', '--ignore-pnpmfile']),
    ...commonFlags(run.store),
    `--config.registry=${DEAD_REGISTRY}`,
    '--config.virtual-store-dir=node_modules/.pnpm',
    '--config.modules-dir=node_modules',
    '--config.confirm-modules-purge=false',
  ]);
  await runLogged(command, args, {
    cwd: path.join(ctx.releaseDir, settings.directory),
    env: {...run.env, ...wall.env},
    logFile: ctx.logFile,
    label: 'pnpm install',
    timeoutMs: ctx.timeoutMs,
  });
}

/**
 * Flags of both runs, on the command line so that no config file of the app or the node
 * overrides them (pnpm ranks its command line above pnpm-workspace.yaml and .npmrc): our store,
 * cache and state in the scratch, copied from (hard links would share inodes with the store), no
 * global virtual store, and no switching to another pnpm release.
 */
function commonFlags(store: string): string[] {
  const scratch = path.dirname(store);
  return [
    `--store-dir=${store}`,
    `--config.cache-dir=${path.join(scratch, 'cache')}`,
    `--config.state-dir=${path.join(scratch, 'state')}`,
    '--package-import-method=copy',
    '--config.enable-global-virtual-store=false',
    '--config.manage-package-manager-versions=false',
    '--config.update-notifier=false',
    '--reporter=append-only',
  ];
}

/** pnpm's environment: empty user and global config of our own, no pnpm home of the node's. */
async function pnpmEnv(
  ctx: InstallContext,
  scratch: {dir: string; home: string},
): Promise<Record<string, string>> {
  const userConfig = path.join(scratch.dir, 'user-npmrc');
  await fsp.writeFile(userConfig, '');
  return hermeticEnv(ctx.env, scratch.home, {
    npm_config_userconfig: userConfig,
    XDG_CONFIG_HOME: path.join(scratch.home, '.config'),
    XDG_CACHE_HOME: path.join(scratch.home, '.cache'),
    XDG_DATA_HOME: path.join(scratch.home, '.local', 'share'),
    XDG_STATE_HOME: path.join(scratch.home, '.local', 'state'),
    PNPM_HOME: path.join(scratch.home, 'pnpm'),
    COREPACK_ENABLE_STRICT: '0',
    RELEASE_DIR: ctx.releaseDir,
  });
}

/** A registry on 127.0.0.1 for the install's duration: the verified tarballs by URL path, only. */
type Feed = {url: string; served(): number; close(): Promise<void>};

async function startFeed(lock: PnpmLock, verified: VerifiedArtifact[]): Promise<Feed> {
  const files = new Map<string, string>();
  for (const req of lock.requirements) {
    const artifact = verified.find(a => a.name === req.name && a.version === req.version);
    if (!artifact) continue;
    files.set(
      new URL(standardTarballUrl('http://feed/', req.name, req.version)).pathname,
      artifact.file,
    );
  }
  let served = 0;
  const server = http.createServer((req, res) => {
    const file = req.method === 'GET' ? files.get(req.url ?? '') : undefined;
    if (file === undefined) {
      res.writeHead(404).end();
      return;
    }
    served++;
    res.writeHead(200, {'content-type': 'application/octet-stream'});
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const {port} = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    served: () => served,
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** Project files pnpm reads besides the lockfile, in the lockfile's directory. */
const PNPM_INPUTS = ['pnpm-workspace.yaml', '.npmrc', '.pnpmfile.cjs', '.pnpmfile.mjs'];

/** Root scripts pnpm install runs for the app itself. */
const ROOT_SCRIPTS = [
  'preinstall',
  'install',
  'postinstall',
  'preprepare',
  'prepare',
  'postprepare',
];

/**
 * The key of a pnpm install (lib/install/reuse.ts): the lockfile, each project's package.json,
 * pnpm's project config, every verified tarball (the pnpm release among them), the settings, and
 * the Node, OS and CPU. Outputs: the node_modules of each project with dependencies.
 */
async function pnpmReuseKey(
  ctx: InstallContext,
  settings: PnpmInstallSettings,
  verified: VerifiedArtifact[],
): Promise<{key: string; outputs: string[]; inputs: string} | {reason: string}> {
  const dir = path.join(ctx.releaseDir, settings.directory);
  const lock = await readPnpmLock(ctx.releaseDir, settings);
  const files: Record<string, string | null> = {};
  for (const rel of [
    PNPM_LOCKFILE,
    ...PNPM_INPUTS,
    ...lock.importers.map(i => path.posix.join(i, 'package.json')),
    ...lock.patches,
  ]) {
    // pnpm follows a link the app commits; the key must not call its target absent.
    const link = await linkOnPath(dir, rel);
    if (link !== undefined) return {reason: `${rel} is reached through the symlink ${link}`};
    const text = await readRegularFile(path.join(dir, rel), rel).catch(() => undefined);
    files[rel] = text === undefined ? null : sha256Hex(Buffer.from(text));
  }
  const pkgText = await readRegularFile(path.join(dir, 'package.json'), 'package.json');
  let scripts: Record<string, unknown> = {};
  try {
    scripts = (JSON.parse(pkgText ?? '{}') as {scripts?: Record<string, unknown>}).scripts ?? {};
  } catch {
    return {reason: 'package.json does not parse'};
  }
  const own = settings.scripts ? ROOT_SCRIPTS.filter(name => scripts[name] !== undefined) : [];
  if (own.length > 0) {
    return {reason: `package.json has its own ${own.join(', ')} script (it may write anywhere)`};
  }
  const key = sha256Hex(
    JSON.stringify({
      installer: 'pnpm',
      settings,
      files,
      artifacts: verified.map(a => a.integrity).sort(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    }),
  );
  const outputs = lock.installed.map(i =>
    path.posix.join(settings.directory, i, 'node_modules').replace(/^\.\//, ''),
  );
  return {
    key,
    outputs: [...new Set(outputs)],
    inputs: 'lockfile, package.json files, pnpm config or artifacts',
  };
}
