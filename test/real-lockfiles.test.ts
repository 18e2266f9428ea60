// Lockfiles in the shapes real apps have, built against a local registry with packages published
// here: the same name@version at several paths, npm: aliases, workspaces, bundled dependencies,
// optional per-platform packages with install scripts, peer and scoped packages, a deprecated
// package. Vendored by the real vendor-sync bin from a first pin, deployed by the real deploy bin
// with the registry dead, and compared with what a native `npm ci` installs.
import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {promisify} from 'node:util';
import anyTest, {type TestFn} from 'ava';
import {readVendorManifest} from '../lib/pins/vendor-manifest.js';
import {lockedApp, startRegistry, type Registry} from './helpers/npm-registry.js';
import {git, gitArchive} from './helpers/repos.js';
import {snapshotTree} from './helpers/tree.js';
import {makeWorld, runDeployBin, type World, runVendorSyncBin} from './helpers/world.js';

const exec = promisify(execFile);

type Shared = {dir: string; registry: Registry; lockApp: string; lockSimple: string};
const test = anyTest as TestFn<Shared>;

/** Every registry a node might reach, dead. */
const DEAD = {
  npm_config_registry: 'http://127.0.0.1:9/',
  HTTPS_PROXY: 'http://127.0.0.1:9',
  HTTP_PROXY: 'http://127.0.0.1:9',
};

const ROOT_PACKAGE = {
  name: 'shapes-app',
  version: '1.0.0',
  private: true,
  workspaces: ['packages/api'],
  dependencies: {
    'tiny-ms': '2.0.0',
    'dep-a': '1.0.0',
    'dep-b': '1.0.0',
    'tiny-ms-v1': 'npm:tiny-ms@1.0.0',
    '@corp/plugin': '1.0.0',
    '@corp/host': '1.0.0',
    'with-bundle': '1.0.0',
    native: '1.0.0',
    'old-thing': '1.0.0',
    api: '1.0.0',
  },
};

async function publishShapes(registry: Registry, dir: string): Promise<void> {
  for (const version of ['1.0.0', '2.0.0']) {
    await registry.publish({
      name: 'tiny-ms',
      version,
      files: {'index.js': `module.exports = '${version}';\n`},
    });
  }
  for (const name of ['dep-a', 'dep-b']) {
    await registry.publish({name, version: '1.0.0', dependencies: {'tiny-ms': '1.0.0'}});
  }
  await registry.publish({name: '@corp/host', version: '1.0.0'});
  await registry.publish({
    name: '@corp/plugin',
    version: '1.0.0',
    manifest: {peerDependencies: {'@corp/host': '^1.0.0'}},
  });
  await registry.publish({
    name: 'with-bundle',
    version: '1.0.0',
    manifest: {bundleDependencies: ['inner'], dependencies: {inner: '1.0.0'}},
    files: {
      'index.js': "module.exports = require('inner');\n",
      'node_modules/inner/package.json': '{"name": "inner", "version": "1.0.0"}\n',
      'node_modules/inner/index.js': "module.exports = 'bundled';\n",
    },
  });
  for (const [os, cpu] of [
    ['linux', 'x64'],
    ['darwin', 'arm64'],
  ]) {
    await registry.publish({
      name: `native-${os}-${cpu}`,
      version: '1.0.0',
      os: [os ?? ''],
      manifest: {cpu: [cpu]},
    });
  }
  await registry.publish({
    name: 'native',
    version: '1.0.0',
    scripts: {postinstall: "node -e \"require('fs').writeFileSync('built.txt', 'built')\""},
    manifest: {
      optionalDependencies: {'native-linux-x64': '1.0.0', 'native-darwin-arm64': '1.0.0'},
    },
  });
  await registry.publish({name: 'old-thing', version: '1.0.0'});
  await registry.npm(['deprecate', 'old-thing@1.0.0', 'use new-thing'], dir);
}

test.before(async t => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-real-lockfiles-'));
  const registry = await startRegistry(path.join(dir, 'registry'));
  await publishShapes(registry, dir);
  const lockApp = path.join(dir, 'lock-app');
  await writeAppFiles(lockApp);
  await registry.npm(['install', '--package-lock-only', '--ignore-scripts'], lockApp);
  // A plain lockfile (no workspaces, no duplicates) for the failure test.
  const lockSimple = await lockedApp(registry, path.join(dir, 'lock-simple'), {
    name: 'simple',
    version: '1.0.0',
    dependencies: {'@corp/host': '1.0.0', 'tiny-ms': '2.0.0', 'with-bundle': '1.0.0'},
  });
  t.context = {dir, registry, lockApp, lockSimple};
});

test.after.always(async t => {
  await t.context.registry.close();
  await fsp.rm(t.context.dir, {recursive: true, force: true});
});

async function writeAppFiles(dir: string): Promise<void> {
  await fsp.mkdir(path.join(dir, 'packages/api'), {recursive: true});
  await fsp.writeFile(path.join(dir, 'package.json'), JSON.stringify(ROOT_PACKAGE, null, 2));
  await fsp.writeFile(
    path.join(dir, 'packages/api/package.json'),
    JSON.stringify({name: 'api', version: '1.0.0', dependencies: {'tiny-ms': '^1.0.0'}}, null, 2),
  );
  await fsp.writeFile(path.join(dir, 'packages/api/index.js'), "module.exports = 'api';\n");
}

/** The app work tree: the shapes lockfile and a deploy.json naming only the vendor URL. */
async function shapesWorld(t: Parameters<typeof makeWorld>[0], lockApp: string, registry: string) {
  const world = await makeWorld(t, {allowPush: true});
  await writeAppFiles(world.app.dir);
  await fsp.copyFile(
    path.join(lockApp, 'package-lock.json'),
    path.join(world.app.dir, 'package-lock.json'),
  );
  await world.app.write({
    'index.js': "console.log(require('tiny-ms'), require('tiny-ms-v1'), require('api'));\n",
    'deploy.json': `${JSON.stringify({vendor: {url: '../vendor.git'}, install: {type: 'npm', registries: [registry]}}, null, 2)}\n`,
  });
  return world;
}

/** What an install put under node_modules, from npm's hidden lockfile: path -> name@version. */
async function installed(dir: string): Promise<Record<string, string>> {
  const lock = JSON.parse(
    await fsp.readFile(path.join(dir, 'node_modules', '.package-lock.json'), 'utf8'),
  ) as {
    packages: Record<string, {name?: string; version?: string; link?: boolean; resolved?: string}>;
  };
  return Object.fromEntries(
    Object.entries(lock.packages).map(([key, e]) => [
      key,
      e.link ? `link:${e.resolved ?? ''}` : `${e.name ?? ''}@${e.version ?? ''}`,
    ]),
  );
}

/** First pin into a new empty vendor directory, pushed to a bare repository on a path. */
async function firstPin(world: World): Promise<{vendorDir: string; stdout: string}> {
  const vendorDir = path.join(world.dir, 'work', 'vendor-new');
  const bare = path.join(world.servedDir, 'vendor.git');
  await fsp.mkdir(bare, {recursive: true});
  await git(bare, ['init', '-q', '--bare', '-b', 'main']);
  const first = await runVendorSyncBin(
    ['--app', world.app.dir, '--vendor', vendorDir, '--update-pin'],
    world.dir,
  );
  if (first.code !== 0) throw new Error(`vendor-sync exited ${first.code}: ${first.stderr}`);
  await git(vendorDir, ['remote', 'add', 'origin', bare]);
  const push = await runVendorSyncBin(
    ['--app', world.app.dir, '--vendor', vendorDir, '--push'],
    world.dir,
  );
  if (push.code !== 0) throw new Error(`vendor-sync --push exited ${push.code}: ${push.stderr}`);
  return {vendorDir, stdout: `${first.stdout}${first.stderr}`};
}

test('real lockfile shapes: first pin, deploy with the registry dead, the tree npm ci installs', async t => {
  const {lockApp, registry} = t.context;
  const world = await shapesWorld(t, lockApp, registry.url);
  const {vendorDir, stdout} = await firstPin(world);

  // tiny-ms@1.0.0 sits at three paths (two nested copies and an alias): one artifact.
  const lock = JSON.parse(await fsp.readFile(path.join(lockApp, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, {version?: string; name?: string}>;
  };
  const tinyV1 = Object.entries(lock.packages).filter(
    ([k, e]) => (e.name ?? k.split('node_modules/').pop()) === 'tiny-ms' && e.version === '1.0.0',
  );
  t.true(tinyV1.length >= 3, `tiny-ms@1.0.0 at ${tinyV1.map(([k]) => k).join(', ')}`);
  const manifest = await readVendorManifest(vendorDir);
  const names = manifest.artifacts.map(a => `${a.name}@${a.version}`).sort();
  t.deepEqual(names, [...new Set(names)]);
  t.true(names.includes('tiny-ms@1.0.0') && names.includes('tiny-ms@2.0.0'));
  t.false(names.some(n => n.startsWith('api@') || n.startsWith('inner@')));
  t.false(names.includes('native-darwin-arm64@1.0.0'));
  const match = /(\d+) artifacts for (\d+) lockfile entries/.exec(stdout);
  t.truthy(match, stdout);
  t.is(Number(match?.[1]), manifest.artifacts.length);
  t.true(Number(match?.[2]) > manifest.artifacts.length);
  t.is(await git(vendorDir, ['status', '--porcelain']), '');

  await world.app.commit('app with its first vendor pin');
  await world.publish();
  const deployed = await runDeployBin(
    ['--rev', 'main', '--repo', world.appUrl, '--root', world.root],
    DEAD,
  );
  t.is(deployed.code, 0, deployed.stderr);
  const current = path.join(world.root, 'current');

  const native = path.join(world.dir, 'native');
  await gitArchive(world.app.dir, 'HEAD', native);
  await registry.npm(['ci', '--omit=dev'], native);
  t.deepEqual(await installed(current), await installed(native));
  const run = await exec(process.execPath, ['index.js'], {cwd: current});
  t.is(run.stdout.trim(), '2.0.0 1.0.0 api');
  t.is(await fsp.readFile(path.join(current, 'node_modules/native/built.txt'), 'utf8'), 'built');
  t.is(
    (
      await exec(process.execPath, ['-e', "console.log(require('with-bundle'))"], {cwd: current})
    ).stdout.trim(),
    'bundled',
  );
});

test('deploy names a missing artifact once, with the lockfile paths it serves', async t => {
  const {lockApp, registry} = t.context;
  const world = await shapesWorld(t, lockApp, registry.url);
  const {vendorDir} = await firstPin(world);
  // A vendor commit without tiny-ms@1.0.0 (as a hand edit would leave it).
  const manifest = await readVendorManifest(vendorDir);
  const dropped = manifest.artifacts.find(a => a.name === 'tiny-ms' && a.version === '1.0.0');
  t.truthy(dropped);
  await git(vendorDir, ['rm', '-q', dropped?.path ?? '']);
  manifest.artifacts = manifest.artifacts.filter(a => a !== dropped);
  await fsp.writeFile(
    path.join(vendorDir, 'vendor-manifest.json'),
    `${JSON.stringify(manifest, null, 2)}\n`,
  );
  await git(vendorDir, ['commit', '-q', '-am', 'drop tiny-ms 1.0.0']);
  const rev = await git(vendorDir, ['rev-parse', 'HEAD']);
  await git(vendorDir, ['push', '-q', 'origin', 'HEAD:main']);
  const config = JSON.parse(
    await fsp.readFile(path.join(world.app.dir, 'deploy.json'), 'utf8'),
  ) as {
    vendor: {rev: string};
  };
  config.vendor.rev = rev;
  await world.app.write({'deploy.json': JSON.stringify(config, null, 2)});
  await world.app.commit('pin the vendor commit without tiny-ms 1.0.0');
  await world.publish();

  const run = await runDeployBin(
    ['--rev', 'main', '--repo', world.appUrl, '--root', world.root],
    DEAD,
  );
  t.is(run.code, 6, run.stderr);
  const lines = run.stderr.split('\n').filter(l => l.includes('not in the vendor repo'));
  t.is(lines.length, 1, run.stderr);
  t.regex(lines[0] ?? '', /tiny-ms@1\.0\.0 \(.*node_modules\/dep-a\/node_modules\/tiny-ms/);
  t.regex(lines[0] ?? '', /node_modules\/tiny-ms-v1/);
  t.regex(run.stderr, /1 npm artifact problem/);
});

test('a vendor-sync that fails while moving files in leaves the work tree and index as they were', async t => {
  const {lockSimple, registry} = t.context;
  const world = await makeWorld(t);
  for (const file of ['package.json', 'package-lock.json']) {
    await fsp.copyFile(path.join(lockSimple, file), path.join(world.app.dir, file));
  }
  const vendorDir = path.join(world.dir, 'work', 'vendor-new');
  await fsp.mkdir(vendorDir, {recursive: true});
  await git(vendorDir, ['init', '-q', '-b', 'main']);
  await fsp.writeFile(path.join(vendorDir, 'README.md'), 'vendor\n');
  await git(vendorDir, ['add', '-A']);
  await git(vendorDir, ['commit', '-q', '-m', 'start']);
  const config = {
    vendor: {url: '../vendor.git', rev: await git(vendorDir, ['rev-parse', 'HEAD'])},
    install: {type: 'npm', registries: [registry.url]},
  };
  await world.app.write({'deploy.json': JSON.stringify(config, null, 2)});
  // A file where vendor-sync needs a folder (npm/with-bundle/, the last in lockfile order): the
  // move of that tarball fails after the others have been moved in.
  await fsp.mkdir(path.join(vendorDir, 'npm'));
  await fsp.writeFile(path.join(vendorDir, 'npm', 'with-bundle'), 'in the way\n');
  const before = await snapshotTree(vendorDir, ['.git']);
  const statusBefore = await git(vendorDir, ['status', '--porcelain']);
  const indexBefore = await git(vendorDir, ['ls-files', '--stage']);

  const run = await runVendorSyncBin(['--app', world.app.dir, '--vendor', vendorDir], world.dir);
  t.is(run.code, 5, run.stderr);
  t.regex(run.stderr, /Could not place npm\/with-bundle\/with-bundle-1\.0\.0\.tgz .*in the way/);
  t.deepEqual(await snapshotTree(vendorDir, ['.git']), before);
  t.is(await git(vendorDir, ['status', '--porcelain']), statusBefore);
  t.is(await git(vendorDir, ['ls-files', '--stage']), indexBefore);
  t.deepEqual(
    (await fsp.readdir(path.join(vendorDir, '.git'))).filter(n => n.startsWith('vendor-sync-')),
    [],
  );
  t.is(await git(vendorDir, ['rev-list', '--count', 'HEAD']), '1');
});
