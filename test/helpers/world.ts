import {execFile} from 'node:child_process';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import type {ExecutionContext} from 'ava';
import {defaultDeps, type Deps} from '../../lib/support/deps.js';
import {deploy, type DeployOptions} from '../../lib/deploy/deploy.js';
import {silentReporter} from '../../lib/support/reporter.js';
import {createHttpClient} from '../../lib/http/client.js';
import {Http} from '../../vendor-sync/http.js';
import type {SyncDeps} from '../../vendor-sync/sync.js';
import {
  startGitHttpServer,
  type GitHttpServer,
  type GitHttpServerOptions,
} from './git-http-server.js';
import {FixtureRepo, type FixtureFile} from './repos.js';
import {tempDir} from './tmp.js';

// Re-exported for the full-suite tests that drive a world and the store side by side.
export {releaseMeta} from './release-meta.js';

/** The package root (tests run from dist/test/helpers). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const deployBin = path.join(packageRoot, 'bin', 'deploy.js');
export const vendorSyncBin = path.join(packageRoot, 'bin', 'vendor-sync.js');

/** An app repo and a vendor repo in work trees, served over git smart HTTP, and an empty node root. */
export type World = {
  dir: string;
  root: string;
  server: GitHttpServer;
  app: FixtureRepo;
  vendor: FixtureRepo;
  appUrl: string;
  vendorUrl: string;
  servedDir: string;
  /** Push both work repos to the served bare repos. */
  publish(): Promise<void>;
};

export async function makeWorld(
  t: ExecutionContext,
  serverOptions: Omit<GitHttpServerOptions, 'projectRoot'> = {},
): Promise<World> {
  const dir = await tempDir(t);
  const servedDir = path.join(dir, 'served');
  const server = await startGitHttpServer({projectRoot: servedDir, ...serverOptions});
  t.teardown(() => server.close());
  const app = await FixtureRepo.init(path.join(dir, 'work', 'app'));
  const vendor = await FixtureRepo.init(path.join(dir, 'work', 'vendor'));
  return {
    dir,
    root: path.join(dir, 'node'),
    server,
    app,
    vendor,
    appUrl: server.repoUrl('app.git'),
    vendorUrl: server.repoUrl('vendor.git'),
    servedDir,
    async publish() {
      for (const [repo, name] of [
        [app, 'app.git'],
        [vendor, 'vendor.git'],
      ] as const) {
        if (await repo.hasCommits()) await repo.publish(path.join(servedDir, name));
      }
    },
  };
}

/** Dependencies for calling lib functions from tests: quiet, fixed identity, no inherited env. */
export function testDeps(overrides: Partial<Deps> = {}): Deps {
  return defaultDeps({
    reporter: silentReporter,
    env: {},
    identity: {user: 'tester', host: 'test-node'},
    ...overrides,
  });
}

/**
 * vendor-sync's dependencies for a test run in `cwd`: real HTTP, no GitHub, npm as the lockfile
 * says (or `upstreams.npm`), a fixed clock and author; `overrides` replace any of them.
 */
export function vendorSyncDeps(
  cwd: string,
  upstreams: Partial<SyncDeps['upstreams']> = {},
  overrides: Partial<SyncDeps> = {},
): SyncDeps {
  return {
    http: new Http({backoffMs: 10}),
    gitHttp: createHttpClient(),
    gitCredentials: undefined,
    upstreams: {
      npm: {registry: undefined, scopes: new Map()},
      pypiIndex: 'http://127.0.0.1:9/simple/',
      github: () => {
        throw new Error('no GitHub in this test');
      },
      githubToken: undefined,
      ...upstreams,
    },
    reporter: silentReporter,
    progressStream: process.stderr,
    cwd,
    clock: () => new Date('2026-12-01T10:00:00Z'),
    author: {name: 'Vendor Bot', email: 'bot@example.invalid'},
    ...overrides,
  };
}

export function runDeploy(options: DeployOptions, overrides: Partial<Deps> = {}) {
  return deploy(options, testDeps(overrides));
}

export type CliRun = {code: number; stdout: string; stderr: string};

/** Run the real `deploy` bin as a child process. */
export function runDeployBin(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd?: string,
): Promise<CliRun> {
  return new Promise(resolve => {
    execFile(
      process.execPath,
      [deployBin, ...args],
      {env: {PATH: process.env.PATH, ...env}, cwd, encoding: 'utf8'},
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({code, stdout, stderr});
      },
    );
  });
}

/** Run the real `vendor-sync` bin in `cwd`, with HOME there and no config of the machine's. */
export function runVendorSyncBin(
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
): Promise<CliRun> {
  return new Promise(resolve => {
    execFile(
      process.execPath,
      [vendorSyncBin, ...args],
      {env: {PATH: process.env.PATH, HOME: cwd, ...env}, cwd, encoding: 'utf8'},
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({code, stdout, stderr});
      },
    );
  });
}

/** A small app with a regular file, an executable script, a nested dir and a symlink. */
export async function writeSampleApp(
  app: FixtureRepo,
  extra: Record<string, FixtureFile> = {},
): Promise<void> {
  await app.write({
    'README.md': '# sample app\n',
    'bin/start.sh': {content: '#!/bin/sh\necho started\n', mode: 0o755},
    'src/server.js': "console.log('hello');\n",
    'src/lib/util.js': 'export const x = 1;\n',
    'config/current.ini': {symlink: '../src/server.js'},
    ...extra,
  });
}

/** What `pinVendor` writes into the app beside the vendor pin, and how it commits. */
export type PinnedApp = {
  /** deploy.json keys beside `vendor` (install, shared, ...). */
  config?: Record<string, unknown>;
  /** More app files, written over the sample app's when `sample` is set. */
  files?: Record<string, FixtureFile>;
  /** Start from the sample app (writeSampleApp). */
  sample?: boolean;
  /** A tag on the app commit, made before the publish. */
  tag?: {name: string; annotated?: boolean};
  vendorMessage?: string;
  appMessage?: string;
};

/**
 * The set-up most deploy tests start from: commit the vendor work tree as it stands, pin that
 * commit in the app's deploy.json as `../vendor.git` (where the world serves it) beside
 * `config`, commit the app and publish both.
 */
export async function pinVendor(
  world: World,
  app: PinnedApp = {},
): Promise<{vendorSha: string; appSha: string}> {
  const vendorSha = await world.vendor.commit(app.vendorMessage ?? 'vendor');
  const deployJson = JSON.stringify({
    vendor: {url: '../vendor.git', rev: vendorSha},
    ...app.config,
  });
  const files = {...app.files, 'deploy.json': deployJson};
  if (app.sample) await writeSampleApp(world.app, files);
  else await world.app.write(files);
  const appSha = await world.app.commit(app.appMessage ?? 'app');
  if (app.tag) await world.app.tag(app.tag.name, {annotated: app.tag.annotated ?? false});
  await world.publish();
  return {vendorSha, appSha};
}

/** Commit version `n` of the app with this deploy.json (and extra files), and publish it. */
export async function commitRelease(
  world: World,
  n: number,
  config: Record<string, unknown>,
  files: Record<string, string> = {},
): Promise<void> {
  await world.app.write({'version.txt': `${n}\n`, 'deploy.json': JSON.stringify(config), ...files});
  await world.app.commit(`version ${n}`);
  await world.publish();
}
