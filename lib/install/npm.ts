import {constants, createReadStream, existsSync, promises as fsp} from 'node:fs';
import path from 'node:path';
import {pipeline} from 'node:stream/promises';
import * as fse from 'fs-extra/esm';
import cacachePackage from 'cacache/package.json' with {type: 'json'};
import pLimit from 'p-limit';
import type {NpmInstallSettings} from '../pins/deploy-config.js';
import type {TreeFile} from '../git/export.js';
import {samePin, sha256Hex, shortIntegrity} from '../pins/integrity.js';
import {findArtifacts, verifyArtifactFile} from '../pins/vendor-manifest.js';
import {describeRequirement, readLockfile, type NpmRequirement} from '../pins/npm-lockfile.js';
import {networkWall} from './no-network.js';
import {checkNpmTarball} from './tarball-check.js';
import {appendLog, DEFAULT_PATH, runLogged} from '../node/run-logged.js';
import {hermeticEnv, makeScratch} from './run.js';
import {
  IntegrityProblems,
  type InstallContext,
  type Installer,
  type VerifiedArtifact,
} from './types.js';

/**
 * The npm installer: `npm ci --offline` inside the release, fed only from vendored tarballs
 * through a throwaway cache filled by integrity, with every registry address dead.
 */
export function npmInstaller(settings: NpmInstallSettings): Installer {
  return {
    kind: 'npm',
    describe: `npm ci in ${settings.directory}${settings.scripts ? '' : ' (no lifecycle scripts)'}`,
    verify: ctx => verifyNpmTarballs(ctx, settings),
    reuse: settings.reuse ? (ctx, verified) => npmReuseKey(ctx, settings, verified) : undefined,
    early: {
      inputs: tree => npmInputs(tree, settings.directory),
      blocker: ctx => npmNeedsWholeTree(ctx.releaseDir, settings),
    },
    install: (ctx, verified, alongside) => npmCi(ctx, settings, verified, alongside),
  };
}

/** One lockfile entry, found in the vendor tree and checked, or why it could not be. */
type TarballOutcome =
  | {ok: true; req: NpmRequirement; file: string; path: string}
  | {ok: false; req: NpmRequirement; kind: 'missing' | 'tampered'; message: string};

/** Every tarball the lockfile pins, found in the vendor tree and checked against its integrity. */
async function verifyNpmTarballs(
  ctx: InstallContext,
  settings: NpmInstallSettings,
): Promise<VerifiedArtifact[]> {
  const requirements = await readLockfile(ctx.releaseDir, settings);
  return verifyRequirements(ctx, requirements, new IntegrityProblems('npm'));
}

/**
 * Each requirement's vendored tarball, checked against its pinned integrity; every problem is
 * thrown together in one IntegrityError (shared with the other Node installers).
 */
export async function verifyRequirements(
  ctx: InstallContext,
  requirements: NpmRequirement[],
  problems: IntegrityProblems,
): Promise<VerifiedArtifact[]> {
  // Hashed in parallel (the reads overlap); problems are reported in lockfile order.
  const limit = pLimit(8);
  const outcomes = await Promise.all(
    requirements.map(req => limit(() => verifyNpmTarball(ctx, req))),
  );
  const verified: VerifiedArtifact[] = [];
  for (const outcome of outcomes) {
    const {req} = outcome;
    if (!outcome.ok) problems.add(req.name, outcome.message, outcome.kind);
    else {
      verified.push({
        name: req.name,
        version: req.version,
        integrity: req.integrity,
        file: outcome.file,
        label: `${req.name}@${req.version} (${outcome.path})`,
      });
    }
  }
  problems.throwIfAny(ctx.manifest === undefined);
  return verified;
}

/** The vendored tarball of one lockfile entry, its bytes checked against the lockfile's hash. */
export async function verifyNpmTarball(
  ctx: InstallContext,
  req: NpmRequirement,
): Promise<TarballOutcome> {
  const candidates = ctx.manifest ? findArtifacts(ctx.manifest, 'npm', req.name, req.version) : [];
  const artifact = candidates.find(a => samePin(a.integrity, req.integrity));
  if (!artifact) {
    return {
      ok: false,
      req,
      kind: 'missing',
      message:
        candidates.length > 0
          ? `${describeRequirement(req)}: the vendor repo has it with another hash (${shortIntegrity(candidates[0]?.integrity ?? '')}) than the lockfile (${shortIntegrity(req.integrity)})`
          : `${describeRequirement(req)}: not in the vendor repo`,
    };
  }
  try {
    const file = await verifyArtifactFile(ctx.vendorDir ?? '', artifact, req.integrity);
    return {ok: true, req, file, path: artifact.path};
  } catch (error) {
    return {ok: false, req, kind: 'tampered', message: (error as Error).message};
  }
}

/**
 * `npm ci` in a scratch of its own: a cache holding exactly the verified tarballs, empty npm
 * config files, a dead registry, and no network.
 */
async function npmCi(
  ctx: InstallContext,
  settings: NpmInstallSettings,
  verified: VerifiedArtifact[],
  alongside: (() => Promise<void>) | undefined,
): Promise<void> {
  const scratch = await makeScratch('repodeploy-npm-', ctx.scratchDir);
  try {
    const cache = path.join(scratch.dir, 'cache');
    await fillNpmCache(ctx, cache, verified);
    const env = await npmEnv(ctx, settings, scratch, cache);
    // npm ci and the lifecycle scripts it runs cannot reach any network (lib/install/no-network.ts).
    const wall = await networkWall(ctx.env);
    await appendLog(ctx.logFile, `${wall.describe}\n`);
    const [npm, npmArgs] = wall.wrap('npm', ['ci']);
    await runLogged(npm, npmArgs, {
      cwd: path.join(ctx.releaseDir, settings.directory),
      env: {...env, ...wall.env},
      logFile: ctx.logFile,
      label: 'npm ci',
      timeoutMs: ctx.timeoutMs,
      alongside,
    });
  } finally {
    await scratch.cleanup();
  }
}

/**
 * npm keeps its content-addressed store in <cache>/_cacache, and reads a tarball whose integrity
 * the lockfile gives by that digest alone (checking the bytes as it reads). When npm's cacache
 * lays content out as ours does, each verified tarball is copied to where cacache's own
 * contentPath() puts it; else cacache.put writes it. Alongside, every tarball is checked
 * (lib/install/tarball-check.ts): npm does not start unless all pass.
 */
async function fillNpmCache(
  ctx: InstallContext,
  cache: string,
  verified: VerifiedArtifact[],
): Promise<void> {
  const limit = pLimit(8);
  const store = path.join(cache, '_cacache');
  const contentPath = await npmContentPath(ctx.env);
  await appendLog(
    ctx.logFile,
    contentPath
      ? `npm cache: ${verified.length} verified tarballs copied into place (same cacache content layout as npm's)\n`
      : `npm cache: ${verified.length} verified tarballs written through cacache.put (npm's cacache layout differs or is unknown)\n`,
  );
  // Settled, all of them, before anything is thrown: the scratch is removed after.
  // protection R18-tarball-check: npm tarballs are checked before npm ci runs
  const outcomes = await Promise.allSettled([
    checkTarballs(verified),
    ...verified.map(artifact => limit(() => cacheTarball(store, artifact, contentPath))),
  ]);
  const failed = outcomes.find(outcome => outcome.status === 'rejected');
  if (failed) throw failed.reason;
}

/** One verified tarball into npm's store: copied where contentPath puts it, else cacache.put. */
async function cacheTarball(
  store: string,
  artifact: VerifiedArtifact,
  contentPath: ((cache: string, integrity: string) => string) | undefined,
): Promise<void> {
  if (contentPath) {
    const dest = contentPath(store, artifact.integrity);
    await fse.ensureDir(path.dirname(dest));
    await fsp.copyFile(artifact.file, dest, constants.COPYFILE_FICLONE);
    return;
  }
  const {default: cacache} = await import('cacache');
  const key = `repodeploy:${artifact.name}@${artifact.version}`;
  const options = {integrity: artifact.integrity};
  const {size} = await fsp.stat(artifact.file);
  if (size <= IN_MEMORY_BYTES) {
    await cacache.put(store, key, await fsp.readFile(artifact.file), options);
  } else {
    await pipeline(createReadStream(artifact.file), cacache.put.stream(store, key, options));
  }
}

/** The environment of npm ci: our own empty config files and cache, offline, a dead registry. */
async function npmEnv(
  ctx: InstallContext,
  settings: NpmInstallSettings,
  scratch: {dir: string; home: string},
  cache: string,
): Promise<Record<string, string>> {
  // Empty user and global config files of our own: the node's are never read.
  const userConfig = path.join(scratch.dir, 'user-npmrc');
  const globalConfig = path.join(scratch.dir, 'global-npmrc');
  await fsp.writeFile(userConfig, '');
  await fsp.writeFile(globalConfig, '');
  return hermeticEnv(ctx.env, scratch.home, {
    npm_config_userconfig: userConfig,
    npm_config_globalconfig: globalConfig,
    npm_config_cache: cache,
    npm_config_offline: 'true',
    // Nothing may be fetched: any registry request goes to a closed port and fails at once.
    npm_config_registry: DEAD_REGISTRY,
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_progress: 'false',
    npm_config_ignore_scripts: settings.scripts ? 'false' : 'true',
    ...(settings.dev ? {npm_config_include: 'dev'} : {npm_config_omit: 'dev'}),
    ...nodeHeaders(),
    RELEASE_DIR: ctx.releaseDir,
  });
}

/**
 * Every tarball npm is about to unpack, checked first (lib/install/tarball-check.ts). Here
 * rather than in verify(): a release that reuses node_modules never unpacks them.
 */
export async function checkTarballs(verified: VerifiedArtifact[]): Promise<void> {
  const problems = new IntegrityProblems('npm');
  const limit = pLimit(4);
  const failures = await Promise.all(
    verified.map(artifact =>
      limit(() =>
        checkNpmTarball(artifact.file, artifact.label ?? artifact.name).then(
          () => undefined,
          (error: unknown) => ({name: artifact.name, message: (error as Error).message}),
        ),
      ),
    ),
  );
  for (const failure of failures) {
    if (failure) problems.add(failure.name, failure.message, 'hostile');
  }
  problems.throwIfAny(false);
}

/**
 * What `npm ci` reads of the app before it installs: the files of its directory (package.json,
 * package-lock.json, npm-shrinkwrap.json, .npmrc) and the directories above it; undefined when the
 * app commits a node_modules of its own there (npm ci removes it: the order would matter).
 */
export function npmInputs(tree: TreeFile[], directory: string): Set<string> | undefined {
  const dir = path.posix.normalize(directory).replace(/^\.\/?|\/$/g, '');
  if (tree.some(entry => entry.path === path.posix.join(dir || '.', 'node_modules'))) {
    return undefined;
  }
  const inputs = new Set<string>();
  for (const entry of tree) {
    const parent = path.posix.dirname(entry.path);
    const isFile = entry.kind !== 'dir' && entry.kind !== 'gitlink';
    if ((isFile && parent === (dir || '.')) || (dir && `${dir}/`.startsWith(`${entry.path}/`))) {
      inputs.add(entry.path);
    }
  }
  return inputs;
}

/**
 * Lifecycle scripts npm ci runs for the app itself, in its directory, with the whole tree in
 * reach and able to write anywhere: such an install neither starts early nor is reused.
 */
const ROOT_CI_SCRIPTS = [
  'preinstall',
  'install',
  'postinstall',
  'prepublish',
  'preprepare',
  'prepare',
  'postprepare',
];

/**
 * Why npm ci needs the whole release written before it starts (undefined when it does not):
 * the app's own install scripts, or workspaces and linked packages, which live in the app tree.
 */
async function npmNeedsWholeTree(
  releaseDir: string,
  settings: NpmInstallSettings,
): Promise<string | undefined> {
  const dir = path.join(releaseDir, settings.directory);
  let pkg: {scripts?: Record<string, unknown>; workspaces?: unknown};
  let lock: {packages?: Record<string, {link?: boolean}>};
  try {
    pkg = JSON.parse(await fsp.readFile(path.join(dir, 'package.json'), 'utf8')) as typeof pkg;
    lock = JSON.parse(
      await fsp.readFile(path.join(dir, 'package-lock.json'), 'utf8'),
    ) as typeof lock;
  } catch {
    return 'package.json or package-lock.json does not read';
  }
  const own = ownCiScripts(pkg.scripts, settings);
  if (own.length > 0) return `package.json has its own ${own.join(', ')} script`;
  if (pkg.workspaces !== undefined) return 'package.json has workspaces';
  const local = Object.entries(lock.packages ?? {}).find(
    ([key, entry]) => key !== '' && (entry.link || !key.includes('node_modules/')),
  );
  if (local) return `package-lock.json has a package inside the app (${local[0]})`;
  return undefined;
}

/** The app's own scripts in ROOT_CI_SCRIPTS that npm ci will run (none with scripts off). */
function ownCiScripts(
  scripts: Record<string, unknown> | undefined,
  settings: NpmInstallSettings,
): string[] {
  return settings.scripts ? ROOT_CI_SCRIPTS.filter(name => scripts?.[name] !== undefined) : [];
}

/**
 * The key of an npm install (lib/install/reuse.ts): package.json, package-lock.json, every
 * verified tarball's hash, the installer settings, and the Node, npm, OS and CPU it ran on. Not
 * reusable when the app's own package.json has install scripts: they may write outside
 * node_modules.
 */
async function npmReuseKey(
  ctx: {releaseDir: string; env: NodeJS.ProcessEnv},
  settings: NpmInstallSettings,
  verified: VerifiedArtifact[],
): Promise<{key: string; outputs: string[]} | {reason: string}> {
  const dir = path.join(ctx.releaseDir, settings.directory);
  const packageJson = await fsp.readFile(path.join(dir, 'package.json'));
  const lockfile = await fsp.readFile(path.join(dir, 'package-lock.json'));
  let scripts: Record<string, unknown> = {};
  try {
    scripts =
      (JSON.parse(packageJson.toString('utf8')) as {scripts?: Record<string, unknown>}).scripts ??
      {};
  } catch {
    return {reason: 'package.json does not parse'};
  }
  const own = ownCiScripts(scripts, settings);
  if (own.length > 0) {
    return {reason: `package.json has its own ${own.join(', ')} script (it may write anywhere)`};
  }
  const npm = await npmVersion(ctx.env);
  if (!npm) return {reason: 'the npm version could not be read'};
  const key = sha256Hex(
    JSON.stringify({
      installer: 'npm',
      settings,
      packageJson: sha256Hex(packageJson),
      lockfile: sha256Hex(lockfile),
      artifacts: verified.map(a => a.integrity).sort(),
      node: process.version,
      npm,
      platform: `${process.platform}-${process.arch}`,
    }),
  );
  return {key, outputs: [path.posix.join(settings.directory, 'node_modules')]};
}

/** The directory of the npm first on PATH, and its package.json (no process started). */
async function npmPackage(
  env: NodeJS.ProcessEnv,
): Promise<{dir: string; version: string} | undefined> {
  // The same PATH the installer gets (lib/install/run.ts), so the same npm.
  for (const dir of (env.PATH ?? DEFAULT_PATH).split(path.delimiter)) {
    if (!dir) continue;
    try {
      const cli = await fsp.realpath(path.join(dir, 'npm'));
      const root = path.join(path.dirname(cli), '..');
      const pkg = JSON.parse(await fsp.readFile(path.join(root, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'npm' && pkg.version) return {dir: root, version: pkg.version};
    } catch {
      // Not here: try the next PATH entry.
    }
  }
  return undefined;
}

async function npmVersion(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  return (await npmPackage(env))?.version;
}

/** The content layout version of a cacache package's package.json ("cache-version"). */
async function cacheContentVersion(packageJson: string): Promise<string | undefined> {
  try {
    const pkg = JSON.parse(await fsp.readFile(packageJson, 'utf8')) as {
      'cache-version'?: {content?: string};
    };
    return pkg['cache-version']?.content;
  } catch {
    return undefined;
  }
}

/**
 * cacache's contentPath(), when the cacache inside the npm that will run stores content as ours
 * does (the same "cache-version"); undefined when that cannot be told.
 */
async function npmContentPath(
  env: NodeJS.ProcessEnv,
): Promise<((cache: string, integrity: string) => string) | undefined> {
  const npm = await npmPackage(env);
  if (!npm) return undefined;
  // Ours is the cacache this code was built with: the bundle carries its package.json inside,
  // and an installed repodeploy has no cacache on disk to look up.
  const ours = cacachePackage['cache-version'].content;
  const theirs = await cacheContentVersion(
    path.join(npm.dir, 'node_modules', 'cacache', 'package.json'),
  );
  if (!ours || ours !== theirs) return undefined;
  const {default: contentPath} = await import('cacache/lib/content/path.js');
  return contentPath;
}

/** Tarballs up to this size go into npm's cache from memory; larger ones are streamed. */
const IN_MEMORY_BYTES = 4 * 1024 * 1024;

/** A registry address nothing listens on (TCP port 9, "discard", on loopback). */
export const DEAD_REGISTRY = 'http://127.0.0.1:9/';

/**
 * Native addons build offline only against local Node headers: point node-gyp at the headers of
 * the Node running us, when they are installed beside it.
 */
export function nodeHeaders(): Record<string, string> {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return existsSync(path.join(prefix, 'include', 'node', 'node.h'))
    ? {npm_config_nodedir: prefix}
    : {};
}
