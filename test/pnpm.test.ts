import {createHash} from 'node:crypto';
import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {Writable} from 'node:stream';
import {promisify} from 'node:util';
import anyTest, {type ExecutionContext, type TestFn} from 'ava';
import ssri from 'ssri';
import {parse as parseYaml, stringify as stringifyYaml} from 'yaml';
import {IntegrityError} from '../lib/support/errors.js';
import {createHttpClient} from '../lib/http/client.js';
import {githubClient} from '../lib/http/github.js';
import {currentPlatform} from '../lib/pins/npm-lockfile.js';
import {readVendorManifest} from '../lib/pins/vendor-manifest.js';
import {silentReporter} from '../lib/support/reporter.js';
import {Http} from '../vendor-sync/http.js';
import {vendorSync} from '../vendor-sync/sync.js';
import {hostileTarball} from './helpers/archives.js';
import {startRegistry} from './helpers/npm-registry.js';
import {git} from './helpers/repos.js';
import {snapshotTree, type TreeEntry} from './helpers/tree.js';
import {
  makeWorld,
  packageRoot,
  pinVendor,
  runDeploy,
  runDeployBin,
  type World,
} from './helpers/world.js';

const exec = promisify(execFile);

/** The pnpm release the app pins: the devDependency, published into the test's own registry. */
const PNPM_VERSION = '10.34.9';
/** A pnpm release: its version and the devDependency folder that holds it. */
type PnpmRelease = {version: string; folder: string};
const PNPM_10: PnpmRelease = {version: PNPM_VERSION, folder: 'pnpm'};
/** pnpm 8, which writes lockfile 6.0. */
const PNPM_8: PnpmRelease = {version: '8.15.9', folder: 'pnpm8'};
const cliOf = (release: PnpmRelease) =>
  path.join(packageRoot, 'node_modules', release.folder, 'bin', 'pnpm.cjs');
const OTHER_OS = process.platform === 'linux' ? 'darwin' : 'linux';

/** An app built against the registry: as committed, vendored, and as pnpm installs it online. */
type BuiltApp = {
  appDir: string;
  vendorDir: string;
  expected: Record<string, TreeEntry>;
};

type Shared = {
  dir: string;
  registryUrl: string;
  /** The same app with pnpm 8 and its lockfile 6.0. */
  pnpm8: BuiltApp;
  /** The pnpm 10 app vendored and installed online with its devDependencies. */
  dev: BuiltApp;
  /** The app as its developer commits it: package.json files, the workspace, pnpm-lock.yaml. */
  appDir: string;
  /** A vendor repository vendor-sync filled from the registry (a git work tree). */
  vendorDir: string;
  /** node_modules trees as pnpm itself installs them online from the same lockfile. */
  expected: Record<string, TreeEntry>;
};
const test = anyTest as TestFn<Shared>;
type T = ExecutionContext<Shared>;

/** pnpm's own bookkeeping, which names paths and times of the machine that ran it. */
const BOOKKEEPING = ['.modules.yaml', '.pnpm-workspace-state-v1.json'];

/** Every node_modules pnpm writes in the app (the root and the workspace member). */
async function installedTree(dir: string): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  for (const rel of ['node_modules', 'packages/member/node_modules']) {
    const tree = await snapshotTree(path.join(dir, rel), BOOKKEEPING);
    for (const [key, entry] of Object.entries(tree)) out[`${rel}/${key}`] = entry;
  }
  return out;
}

/** The real pnpm, with no config of the machine's, against the test's registry. */
async function pnpm(
  dir: string,
  registryUrl: string,
  cwd: string,
  args: string[],
  release: PnpmRelease,
) {
  const home = path.join(dir, 'pnpm-home');
  await fsp.mkdir(home, {recursive: true});
  await fsp.writeFile(path.join(dir, 'empty-npmrc'), '');
  await exec(
    process.execPath,
    [
      cliOf(release),
      ...args,
      `--config.registry=${registryUrl}`,
      `--store-dir=${path.join(dir, `online-store-${release.version}`)}`,
      '--package-import-method=copy',
    ],
    {
      cwd,
      env: {
        PATH: process.env.PATH,
        HOME: home,
        XDG_CONFIG_HOME: path.join(home, '.config'),
        npm_config_userconfig: path.join(dir, 'empty-npmrc'),
      },
    },
  );
}

async function publishPackages(registry: Awaited<ReturnType<typeof startRegistry>>) {
  const lib = (name: string, version: string, extra = {}) =>
    registry.publish({
      name,
      version,
      files: {'index.js': `module.exports = ${JSON.stringify(`${name}@${version}`)};\n`},
      ...extra,
    });
  await lib('left-pad', '1.0.0');
  await lib('left-pad', '2.0.0');
  await lib('uses-old', '1.0.0', {dependencies: {'left-pad': '1.0.0'}});
  await lib('@acme/util', '1.2.0');
  await lib('real-name', '3.0.0');
  await lib('devonly', '1.0.0');
  await lib('native-here', '1.0.0', {os: [process.platform]});
  await lib('native-other', '1.0.0', {os: [OTHER_OS]});
  await lib('has-native', '1.0.0', {
    manifest: {optionalDependencies: {'native-here': '1.0.0', 'native-other': '1.0.0'}},
  });
}

/** The pnpm release as an npm tarball (`npm pack` of the devDependency), and its sha512 hex. */
async function packPnpm(dir: string, release: PnpmRelease): Promise<{bytes: Buffer; hex: string}> {
  await exec(
    'npm',
    [
      'pack',
      path.join(packageRoot, 'node_modules', release.folder),
      '--pack-destination',
      dir,
      '--ignore-scripts',
    ],
    {cwd: dir},
  );
  const bytes = await fsp.readFile(path.join(dir, `pnpm-${release.version}.tgz`));
  return {bytes, hex: createHash('sha512').update(bytes).digest('hex')};
}

async function writeApp(appDir: string, version: string, managerHex: string): Promise<void> {
  await fsp.mkdir(path.join(appDir, 'packages', 'member'), {recursive: true});
  const pkg = {
    name: 'pnpm-app',
    version: '1.0.0',
    private: true,
    packageManager: `pnpm@${version}+sha512.${managerHex}`,
    dependencies: {
      'left-pad': '2.0.0',
      'uses-old': '1.0.0',
      '@acme/util': '1.2.0',
      aliased: 'npm:real-name@3.0.0',
      'has-native': '1.0.0',
      member: 'workspace:*',
    },
    devDependencies: {devonly: '1.0.0'},
    // A patched dependency: pnpm applies the app's patch file as it installs.
    pnpm: {patchedDependencies: {'left-pad@1.0.0': 'patches/left-pad@1.0.0.patch'}},
  };
  await fsp.mkdir(path.join(appDir, 'patches'), {recursive: true});
  await fsp.writeFile(
    path.join(appDir, 'patches', 'left-pad@1.0.0.patch'),
    [
      'diff --git a/index.js b/index.js',
      '--- a/index.js',
      '+++ b/index.js',
      '@@ -1 +1 @@',
      '-module.exports = "left-pad@1.0.0";',
      '+module.exports = "left-pad@1.0.0 patched";',
      '',
    ].join('\n'),
  );
  await fsp.writeFile(path.join(appDir, 'package.json'), JSON.stringify(pkg, null, 2));
  await fsp.writeFile(
    path.join(appDir, 'packages', 'member', 'package.json'),
    JSON.stringify({name: 'member', version: '0.1.0', dependencies: {'left-pad': '1.0.0'}}),
  );
  await fsp.writeFile(
    path.join(appDir, 'packages', 'member', 'index.js'),
    "module.exports = require('left-pad');\n",
  );
  await fsp.writeFile(path.join(appDir, 'pnpm-workspace.yaml'), 'packages:\n  - packages/*\n');
  await fsp.writeFile(
    path.join(appDir, 'index.js'),
    "console.log([require('left-pad'), require('uses-old'), require('@acme/util'), require('aliased'), require('member')].join(' '));\n",
  );
}

/** vendor-sync with the registry up: the lockfile's tarballs and the pnpm release. */
async function syncVendor(
  dir: string,
  appDir: string,
  registryUrl: string,
  dev = false,
): Promise<string> {
  const vendorDir = `${appDir}-vendor${dev ? '-dev' : ''}`;
  await fsp.mkdir(vendorDir, {recursive: true});
  await git(vendorDir, ['init', '-q', '-b', 'main']);
  await fsp.writeFile(path.join(vendorDir, 'README.md'), 'vendor repository\n');
  await git(vendorDir, ['add', '.']);
  await git(vendorDir, ['commit', '-q', '-m', 'start']);
  await fsp.writeFile(
    path.join(appDir, 'deploy.json'),
    JSON.stringify({install: {type: 'pnpm', registries: [registryUrl], dev}}),
  );
  await vendorSync(
    {
      app: appDir,
      vendor: vendorDir,
      keepUnused: false,
      dryRun: false,
      push: false,
      updatePin: false,
      pr: undefined,
      platforms: [currentPlatform()],
      concurrency: 8,
    },
    {
      http: new Http({backoffMs: 10}),
      gitHttp: createHttpClient(),
      gitCredentials: undefined,
      upstreams: {
        npm: {registry: undefined, scopes: new Map()},
        pypiIndex: 'http://127.0.0.1:9/',
        github: () => githubClient({apiUrl: 'http://127.0.0.1:9', token: 'unused'}),
        githubToken: 'unused',
      },
      reporter: silentReporter,
      progressStream: new Writable({
        write: (_chunk, _encoding, done) => {
          done();
        },
      }),
      cwd: dir,
      clock: () => new Date('2026-12-01T10:00:00Z'),
      author: {name: 'Vendor Bot', email: 'bot@example.invalid'},
    },
  );
  await fsp.rm(path.join(appDir, 'deploy.json'));
  return vendorDir;
}

/**
 * The app with one pnpm release: that release published to the registry, the lockfile it writes
 * online, the tree it installs online from that lockfile, and vendor-sync's vendor repo.
 */
async function buildApp(
  dir: string,
  registry: Awaited<ReturnType<typeof startRegistry>>,
  release: PnpmRelease,
): Promise<BuiltApp> {
  const manager = await packPnpm(dir, release);
  await registry.publishTarball('pnpm', release.version, manager.bytes);
  const appDir = path.join(dir, `app-${release.version}`);
  await writeApp(appDir, release.version, manager.hex);
  await pnpm(dir, registry.url, appDir, ['install', '--lockfile-only'], release);
  const online = path.join(dir, `online-${release.version}`);
  await fsp.cp(appDir, online, {recursive: true});
  await pnpm(dir, registry.url, online, ['install', '--frozen-lockfile', '--prod'], release);
  const expected = await installedTree(online);
  const vendorDir = await syncVendor(dir, appDir, registry.url);
  return {appDir, vendorDir, expected};
}

test.before(async t => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-pnpm-'));
  const registry = await startRegistry(path.join(dir, 'registry'));
  try {
    await publishPackages(registry);
    const pnpm10 = await buildApp(dir, registry, PNPM_10);
    const pnpm8 = await buildApp(dir, registry, PNPM_8);
    const withDev = path.join(dir, 'online-dev');
    await fsp.cp(pnpm10.appDir, withDev, {recursive: true});
    await pnpm(dir, registry.url, withDev, ['install', '--frozen-lockfile'], PNPM_10);
    const dev = {
      appDir: pnpm10.appDir,
      vendorDir: await syncVendor(dir, pnpm10.appDir, registry.url, true),
      expected: await installedTree(withDev),
    };
    t.context = {dir, registryUrl: registry.url, ...pnpm10, pnpm8, dev};
  } finally {
    // Every deploy below runs with the registry gone.
    await registry.close();
  }
});

test.after.always(async t => {
  if (t.context.dir) await fsp.rm(t.context.dir, {recursive: true, force: true});
});

/** A world whose app is the pnpm app and whose vendor repo is vendor-sync's, pinned. */
async function pnpmWorld(
  t: T,
  install: Record<string, unknown> = {},
  mutate?: (w: {appDir: string; vendorDir: string}) => Promise<void>,
  built: BuiltApp = t.context,
): Promise<World> {
  const world = await makeWorld(t);
  await fsp.cp(built.vendorDir, world.vendor.dir, {
    recursive: true,
    filter: src => path.basename(src) !== '.git',
  });
  await fsp.cp(built.appDir, world.app.dir, {recursive: true});
  await mutate?.({appDir: world.app.dir, vendorDir: world.vendor.dir});
  await pinVendor(world, {
    config: {install: {type: 'pnpm', registries: [t.context.registryUrl], ...install}},
    vendorMessage: 'vendor pnpm tarballs',
  });
  return world;
}

async function installLog(releaseDir: string): Promise<string | undefined> {
  return fsp
    .readFile(path.join(releaseDir, '.repodeploy/install.log'), 'utf8')
    .catch(() => undefined);
}

/** The install log's line for the offline pnpm install, behind the network wall or not. */
const PNPM_RAN = /^\$ (?:\S*unshare -n -- )?\S+ \S+pnpm\.cjs install --offline --frozen-lockfile/m;

/** Every regular file under `dir` with more than one link: none may share an inode. */
async function sharedInodes(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fsp.readdir(dir, {recursive: true, withFileTypes: true})) {
    const full = path.join(entry.parentPath, entry.name);
    if (entry.isFile() && (await fsp.stat(full)).nlink > 1) out.push(full);
  }
  return out;
}

async function flipByte(file: string): Promise<void> {
  const bytes = await fsp.readFile(file);
  const middle = Math.floor(bytes.length / 2);
  bytes[middle] = (bytes[middle] ?? 0) ^ 0x01;
  await fsp.writeFile(file, bytes);
}

/** A refused deploy: nothing went live and no installer wrote a log (it never started). */
async function refusedBeforePnpm(t: T, world: World): Promise<void> {
  await t.throwsAsync(fsp.access(path.join(world.root, 'current')), undefined, 'nothing live');
  const [failed] = await fsp.readdir(path.join(world.root, 'releases'));
  const releaseDir = path.join(world.root, 'releases', failed ?? '');
  t.is(await installLog(releaseDir), undefined, 'pnpm never ran');
  await t.throwsAsync(fsp.access(path.join(releaseDir, 'node_modules')));
}

test('pnpm: vendored by vendor-sync, installed with the registry gone as pnpm installs online; reused next time', async t => {
  const manifest = await readVendorManifest(t.context.vendorDir);
  const vendored = manifest.artifacts.map(a => `${a.name}@${a.version}`).sort();
  t.deepEqual(vendored, [
    '@acme/util@1.2.0',
    'has-native@1.0.0',
    'left-pad@1.0.0',
    'left-pad@2.0.0',
    'native-here@1.0.0',
    `pnpm@${PNPM_VERSION}`,
    'real-name@3.0.0',
    'uses-old@1.0.0',
  ]);
  const world = await pnpmWorld(t);
  const first = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  const log = (await installLog(first.releaseDir)) ?? '';
  t.regex(log, PNPM_RAN);
  t.regex(log, /pnpm: store filled from the local feed in \d+ ms \(7 tarballs served\)/);
  t.deepEqual(await installedTree(first.releaseDir), t.context.expected);
  t.deepEqual(await sharedInodes(path.join(first.releaseDir, 'node_modules')), []);
  const {stdout} = await exec(process.execPath, [path.join(world.root, 'current', 'index.js')]);
  t.is(
    stdout.trim(),
    'left-pad@2.0.0 uses-old@1.0.0 @acme/util@1.2.0 real-name@3.0.0 left-pad@1.0.0 patched',
  );

  await world.app.write({'change-2.txt': '2\n'});
  await world.app.commit('change 2');
  await world.publish();
  const second = await runDeploy({root: world.root, rev: 'main'});
  t.notRegex((await installLog(second.releaseDir)) ?? '', PNPM_RAN, 'pnpm did not run');
  t.deepEqual(await installedTree(second.releaseDir), t.context.expected);
});

test('pnpm: a flipped byte in a vendored tarball is refused before pnpm runs', async t => {
  const world = await pnpmWorld(t, {}, ({vendorDir}) =>
    flipByte(path.join(vendorDir, 'npm/left-pad/left-pad-1.0.0.tgz')),
  );
  const error = await t.throwsAsync(
    runDeploy({root: world.root, rev: 'main', repo: world.appUrl}),
    {
      instanceOf: IntegrityError,
    },
  );
  t.regex(error.message, /left-pad@1\.0\.0.*do not match the pinned hash/);
  await refusedBeforePnpm(t, world);
});

test('pnpm: a flipped byte in the vendored pnpm release is refused before pnpm runs', async t => {
  const world = await pnpmWorld(t, {}, ({vendorDir}) =>
    flipByte(path.join(vendorDir, `npm/pnpm/pnpm-${PNPM_VERSION}.tgz`)),
  );
  const error = await t.throwsAsync(
    runDeploy({root: world.root, rev: 'main', repo: world.appUrl}),
    {
      instanceOf: IntegrityError,
    },
  );
  t.regex(error.message, new RegExp(`pnpm@${PNPM_VERSION.replaceAll('.', '\\.')}.*do not match`));
  await refusedBeforePnpm(t, world);
});

test('pnpm: a hostile vendored tarball whose hashes match is refused before pnpm runs [R18]', async t => {
  const outside = path.join(os.tmpdir(), `repodeploy-pnpm-escape-${process.pid}-${Date.now()}`);
  t.teardown(() => fsp.rm(outside, {recursive: true, force: true}));
  const world = await pnpmWorld(t, {}, async ({appDir, vendorDir}) => {
    const rel = 'npm/left-pad/left-pad-2.0.0.tgz';
    const file = path.join(vendorDir, rel);
    const oldIntegrity = ssri
      .fromData(await fsp.readFile(file), {algorithms: ['sha512']})
      .toString();
    await hostileTarball(file, [
      {name: 'package/package.json', text: '{"name":"left-pad","version":"2.0.0"}'},
      {name: 'package/out', type: 'SYMTYPE', link: outside},
      {name: 'package/out/planted', text: 'written through the link'},
    ]);
    const bytes = await fsp.readFile(file);
    const newIntegrity = ssri.fromData(bytes, {algorithms: ['sha512']}).toString();
    for (const target of [
      path.join(appDir, 'pnpm-lock.yaml'),
      path.join(vendorDir, 'vendor-manifest.json'),
    ]) {
      const text = await fsp.readFile(target, 'utf8');
      t.true(text.includes(oldIntegrity), `${target} pins the tarball`);
      await fsp.writeFile(target, text.replaceAll(oldIntegrity, newIntegrity));
    }
    const manifestFile = path.join(vendorDir, 'vendor-manifest.json');
    const manifest = JSON.parse(await fsp.readFile(manifestFile, 'utf8')) as {
      artifacts: Array<{path: string; size: number}>;
    };
    for (const a of manifest.artifacts) if (a.path === rel) a.size = bytes.length;
    await fsp.writeFile(manifestFile, JSON.stringify(manifest, null, 2));
  });
  const error = await t.throwsAsync(
    runDeploy({root: world.root, rev: 'main', repo: world.appUrl}),
    {
      instanceOf: IntegrityError,
    },
  );
  t.regex(error.message, /Refused npm tarball left-pad@2\.0\.0 .*"package\/out" is a SymbolicLink/);
  await t.throwsAsync(fsp.access(outside), undefined, 'nothing was written outside');
  await t.throwsAsync(fsp.access(path.join(world.root, 'current')), undefined, 'nothing live');
});

test('pnpm: a git source, a package without integrity and a foreign registry are refused, each named', async t => {
  const world = await pnpmWorld(t, {}, async ({appDir}) => {
    const file = path.join(appDir, 'pnpm-lock.yaml');
    const lock = parseYaml(await fsp.readFile(file, 'utf8')) as {
      importers: Record<string, {dependencies: Record<string, unknown>}>;
      packages: Record<string, {resolution: Record<string, string>; version?: string}>;
      snapshots: Record<string, unknown>;
    };
    const gitKey = 'from-git@https://codeload.github.com/acme/from-git/tar.gz/0123456789abcdef';
    (lock.importers['.'] as {dependencies: Record<string, unknown>}).dependencies['from-git'] = {
      specifier: 'github:acme/from-git',
      version: gitKey.slice('from-git@'.length),
    };
    lock.packages[gitKey] = {
      resolution: {tarball: gitKey.slice('from-git@'.length)},
      version: '1.0.0',
    };
    lock.snapshots[gitKey] = {};
    delete lock.packages['@acme/util@1.2.0']?.resolution.integrity;
    const leftPad = lock.packages['left-pad@2.0.0'];
    if (leftPad) leftPad.resolution.tarball = 'https://evil.example/left-pad/-/left-pad-2.0.0.tgz';
    await fsp.writeFile(file, stringifyYaml(lock));
  });
  const error = await t.throwsAsync(
    runDeploy({root: world.root, rev: 'main', repo: world.appUrl}),
    {
      instanceOf: IntegrityError,
    },
  );
  t.regex(error.message, /"from-git@https:\/\/codeload\.github\.com[^\n]*not an allowed registry/);
  t.regex(error.message, /"@acme\/util@1\.2\.0"[^\n]*no resolution\.integrity/);
  t.regex(error.message, /"left-pad@2\.0\.0"[^\n]*evil\.example[^\n]*not an allowed registry/);
  await refusedBeforePnpm(t, world);
});

test("pnpm: the app's own pnpm config cannot move the store, link files or leave the release", async t => {
  const elsewhere = path.join(t.context.dir, `elsewhere-${Date.now()}`);
  const world = await pnpmWorld(t, {}, async ({appDir}) => {
    await fsp.appendFile(
      path.join(appDir, 'pnpm-workspace.yaml'),
      [
        `storeDir: ${elsewhere}/store`,
        'packageImportMethod: hardlink',
        `virtualStoreDir: ${elsewhere}/virtual`,
        `cacheDir: ${elsewhere}/cache`,
        'enableGlobalVirtualStore: true',
        'managePackageManagerVersions: true',
        '',
      ].join('\n'),
    );
    await fsp.writeFile(
      path.join(appDir, '.npmrc'),
      `store-dir=${elsewhere}/store2\nregistry=http://127.0.0.1:9/\nvirtual-store-dir=${elsewhere}/v2\n`,
    );
  });
  const first = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  t.deepEqual(await installedTree(first.releaseDir), t.context.expected);
  t.deepEqual(await sharedInodes(path.join(first.releaseDir, 'node_modules')), []);
  await t.throwsAsync(fsp.access(elsewhere), undefined, 'nothing written outside the release');
});

test('pnpm: a workspace project reached through a symlink the app commits is refused before pnpm runs', async t => {
  // packages/ is a link to another folder: pnpm would follow it and write node_modules (and run
  // scripts) wherever it points.
  const world = await pnpmWorld(t, {}, async ({appDir}) => {
    await fsp.rename(path.join(appDir, 'packages'), path.join(appDir, 'real-packages'));
    await fsp.symlink('real-packages', path.join(appDir, 'packages'));
  });
  const error = await t.throwsAsync(runDeploy({root: world.root, rev: 'main', repo: world.appUrl}));
  t.regex(
    error.message,
    /workspace project "packages\/member", reached through the symlink packages/,
  );
  await t.throwsAsync(fsp.access(path.join(world.root, 'current')), undefined, 'nothing deployed');
});

test('pnpm: deploy check reads pnpm-lock.yaml and proves the install offline', async t => {
  const world = await pnpmWorld(t);
  const sha = (await git(world.app.dir, ['rev-parse', 'HEAD'])).trim();
  const run = await runDeployBin(
    ['check', '--rev', sha, '--repo', world.appUrl, '--json'],
    {},
    world.dir,
  );
  const report = JSON.parse(run.stdout) as {
    deployable: boolean;
    checks: Array<{id: string; status: string; message: string}>;
  };
  t.is(run.code, 0, run.stderr);
  t.true(report.deployable);
  t.true(
    report.checks.some(c => /pnpm-lock\.yaml: 7 artifacts for 7 lockfile packages/.test(c.message)),
    JSON.stringify(report.checks),
  );
  t.is(report.checks.find(c => c.id === 'install')?.status, 'pass');
});

test('pnpm 8: its lockfile 6.0 vendored and installed offline as pnpm 8 installs it online', async t => {
  const lock = await fsp.readFile(path.join(t.context.pnpm8.appDir, 'pnpm-lock.yaml'), 'utf8');
  t.regex(lock, /^lockfileVersion: '6\.0'$/m);
  const manifest = await readVendorManifest(t.context.pnpm8.vendorDir);
  t.true(manifest.artifacts.some(a => a.name === 'pnpm' && a.version === PNPM_8.version));
  const world = await pnpmWorld(t, {}, undefined, t.context.pnpm8);
  const first = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  t.regex((await installLog(first.releaseDir)) ?? '', PNPM_RAN);
  t.deepEqual(await installedTree(first.releaseDir), t.context.pnpm8.expected);
  const {stdout} = await exec(process.execPath, [path.join(world.root, 'current', 'index.js')]);
  t.is(
    stdout.trim(),
    'left-pad@2.0.0 uses-old@1.0.0 @acme/util@1.2.0 real-name@3.0.0 left-pad@1.0.0 patched',
  );
});

test('pnpm: "dev": true vendors and installs the devDependencies too', async t => {
  const manifest = await readVendorManifest(t.context.dev.vendorDir);
  t.true(manifest.artifacts.some(a => a.name === 'devonly'));
  const world = await pnpmWorld(t, {dev: true}, undefined, t.context.dev);
  const first = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  const tree = await installedTree(first.releaseDir);
  t.truthy(tree['node_modules/devonly']);
  t.deepEqual(tree, t.context.dev.expected);
});
