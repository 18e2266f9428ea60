import {execFile} from 'node:child_process';
import {createHash} from 'node:crypto';
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {promisify} from 'node:util';
import anyTest, {type ExecutionContext, type TestFn} from 'ava';
import {ConfigError, IntegrityError} from '../lib/support/errors.js';
import {currentPlatform} from '../lib/pins/npm-lockfile.js';
import {readVendorManifest} from '../lib/pins/vendor-manifest.js';
import {readBerryLock} from '../lib/pins/yarn-berry-lock.js';
import {check} from '../lib/check/check.js';
import {Http} from '../vendor-sync/http.js';
import {vendorSync} from '../vendor-sync/sync.js';
import {outdated} from '../vendor-sync/outdated.js';
import {startRegistry, type Registry} from './helpers/npm-registry.js';
import {git} from './helpers/repos.js';
import {snapshotTree} from './helpers/tree.js';
import {
  makeWorld,
  packageRoot,
  runDeploy,
  testDeps,
  vendorSyncDeps,
  type World,
} from './helpers/world.js';

const exec = promisify(execFile);

type Shared = {dir: string; registry: Registry; app: string; online: string};
const test = anyTest as TestFn<Shared>;
type T = ExecutionContext<Shared>;

const BERRY = path.join(packageRoot, 'node_modules', '@yarnpkg', 'cli-dist');
const BERRY_JS = path.join(BERRY, 'bin', 'yarn.js');
const OTHER_OS = process.platform === 'win32' ? 'linux' : 'win32';

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await fsp.mkdir(path.dirname(path.join(dir, rel)), {recursive: true});
    await fsp.writeFile(path.join(dir, rel), content);
  }
}

/** The real Yarn 4 of the devDependencies, online against `registry`, as a developer runs it. */
async function berryOnline(registry: Registry, cwd: string, args: string[]): Promise<void> {
  const home = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-berry-home-'));
  try {
    await exec(process.execPath, [BERRY_JS, ...args], {
      cwd,
      env: {
        PATH: process.env.PATH,
        HOME: home,
        YARN_ENABLE_TELEMETRY: '0',
        YARN_NPM_REGISTRY_SERVER: registry.url.replace(/\/$/, ''),
        YARN_UNSAFE_HTTP_WHITELIST: '127.0.0.1',
        // Packages published a moment ago are quarantined by default (npmMinimalAgeGate).
        YARN_NPM_MINIMAL_AGE_GATE: '0',
        YARN_ENABLE_GLOBAL_CACHE: '0',
        YARN_CACHE_FOLDER: path.join(home, 'cache'),
      },
      maxBuffer: 64 * 1024 * 1024,
    });
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
  // A per-platform package for this node: Yarn 4 fetches it but writes no checksum for it.
  await registry.publish({
    name: 'native-here',
    version: '1.0.0',
    os: [process.platform],
    manifest: {cpu: [process.arch]},
    files: {'index.js': "module.exports = 'here';\n"},
  });
  await registry.publish({name: 'dev-tool', version: '1.0.0'});
  const packDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-berry-pack-'));
  const {stdout} = await exec('npm', [
    'pack',
    '--ignore-scripts',
    '--pack-destination',
    packDir,
    BERRY,
  ]);
  const tarball = await fsp.readFile(path.join(packDir, stdout.trim().split('\n').at(-1) ?? ''));
  await registry.publishTarball('@yarnpkg/cli-dist', '4.18.1', tarball);
  await fsp.rm(packDir, {recursive: true, force: true});
}

/** A patch of left@1.0.0 the app keeps in .yarn/patches, as `yarn patch-commit` writes one. */
const LEFT_PATCH = `diff --git a/index.js b/index.js
--- a/index.js
+++ b/index.js
@@ -1 +1 @@
-module.exports = '1.0.0';
+module.exports = '1.0.0-patched';
`;

function appFiles(linker: string): Record<string, string> {
  return {
    'package.json': JSON.stringify(
      {
        name: 'berry-app',
        version: '1.0.0',
        private: true,
        packageManager: 'yarn@4.18.1',
        workspaces: ['packages/*'],
        dependencies: {
          left: '^1.0.0',
          mid: '1.0.0',
          '@demo/scoped': '1.0.0',
          aliased: 'npm:left@^2.0.0',
          patched: 'patch:left@npm%3A1.0.0#./.yarn/patches/left.patch',
          '@app/util': 'workspace:^',
        },
        optionalDependencies: {'native-other': '1.0.0', 'native-here': '1.0.0'},
        devDependencies: {'dev-tool': '1.0.0'},
      },
      null,
      2,
    ),
    '.yarnrc.yml': `nodeLinker: ${linker}\nenableTelemetry: false\n`,
    '.yarn/patches/left.patch': LEFT_PATCH,
    'packages/util/package.json': JSON.stringify({
      name: '@app/util',
      version: '1.0.0',
      dependencies: {left: '^1.1.0'},
    }),
    'packages/util/index.js': "module.exports = require('left');\n",
    'index.js':
      "console.log([require('left'), require('aliased'), require('patched'), require('native-here'), require('mid/package.json').version, require('@app/util')].join(' '));\n",
  };
}

test.before(async t => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-berry-'));
  const registry = await startRegistry(path.join(dir, 'registry'));
  await publishPackages(registry);
  const app = path.join(dir, 'app');
  await writeFiles(app, appFiles('node-modules'));
  await berryOnline(registry, app, ['install', '--mode=update-lockfile']);
  // What Yarn itself installs online from the same lockfile, without dev dependencies.
  const online = path.join(dir, 'online');
  await fsp.cp(app, online, {recursive: true});
  await berryOnline(registry, online, ['workspaces', 'focus', '--all', '--production']);
  t.context = {dir, registry, app, online};
});

test.after.always(async t => {
  await t.context.registry.close();
  await fsp.rm(t.context.dir, {recursive: true, force: true});
});

async function syncedWorld(t: T, files: Record<string, string> = {}): Promise<World> {
  const world = await makeWorld(t);
  await world.vendor.write({'README.md': 'vendor repository\n'});
  const vendorSha = await world.vendor.commit('start');
  await world.vendor.publish(path.join(world.servedDir, 'vendor.git'));
  await world.vendor.git('remote', 'add', 'origin', world.vendorUrl);
  await fsp.cp(t.context.app, world.app.dir, {recursive: true});
  await world.app.write({
    'deploy.json': JSON.stringify({
      vendor: {url: '../vendor.git', rev: vendorSha},
      install: {registries: [t.context.registry.url]},
    }),
    ...files,
  });
  await world.app.commit('app');
  await world.app.publish(path.join(world.servedDir, 'app.git'));
  await sync(t, world);
  await world.app.commit('pin vendor');
  await world.publish();
  return world;
}

async function sync(t: T, world: World): Promise<void> {
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
    vendorSyncDeps(world.dir, {npm: {registry: t.context.registry.url, scopes: new Map()}}),
  );
}

function registryDead(t: T): NodeJS.ProcessEnv {
  t.context.registry.seen.length = 0;
  return {PATH: process.env.PATH};
}

async function installLog(releaseDir: string): Promise<string> {
  return fsp.readFile(path.join(releaseDir, '.repodeploy/install.log'), 'utf8').catch(() => '');
}

const exists = (file: string) =>
  fsp.access(file).then(
    () => true,
    () => false,
  );

test.serial('yarn berry: vendor-sync vendors the cache zips yarn.lock pins, checked', async t => {
  const world = await syncedWorld(t);
  const manifest = await readVendorManifest(world.vendor.dir);
  const lock = readBerryLock(
    await fsp.readFile(path.join(world.app.dir, 'yarn.lock'), 'utf8'),
    'yarn.lock',
  );
  const zips = manifest.artifacts.filter(a => a.ecosystem === 'yarn');
  t.deepEqual(
    zips.map(a => `${a.name}@${a.version}`).sort(),
    [
      '@demo/scoped@npm:1.0.0',
      'dev-tool@npm:1.0.0',
      'left@npm:1.0.0',
      'left@npm:1.1.0',
      'left@npm:2.0.0',
      lock.entries.find(e => e.kind === 'patch')?.resolution ?? 'a patch',
      'mid@npm:1.0.0',
      'native-here@npm:1.0.0',
    ].sort(),
    'every package fetched on this platform, the foreign one left out',
  );
  for (const zip of zips) {
    t.regex(zip.path, /^yarn\/10c0\/[^/]+\.zip$/);
    const bytes = await fsp.readFile(path.join(world.vendor.dir, zip.path));
    const hex = createHash('sha512').update(bytes).digest('hex');
    const entry = lock.entries.find(e => e.resolution === `${zip.name}@${zip.version}`);
    if (entry?.checksum)
      t.is(hex, entry.checksum.sha512Hex, `${zip.path}: the lockfile's checksum`);
    else t.is(entry?.conditions, `os=${process.platform} & cpu=${process.arch}`);
  }
  t.true(manifest.artifacts.some(a => a.name === '@yarnpkg/cli-dist' && a.version === '4.18.1'));
  // Nothing to do the second time: Yarn does not run again.
  const before = await git(world.vendor.dir, ['rev-parse', 'HEAD']);
  await sync(t, world);
  t.is(await git(world.vendor.dir, ['rev-parse', 'HEAD']), before, 'no new vendor commit');
});

test.serial(
  'yarn berry: deploys with the registry dead, the tree equal to Yarn online',
  async t => {
    const world = await syncedWorld(t);
    const env = registryDead(t);
    const report = await check({rev: 'main', repo: world.appUrl, install: true}, testDeps({env}));
    t.true(report.deployable, JSON.stringify(report.checks));
    const first = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl}, {env});
    t.regex(
      await installLog(first.releaseDir),
      /cache of 8 verified zips, nodeLinker node-modules/,
    );
    const current = path.join(world.root, 'current');
    const {stdout} = await exec(process.execPath, [path.join(current, 'index.js')]);
    t.is(stdout.trim(), '1.1.0 2.0.0 1.0.0-patched here 1.0.0 1.1.0');
    const skip = (tree: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(tree).filter(([k]) => !k.endsWith('.yarn-state.yml')));
    t.deepEqual(
      skip(await snapshotTree(path.join(current, 'node_modules'))),
      skip(await snapshotTree(path.join(t.context.online, 'node_modules'))),
      'node_modules as Yarn installs it online from the same lockfile',
    );
    t.false(await exists(path.join(current, 'node_modules/dev-tool')), 'no dev dependency');
    t.deepEqual(t.context.registry.seen, [], 'no registry was asked');

    await world.app.write({'version.txt': '2\n'});
    await world.app.commit('version 2');
    await world.publish();
    const again = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl}, {env});
    t.notRegex(await installLog(again.releaseDir), /verified zips/, 'Yarn did not run again');
    const rerun = await exec(process.execPath, [path.join(world.root, 'current', 'index.js')]);
    t.is(rerun.stdout.trim(), stdout.trim(), 'the copied dependencies work');
  },
);

test.serial(
  'yarn berry: a flipped byte in a zip, checksummed or not, is refused before Yarn runs',
  async t => {
    for (const target of ['left-npm-2.0.0-', 'native-here-npm-1.0.0-']) {
      const world = await syncedWorld(t);
      const manifest = await readVendorManifest(world.vendor.dir);
      const artifact = manifest.artifacts.find(a => path.basename(a.path).startsWith(target));
      if (!artifact) throw new Error(`no ${target} zip vendored`);
      const file = path.join(world.vendor.dir, artifact.path);
      const bytes = await fsp.readFile(file);
      bytes[bytes.length - 30] = (bytes[bytes.length - 30] ?? 0) ^ 0xff;
      await fsp.writeFile(file, bytes);
      await world.vendor.commit(`flip a byte in ${target}`);
      const config = JSON.parse(
        await fsp.readFile(path.join(world.app.dir, 'deploy.json'), 'utf8'),
      ) as {
        vendor: {rev: string};
      };
      config.vendor.rev = await git(world.vendor.dir, ['rev-parse', 'HEAD']);
      await world.app.write({'deploy.json': JSON.stringify(config)});
      await world.app.commit('pin the damaged vendor commit');
      await world.publish();
      const error = await t.throwsAsync(
        runDeploy({root: world.root, rev: 'main', repo: world.appUrl}, {env: registryDead(t)}),
        {instanceOf: IntegrityError},
      );
      t.regex(error.message, new RegExp(target.split('-npm-')[0] ?? ''));
      t.false(await exists(path.join(world.root, 'current')), 'no release went live');
    }
  },
);

test.serial("yarn berry: Plug'n'Play reads the verified zips from the release", async t => {
  const world = await syncedWorld(t, {'.yarnrc.yml': 'nodeLinker: pnp\nenableNetwork: true\n'});
  const release = await runDeploy(
    {root: world.root, rev: 'main', repo: world.appUrl},
    {env: registryDead(t)},
  );
  const log = await installLog(release.releaseDir);
  t.regex(log, /nodeLinker pnp/);
  t.regex(log, /settings not used \(repodeploy sets these\): enableNetwork/);
  const current = path.join(world.root, 'current');
  t.false(await exists(path.join(current, 'node_modules', 'left')));
  const {stdout} = await exec(process.execPath, ['-r', './.pnp.cjs', 'index.js'], {cwd: current});
  t.is(stdout.trim(), '1.1.0 2.0.0 1.0.0-patched here 1.0.0 1.1.0');
});

test.serial('yarn berry: an archive URL off the allowed registries is refused', async t => {
  const world = await syncedWorld(t);
  const lockPath = path.join(world.app.dir, 'yarn.lock');
  const lock = await fsp.readFile(lockPath, 'utf8');
  await fsp.writeFile(
    lockPath,
    lock.replace(
      'resolution: "mid@npm:1.0.0"',
      'resolution: "mid@npm:1.0.0::__archiveUrl=https%3A%2F%2Fevil.example%2Fmid.tgz"',
    ),
  );
  await world.app.commit('point mid elsewhere');
  await world.publish();
  await t.throwsAsync(
    runDeploy({root: world.root, rev: 'main', repo: world.appUrl}, {env: registryDead(t)}),
    {instanceOf: IntegrityError, message: /evil\.example\/mid\.tgz is not on an allowed registry/},
  );
});

test.serial(
  'yarn berry: a production install with scripts off and a workspace postinstall is refused',
  async t => {
    const world = await syncedWorld(t);
    // In a workspace member: Yarn runs every workspace's own install scripts.
    const pkgPath = path.join(world.app.dir, 'packages/util/package.json');
    const pkg = JSON.parse(await fsp.readFile(pkgPath, 'utf8')) as Record<string, unknown>;
    pkg.scripts = {postinstall: 'node -e 1'};
    await fsp.writeFile(pkgPath, JSON.stringify(pkg));
    const config = JSON.parse(
      await fsp.readFile(path.join(world.app.dir, 'deploy.json'), 'utf8'),
    ) as {
      install: Record<string, unknown>;
    };
    config.install.scripts = false;
    await world.app.write({'deploy.json': JSON.stringify(config)});
    await world.app.commit('own postinstall, scripts off');
    await world.publish();
    await t.throwsAsync(
      runDeploy({root: world.root, rev: 'main', repo: world.appUrl}, {env: registryDead(t)}),
      {
        instanceOf: ConfigError,
        message: /packages\/util\/package\.json has its own postinstall script/,
      },
    );
  },
);

test.serial('yarn berry: a symlink the app commits where Yarn writes is refused', async t => {
  const world = await syncedWorld(t);
  const outside = path.join(world.dir, 'outside');
  await fsp.mkdir(outside);
  // Yarn writes .yarn/install-state.gz on every install (a committed node_modules link is refused
  // earlier, as a path deploy.json names).
  await fsp.rm(path.join(world.app.dir, '.yarn/install-state.gz'), {force: true});
  await fsp.symlink(
    path.join(outside, 'state.gz'),
    path.join(world.app.dir, '.yarn/install-state.gz'),
  );
  await world.app.commit('the install state points outside');
  await world.publish();
  await t.throwsAsync(
    runDeploy({root: world.root, rev: 'main', repo: world.appUrl}, {env: registryDead(t)}),
    {instanceOf: ConfigError, message: /symlink at \.yarn\/install-state\.gz, where Yarn writes/},
  );
  t.deepEqual(await fsp.readdir(outside), [], 'nothing written through it');
});

test.serial('yarn berry: vendor-sync outdated reports the npm versions of the zips', async t => {
  const world = await syncedWorld(t);
  const rows = await outdated({
    vendorDir: world.vendor.dir,
    http: new Http({backoffMs: 10}),
    npm: {registry: t.context.registry.url, scopes: new Map()},
    npmDefaultRegistry: t.context.registry.url,
    pypiIndex: 'http://127.0.0.1:9/simple/',
    github: () => {
      throw new Error('no GitHub here');
    },
  });
  const left = rows.filter(r => r.ecosystem === 'yarn' && r.name === 'left');
  t.deepEqual(
    left.map(r => [r.current, r.latest, r.outdated]).sort(),
    [
      ['1.0.0', '2.0.0', true],
      ['1.1.0', '2.0.0', true],
      ['2.0.0', '2.0.0', false],
    ],
    'one row per npm version: npm: zips and the patch of left@1.0.0 (under an alias) as left',
  );
});
