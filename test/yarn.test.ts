import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {promisify} from 'node:util';
import anyTest, {type ExecutionContext, type TestFn} from 'ava';
import {ConfigError, IntegrityError} from '../lib/support/errors.js';
import {currentPlatform} from '../lib/pins/npm-lockfile.js';
import {readVendorManifest} from '../lib/pins/vendor-manifest.js';
import {vendorSync} from '../vendor-sync/sync.js';
import {startRegistry, type Registry} from './helpers/npm-registry.js';
import {git} from './helpers/repos.js';
import {snapshotTree} from './helpers/tree.js';
import {
  makeWorld,
  packageRoot,
  runDeploy,
  runVendorSyncBin,
  testDeps,
  vendorSyncDeps,
  type World,
} from './helpers/world.js';
import {check} from '../lib/check/check.js';
import {parseBerryLock} from '../lib/pins/yarn-berry-lock.js';

const exec = promisify(execFile);

type Shared = {dir: string; registry: Registry; yarnSha512: string; app: string; online: string};
const test = anyTest as TestFn<Shared>;
type T = ExecutionContext<Shared>;

const YARN_JS = path.join(packageRoot, 'node_modules', 'yarn', 'bin', 'yarn.js');
/** An OS this node is not: the optional package for it is fetched by Yarn 1 but not linked. */
const OTHER_OS = process.platform === 'win32' ? 'linux' : 'win32';

/** The real Yarn 1 of the devDependencies, online against `registry`, with no config of ours. */
async function yarnOnline(registry: Registry, cwd: string, args: string[]): Promise<string> {
  const home = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-yarn-home-'));
  try {
    const {stdout} = await exec(
      process.execPath,
      [YARN_JS, ...args, '--no-default-rc', '--registry', registry.url, '--non-interactive'],
      {
        cwd,
        env: {PATH: process.env.PATH, HOME: home, YARN_CACHE_FOLDER: path.join(home, 'cache')},
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    return stdout;
  } finally {
    await fsp.rm(home, {recursive: true, force: true});
  }
}

async function publishPackages(registry: Registry): Promise<void> {
  for (const version of ['1.0.0', '1.1.0', '2.0.0']) {
    await registry.publish({
      name: 'left',
      version,
      files: {'index.js': `module.exports = '${version}';\n`},
    });
  }
  await registry.publish({name: 'mid', version: '1.0.0', dependencies: {left: '^2.0.0'}});
  await registry.publish({name: '@demo/scoped', version: '1.0.0', dependencies: {left: '^1.0'}});
  await registry.publish({name: 'native-other', version: '1.0.0', os: [OTHER_OS]});
  await registry.publish({name: 'dev-tool', version: '1.0.0'});
  // The Yarn release the app pins, packed from the devDependencies as npm would publish it.
  const packDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-yarn-pack-'));
  const {stdout} = await exec('npm', [
    'pack',
    '--ignore-scripts',
    '--pack-destination',
    packDir,
    path.join(packageRoot, 'node_modules', 'yarn'),
  ]);
  const tarball = await fsp.readFile(path.join(packDir, stdout.trim().split('\n').at(-1) ?? ''));
  await registry.publishTarball('yarn', '1.22.22', tarball);
  await fsp.rm(packDir, {recursive: true, force: true});
}

function appFiles(yarnSha512: string): Record<string, string> {
  return {
    'package.json': JSON.stringify(
      {
        name: 'yarn-app',
        version: '1.0.0',
        private: true,
        packageManager: `yarn@1.22.22+sha512.${yarnSha512}`,
        workspaces: ['packages/*'],
        dependencies: {
          left: '^1.0.0',
          mid: '1.0.0',
          '@demo/scoped': '1.0.0',
          aliased: 'npm:left@^2.0.0',
        },
        optionalDependencies: {'native-other': '1.0.0'},
        devDependencies: {'dev-tool': '1.0.0'},
      },
      null,
      2,
    ),
    'packages/util/package.json': JSON.stringify({
      name: '@app/util',
      version: '1.0.0',
      dependencies: {left: '^1.1.0'},
    }),
    'packages/util/index.js': "module.exports = require('left');\n",
    'index.js':
      "console.log([require('left'), require('aliased'), require('mid/package.json').version, require('@app/util')].join(' '));\n",
  };
}

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await fsp.mkdir(path.dirname(path.join(dir, rel)), {recursive: true});
    await fsp.writeFile(path.join(dir, rel), content);
  }
}

test.before(async t => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-yarn-'));
  const registry = await startRegistry(path.join(dir, 'registry'));
  await publishPackages(registry);
  const packed = await registry.npm(['view', 'yarn@1.22.22', 'dist.integrity'], dir);
  const yarnSha512 = Buffer.from(packed.trim().replace(/^sha512-/, ''), 'base64').toString('hex');
  // The app as its developer commits it: yarn.lock written by the real Yarn online.
  const app = path.join(dir, 'app');
  await writeFiles(app, appFiles(yarnSha512));
  await yarnOnline(registry, app, ['install', '--ignore-scripts']);
  await fsp.rm(path.join(app, 'node_modules'), {recursive: true, force: true});
  await fsp.rm(path.join(app, 'packages/util/node_modules'), {recursive: true, force: true});
  // What Yarn itself installs online, from that same lockfile, as a deploy installs (no dev).
  const online = path.join(dir, 'online');
  await fsp.cp(app, online, {recursive: true});
  await yarnOnline(registry, online, ['install', '--frozen-lockfile', '--production']);
  t.context = {dir, registry, yarnSha512, app, online};
});

let closed = false;

test.after.always(async t => {
  if (!closed) await t.context.registry.close();
  await fsp.rm(t.context.dir, {recursive: true, force: true});
});

/** An app world with the committed app, vendor-synced against the registry and pinned. */
async function syncedWorld(t: T, install: Record<string, unknown> = {}): Promise<World> {
  const world = await makeWorld(t);
  await world.vendor.write({'README.md': 'vendor repository\n'});
  const vendorSha = await world.vendor.commit('start');
  await world.vendor.publish(path.join(world.servedDir, 'vendor.git'));
  await world.vendor.git('remote', 'add', 'origin', world.vendorUrl);
  await fsp.cp(t.context.app, world.app.dir, {recursive: true});
  await world.app.write({
    'deploy.json': JSON.stringify({
      vendor: {url: '../vendor.git', rev: vendorSha},
      install: {type: 'yarn', registries: [t.context.registry.url], ...install},
    }),
  });
  await world.app.commit('app');
  await world.app.publish(path.join(world.servedDir, 'app.git'));
  await vendorSync(
    {
      app: world.app.dir,
      vendor: world.vendor.dir,
      keepUnused: false,
      dryRun: false,
      push: true,
      updatePin: true,
      pr: undefined,
      platforms: [currentPlatform()],
      concurrency: 4,
    },
    vendorSyncDeps(world.dir),
  );
  await world.app.commit('pin vendor');
  await world.publish();
  return world;
}

/** The environment of a deploy; the registry's request log starts empty (tests check it stays so). */
function registryDead(t: T): NodeJS.ProcessEnv {
  t.context.registry.seen.length = 0;
  return {PATH: process.env.PATH};
}

/** Whether Yarn ran for a release (the installer's line in its install log). */
async function ranYarn(releaseDir: string): Promise<boolean> {
  const log = await fsp
    .readFile(path.join(releaseDir, '.repodeploy/install.log'), 'utf8')
    .catch(() => '');
  return log.includes('offline mirror of');
}

test.serial(
  'yarn classic: vendor-sync vendors every yarn.lock tarball and the pinned Yarn',
  async t => {
    const world = await syncedWorld(t);
    const manifest = await readVendorManifest(world.vendor.dir);
    const names = manifest.artifacts.map(a => `${a.name}@${a.version}`).sort();
    t.deepEqual(names, [
      '@demo/scoped@1.0.0',
      'dev-tool@1.0.0',
      'left@1.1.0',
      'left@2.0.0',
      'mid@1.0.0',
      'native-other@1.0.0',
      'yarn@1.22.22',
    ]);
    const lock = await fsp.readFile(path.join(world.app.dir, 'yarn.lock'), 'utf8');
    t.regex(
      lock,
      /^"?left@\^1\.0"?, "?left@\^1\.0\.0"?, "?left@\^1\.1\.0"?:/m,
      'one entry, three ranges',
    );
    t.regex(lock, /^"?aliased@npm:left@\^2\.0\.0"?/m, 'an alias');
  },
);

test.serial(
  'yarn classic: a flipped byte in a vendored tarball or in Yarn is refused before Yarn runs',
  async t => {
    for (const target of ['left-2.0.0.tgz', 'yarn-1.22.22.tgz']) {
      const world = await syncedWorld(t);
      const manifest = await readVendorManifest(world.vendor.dir);
      const artifact = manifest.artifacts.find(a => a.path.endsWith(`/${target}`));
      if (!artifact) throw new Error(`no ${target} vendored`);
      const file = path.join(world.vendor.dir, artifact.path);
      const bytes = await fsp.readFile(file);
      bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0xff;
      await fsp.writeFile(file, bytes);
      await world.vendor.commit(`flip a byte in ${target}`);
      const sha = await git(world.vendor.dir, ['rev-parse', 'HEAD']);
      const config = JSON.parse(
        await fsp.readFile(path.join(world.app.dir, 'deploy.json'), 'utf8'),
      ) as {
        vendor: {rev: string};
      };
      config.vendor.rev = sha;
      await world.app.write({'deploy.json': JSON.stringify(config)});
      await world.app.commit('pin the damaged vendor commit');
      await world.publish();
      const error = await t.throwsAsync(
        runDeploy({root: world.root, rev: 'main', repo: world.appUrl}, {env: registryDead(t)}),
        {instanceOf: IntegrityError},
      );
      t.regex(error.message, target.startsWith('yarn') ? /yarn@1\.22\.22/ : /left@2\.0\.0/);
      t.false(
        await fsp
          .access(path.join(world.root, 'current'))
          .then(() => true)
          .catch(() => false),
        'no release went live',
      );
      t.deepEqual(t.context.registry.seen, [], 'the deploy asked no registry');
    }
  },
);

test.serial('yarn classic: bad lockfile entries are refused, each named', async t => {
  const world = await syncedWorld(t);
  const lockPath = path.join(world.app.dir, 'yarn.lock');
  let lock = await fsp.readFile(lockPath, 'utf8');
  // mid: sha1 only; @demo/scoped: a git source.
  lock = lock.replace(
    /(mid@1\.0\.0:\n(?: {2}.*\n)*?) {2}integrity sha512-\S+\n/,
    '$1  integrity sha1-AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n',
  );
  lock = lock.replace(
    /resolved "[^"]*scoped-1\.0\.0\.tgz#\w+"/,
    'resolved "git+https://example.invalid/scoped.git#abc"',
  );
  await fsp.writeFile(lockPath, lock);
  await world.app.commit('damage yarn.lock');
  await world.publish();
  const error = await t.throwsAsync(
    runDeploy({root: world.root, rev: 'main', repo: world.appUrl}, {env: registryDead(t)}),
    {instanceOf: IntegrityError},
  );
  t.regex(error.message, /mid@1\.0\.0.*sha1 alone is too weak/);
  t.regex(
    error.message,
    /@demo\/scoped@1\.0\.0.*git, file and link|@demo\/scoped@1\.0\.0.*resolved/,
  );
  t.regex(error.hint ?? '', /yarn\.lock/);
});

test.serial(
  'yarn classic: the bundled vendor-sync command reads yarn.lock as the library does',
  async t => {
    // The commands run from one esbuild bundle, where a CommonJS parser that reads __dirname as it
    // loads broke while the in-process tests passed.
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-yarn-bin-'));
    t.teardown(() => fsp.rm(dir, {recursive: true, force: true}));
    await fsp.cp(t.context.app, path.join(dir, 'app'), {recursive: true});
    await writeFiles(path.join(dir, 'app'), {
      'deploy.json': JSON.stringify({
        install: {type: 'yarn', registries: [t.context.registry.url]},
      }),
    });
    await fsp.mkdir(path.join(dir, 'vendor'));
    await git(path.join(dir, 'vendor'), ['init', '-q']);
    const run = await runVendorSyncBin(
      ['--app', 'app', '--vendor', 'vendor', '--npm-registry', t.context.registry.url, '--dry-run'],
      dir,
    );
    t.is(run.code, 0, run.stderr);
    t.regex(run.stdout + run.stderr, /artifacts? for \d+ lockfile entr/);
  },
);

test.serial('yarn classic: a packageManager that is not Yarn 1 is refused', async t => {
  const world = await syncedWorld(t);
  const pkgPath = path.join(world.app.dir, 'package.json');
  const pkg = JSON.parse(await fsp.readFile(pkgPath, 'utf8')) as Record<string, unknown>;
  pkg.packageManager = 'yarn@4.5.3';
  await fsp.writeFile(pkgPath, JSON.stringify(pkg));
  await world.app.commit('pin yarn 4');
  await world.publish();
  await t.throwsAsync(
    runDeploy({root: world.root, rev: 'main', repo: world.appUrl}, {env: registryDead(t)}),
    {instanceOf: ConfigError, message: /Yarn 1 lockfile, but package\.json pins "yarn@4\.5\.3"/},
  );
});

const BERRY_JS = path.join(packageRoot, 'node_modules', '@yarnpkg', 'cli-dist', 'bin', 'yarn.js');

/** The real Yarn 4 of the devDependencies, online against the registry, in `cwd`. */
async function berryOnline(registry: Registry, cwd: string): Promise<void> {
  const home = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-berry-home-'));
  try {
    await fsp.writeFile(
      path.join(cwd, '.yarnrc.yml'),
      `npmRegistryServer: "${registry.url}"\nunsafeHttpWhitelist:\n  - "127.0.0.1"\nenableGlobalCache: false\nnodeLinker: node-modules\nenableTelemetry: false\nnpmMinimalAgeGate: 0\n`,
    );
    await exec(process.execPath, [BERRY_JS, 'install', '--mode=update-lockfile'], {
      cwd,
      env: {PATH: process.env.PATH, HOME: home, YARN_ENABLE_TELEMETRY: '0', CI: '1'},
      maxBuffer: 64 * 1024 * 1024,
    });
  } finally {
    await fsp.rm(home, {recursive: true, force: true});
  }
}

test.serial(
  'yarn berry: a real Yarn 4 lockfile is read; with no vendor repo each zip is named missing',
  async t => {
    const world = await makeWorld(t);
    const files = appFiles(t.context.yarnSha512);
    const pkg = JSON.parse(files['package.json'] ?? '{}') as Record<string, unknown>;
    pkg.packageManager = 'yarn@4.18.1';
    await writeFiles(world.app.dir, {...files, 'package.json': JSON.stringify(pkg, null, 2)});
    await berryOnline(t.context.registry, world.app.dir);
    const text = await fsp.readFile(path.join(world.app.dir, 'yarn.lock'), 'utf8');
    const entries = parseBerryLock(text, 'yarn.lock');
    const foreign = entries.find(e => e.name === 'native-other');
    t.is(foreign?.conditions, `os=${OTHER_OS}`);
    t.is(foreign?.checksum, undefined, 'Yarn 4 writes no checksum for a package it never fetched');
    t.deepEqual(
      entries.map(e => `${e.name}@${e.version}`).sort(),
      [
        '@demo/scoped@1.0.0',
        'dev-tool@1.0.0',
        'left@1.1.0',
        'left@2.0.0',
        'mid@1.0.0',
        'native-other@1.0.0',
      ],
      "npm packages only: the root and the workspace are the app's own",
    );
    t.true(
      entries.every(e => e === foreign || e.checksum?.cacheKey === '10c0'),
      'Yarn 4 checksums carry the cache key',
    );
    t.true(
      entries.some(e => e.keys.some(k => k.startsWith('aliased@npm:left@'))),
      'the alias',
    );
    await world.app.write({
      'deploy.json': JSON.stringify({
        install: {type: 'yarn', registries: [t.context.registry.url]},
      }),
    });
    await world.app.commit('berry app');
    await world.publish();
    await t.throwsAsync(
      runDeploy({root: world.root, rev: 'main', repo: world.appUrl}, {env: registryDead(t)}),
      {instanceOf: IntegrityError, message: /mid@npm:1\.0\.0: no Yarn cache zip/},
    );
  },
);

test.serial(
  'yarn classic: deploys with the registry dead, the tree equal to Yarn online',
  async t => {
    const world = await syncedWorld(t);
    const env = registryDead(t);
    // Closed for good: nothing after this test needs it.
    closed = true;
    await t.context.registry.close();
    // deploy check proves the same changeset deployable, its install run offline in a scratch.
    const report = await check({rev: 'main', repo: world.appUrl, install: true}, testDeps({env}));
    t.true(report.deployable, JSON.stringify(report.checks));
    t.regex(
      report.checks.find(c => c.id === 'lockfile')?.message ?? '',
      /^yarn\.lock: 6 artifacts for \d+ lockfile entries/,
    );
    const first = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl}, {env});
    t.true(await ranYarn(first.releaseDir));
    const current = path.join(world.root, 'current');
    const {stdout} = await exec(process.execPath, [path.join(current, 'index.js')]);
    t.is(stdout.trim(), '1.1.0 2.0.0 1.0.0 1.1.0');
    const skip = (tree: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(tree).filter(([k]) => !k.endsWith('.yarn-integrity')));
    t.deepEqual(
      skip(await snapshotTree(path.join(current, 'node_modules'))),
      skip(await snapshotTree(path.join(t.context.online, 'node_modules'))),
      'node_modules as Yarn installs it online from the same lockfile',
    );
    const tree = await snapshotTree(path.join(current, 'node_modules'));
    t.like(tree, {
      'aliased/package.json': {type: 'file'},
      '@demo/scoped/package.json': {type: 'file'},
      '@app/util': {type: 'symlink'},
      'mid/node_modules/left/package.json': {type: 'file'},
    });
    // Measured: Yarn 1 --offline fails unless these two are in the mirror, though it links neither.
    await t.throwsAsync(fsp.access(path.join(current, 'node_modules/dev-tool')));
    await t.throwsAsync(fsp.access(path.join(current, 'node_modules/native-other')));

    // A second deploy of the same inputs copies node_modules (the root's and the workspace's).
    await world.app.write({'version.txt': '2\n'});
    await world.app.commit('version 2');
    await world.publish();
    const again = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl}, {env});
    t.false(await ranYarn(again.releaseDir), 'yarn did not run');
    const rerun = await exec(process.execPath, [path.join(world.root, 'current', 'index.js')]);
    t.is(rerun.stdout.trim(), '1.1.0 2.0.0 1.0.0 1.1.0', 'the copied dependencies work');
  },
);
