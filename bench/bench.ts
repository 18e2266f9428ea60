/**
 * `npm run bench`: repodeploy side by side with the native tools, in one run, on a benchmark built
 * deterministically here: an app repo of 2,500 files with history, a vendor repo of 120 npm
 * tarballs, both served by git http-backend on 127.0.0.1. Medians of several runs and peak RSS;
 * writes bench/results.json and docs/performance.md. No timing is asserted anywhere.
 */
import {execFile} from 'node:child_process';
import {createReadStream, promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {PassThrough} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import {fileURLToPath} from 'node:url';
import {promisify} from 'node:util';
import cacache from 'cacache';
import ssri from 'ssri';
import * as tar from 'tar';
import {defaultContext} from '../lib/cli/io.js';
import {main as vendorSyncMain} from '../vendor-sync/cli.js';
import {startGitHttpServer} from '../test/helpers/git-http-server.js';
import {startRegistry} from '../test/helpers/npm-registry.js';
import {FixtureRepo} from '../test/helpers/repos.js';
import {median, timed, type Sample} from './measure.js';

const exec = promisify(execFile);
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const deployBin = path.join(packageRoot, 'bin', 'deploy.js');
const vendorSyncBin = path.join(packageRoot, 'bin', 'vendor-sync.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const FILES = 2500;
const PACKAGES = 120;

/** Deterministic pseudo-random text, so every run builds the same repositories. */
function text(seed: number, length: number): string {
  let x = seed * 2654435761 + 1;
  let out = '';
  while (out.length < length) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out += `const v${x % 1000} = ${x};\n`;
  }
  return out.slice(0, length);
}

async function buildRepos(work: string) {
  const vendor = await FixtureRepo.init(path.join(work, 'src', 'vendor'));
  const deps: Record<string, string> = {};
  const lockPackages: Record<string, unknown> = {};
  const artifacts: BenchArtifact[] = [];
  for (let i = 0; i < PACKAGES; i++) {
    const name = `bench-pkg-${i}`;
    const packed = await packPackage(work, name, i);
    await vendor.write({[packed.artifact.path]: {content: packed.bytes}});
    artifacts.push(packed.artifact);
    deps[name] = '1.0.0';
    lockPackages[`node_modules/${name}`] = packed.lock;
  }
  await vendor.write({
    'vendor-manifest.json': `${JSON.stringify({format: 1, artifacts}, null, 2)}\n`,
  });
  const vendorSha = await vendor.commit('vendor: 120 packages');

  const app = await FixtureRepo.init(path.join(work, 'src', 'app'));
  const files: Record<string, string> = {};
  for (let f = 0; f < FILES; f++)
    files[`src/dir${f % 50}/file${f}.js`] = text(f + 1000, 600 + (f % 7) * 300);
  const pkg = {name: 'bench-app', version: '1.0.0', private: true, dependencies: deps};
  await app.write({
    ...files,
    'package.json': JSON.stringify(pkg, null, 2),
    'package-lock.json': JSON.stringify(
      {
        name: 'bench-app',
        version: '1.0.0',
        lockfileVersion: 3,
        requires: true,
        packages: {'': {name: 'bench-app', version: '1.0.0', dependencies: deps}, ...lockPackages},
      },
      null,
      2,
    ),
    'deploy.json': JSON.stringify({vendor: {url: '../vendor.git', rev: vendorSha}, install: 'npm'}),
  });
  await app.commit('app: first');
  // Some history: 10 commits of 20 changed files each.
  for (let c = 1; c <= 10; c++) {
    const changed: Record<string, string> = {};
    for (let k = 0; k < 20; k++)
      changed[`src/dir${(c * 7 + k) % 50}/file${(c * 131 + k * 17) % FILES}.js`] = text(
        c * 100 + k,
        900,
      );
    await app.write(changed);
    await app.commit(`app: change ${c}`);
  }
  return {app, vendor, vendorSha, artifacts};
}

/** Fill an npm cache (`<dir>/_cacache`) from the vendored tarballs, as the native recipe does. */
async function fillCache(
  cacheDir: string,
  vendorDir: string,
  artifacts: Array<{path: string; integrity: string; name: string}>,
) {
  for (const a of artifacts) {
    await pipeline(
      createReadStream(path.join(vendorDir, a.path)),
      cacache.put.stream(path.join(cacheDir, '_cacache'), `bench:${a.name}`, {
        integrity: a.integrity,
      }),
    );
  }
}

type BenchArtifact = {
  ecosystem: string;
  name: string;
  version: string;
  path: string;
  integrity: string;
  source: string;
  size: number;
};

/** Pack one npm package the way the benchmark's others are packed. */
async function packPackage(work: string, name: string, seed: number) {
  const stage = path.join(work, 'pkgs', name);
  await fsp.mkdir(path.join(stage, 'package'), {recursive: true});
  await fsp.writeFile(
    path.join(stage, 'package', 'package.json'),
    JSON.stringify({name, version: '1.0.0', main: 'index.js', license: 'MIT'}),
  );
  await fsp.writeFile(
    path.join(stage, 'package', 'index.js'),
    `module.exports = ${seed};\n${text(seed, 4000)}`,
  );
  const tgz = path.join(stage, `${name}-1.0.0.tgz`);
  await tar.c({gzip: true, file: tgz, cwd: stage, portable: true, mtime: new Date(0)}, ['package']);
  const bytes = await fsp.readFile(tgz);
  const integrity = ssri.fromData(bytes, {algorithms: ['sha512']}).toString();
  const resolved = `https://registry.npmjs.org/${name}/-/${name}-1.0.0.tgz`;
  const artifact: BenchArtifact = {
    ecosystem: 'npm',
    name,
    version: '1.0.0',
    path: `npm/${name}/${name}-1.0.0.tgz`,
    integrity,
    source: resolved,
    size: bytes.length,
  };
  return {bytes, artifact, lock: {version: '1.0.0', resolved, integrity, license: 'MIT'}};
}

/**
 * Scenario 3: a new dependency. The vendor repo gets its tarball in a new commit; the app adds
 * it to package.json and package-lock.json and pins the new vendor commit.
 */
async function addPackage(
  work: string,
  vendor: FixtureRepo,
  app: FixtureRepo,
  name: string,
  seed: number,
) {
  const packed = await packPackage(work, name, 50_000 + seed);
  const manifestFile = path.join(vendor.dir, 'vendor-manifest.json');
  const manifest = JSON.parse(await fsp.readFile(manifestFile, 'utf8')) as {
    artifacts: BenchArtifact[];
  };
  manifest.artifacts.push(packed.artifact);
  manifest.artifacts.sort((a, b) => a.path.localeCompare(b.path));
  await vendor.write({
    [packed.artifact.path]: {content: packed.bytes},
    'vendor-manifest.json': `${JSON.stringify(manifest, null, 2)}\n`,
  });
  const vendorSha = await vendor.commit(`vendor: add ${name}`);
  const pkgFile = path.join(app.dir, 'package.json');
  const pkg = JSON.parse(await fsp.readFile(pkgFile, 'utf8')) as {
    dependencies: Record<string, string>;
  };
  pkg.dependencies[name] = '1.0.0';
  const lockFile = path.join(app.dir, 'package-lock.json');
  const lock = JSON.parse(await fsp.readFile(lockFile, 'utf8')) as {
    packages: Record<string, unknown> & {'': {dependencies: Record<string, string>}};
  };
  lock.packages[''].dependencies[name] = '1.0.0';
  lock.packages[`node_modules/${name}`] = packed.lock;
  await app.write({
    'package.json': JSON.stringify(pkg, null, 2),
    'package-lock.json': JSON.stringify(lock, null, 2),
    'deploy.json': JSON.stringify({vendor: {url: '../vendor.git', rev: vendorSha}, install: 'npm'}),
  });
  const appSha = await app.commit(`app: depend on ${name}`);
  return {vendorSha, appSha, artifact: packed.artifact};
}

/**
 * A release directory whose lockfile pins 6 artifacts of 24 MiB (deterministic bytes) that its
 * vendor tree holds: what `deploy check` and `deploy` hash when artifacts are large.
 */
async function largeArtifactRelease(work: string) {
  const dir = path.join(work, 'large-release');
  const artifacts: BenchArtifact[] = [];
  const packages: Record<string, unknown> = {};
  const files: string[] = [];
  let bytes = 0;
  for (let i = 0; i < 6; i++) {
    const name = `bench-large-${i}`;
    const data = Buffer.alloc(24 * 1024 * 1024);
    let x = 0x9e3779b9 ^ (i + 1);
    for (let k = 0; k < data.length; k += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      data.writeInt32LE(x | 0, k);
    }
    const rel = `npm/${name}/${name}-1.0.0.tgz`;
    const file = path.join(dir, 'vendor', rel);
    await fsp.mkdir(path.dirname(file), {recursive: true});
    await fsp.writeFile(file, data);
    const integrity = ssri.fromData(data, {algorithms: ['sha512']}).toString();
    const resolved = `https://registry.npmjs.org/${name}/-/${name}-1.0.0.tgz`;
    artifacts.push({
      ecosystem: 'npm',
      name,
      version: '1.0.0',
      path: rel,
      integrity,
      source: resolved,
      size: data.length,
    });
    packages[`node_modules/${name}`] = {version: '1.0.0', resolved, integrity};
    files.push(file);
    bytes += data.length;
  }
  await fsp.writeFile(
    path.join(dir, 'vendor', 'vendor-manifest.json'),
    JSON.stringify({format: 1, artifacts}, null, 2),
  );
  await fsp.writeFile(
    path.join(dir, 'package-lock.json'),
    JSON.stringify({
      name: 'large',
      lockfileVersion: 3,
      packages: {'': {name: 'large'}, ...packages},
    }),
  );
  return {dir, files, bytes};
}

async function main(): Promise<void> {
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-bench-'));
  const served = path.join(work, 'served');
  console.log(`building the benchmark in ${work} ...`);
  const {app, vendor, vendorSha, artifacts} = await buildRepos(work);
  await app.publish(path.join(served, 'app.git'));
  await vendor.publish(path.join(served, 'vendor.git'));
  // Native git fetches by sha; git http-backend allows that for reachable commits with this setting.
  await exec('git', [
    '-C',
    path.join(served, 'app.git'),
    'config',
    'uploadpack.allowReachableSHA1InWant',
    'true',
  ]);
  await exec('git', [
    '-C',
    path.join(served, 'vendor.git'),
    'config',
    'uploadpack.allowReachableSHA1InWant',
    'true',
  ]);
  const server = await startGitHttpServer({projectRoot: served});
  const appUrl = server.repoUrl('app.git');
  const vendorUrl = server.repoUrl('vendor.git');
  const npmEnv = (home: string, cache: string): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: home,
    npm_config_userconfig: path.join(home, 'u-npmrc'),
    npm_config_globalconfig: path.join(home, 'g-npmrc'),
    npm_config_cache: cache,
    npm_config_offline: 'true',
    npm_config_registry: 'http://127.0.0.1:9/',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_omit: 'dev',
  });

  /** The shell-script way: git fetch --depth 1 + git archive | tar -x for both repos, npm ci --offline. */
  async function nativeDeploy(
    node: string,
    sha: string,
    vsha: string,
    vendorArtifacts: typeof artifacts,
  ): Promise<Sample> {
    const script = path.join(work, 'native.sh');
    await fsp.writeFile(
      script,
      `set -e
node=$1; sha=$2; vsha=$3; app=$4; vendor=$5; cache=$6
mkdir -p "$node/repos" "$node/releases/$sha/vendor"
[ -d "$node/repos/app.git" ] || git init -q --bare "$node/repos/app.git"
[ -d "$node/repos/vendor.git" ] || git init -q --bare "$node/repos/vendor.git"
git -C "$node/repos/app.git" fetch -q --depth 1 "$app" "$sha"
git -C "$node/repos/app.git" archive "$sha" | tar -x -C "$node/releases/$sha"
git -C "$node/repos/vendor.git" fetch -q --depth 1 "$vendor" "$vsha"
git -C "$node/repos/vendor.git" archive "$vsha" | tar -x -C "$node/releases/$sha/vendor"
cd "$node/releases/$sha" && npm ci --offline --ignore-scripts --cache "$cache" >/dev/null 2>&1
`,
    );
    const home = path.join(node, 'home');
    await fsp.mkdir(home, {recursive: true});
    const cache = path.join(node, 'npm-cache');
    const started = performance.now();
    await fillCache(cache, vendor.dir, vendorArtifacts);
    const fill = (performance.now() - started) / 1000;
    const run = await timed('sh', [script, node, sha, vsha, appUrl, vendorUrl, cache], {
      env: {...npmEnv(home, cache), GIT_CONFIG_NOSYSTEM: '1'},
    });
    return {seconds: run.seconds + fill, rssMb: run.rssMb};
  }

  const ours = (root: string, rev: string) =>
    timed(process.execPath, [deployBin, '--rev', rev, '--root', root, '--repo', appUrl], {
      env: {PATH: process.env.PATH, HOME: os.homedir()},
    });

  const first = {ours: [] as Sample[], native: [] as Sample[]};
  const incremental = {ours: [] as Sample[], native: [] as Sample[]};
  const lockChange = {ours: [] as Sample[], native: [] as Sample[]};
  const base = await app.head();
  let currentVendor = vendorSha;
  const vendorArtifacts = [...artifacts];
  for (let run = 0; run < RUNS; run++) {
    console.log(`run ${run + 1}/${RUNS}`);
    const root = path.join(work, `ours-${run}`);
    const node = path.join(work, `native-${run}`);
    await app.git('checkout', '-q', base);
    await app.git('checkout', '-q', '-B', 'main');
    await app.publish(path.join(served, 'app.git'));
    const baseConfig = await fsp.readFile(path.join(app.dir, 'deploy.json'), 'utf8');
    const baseVendor = JSON.parse(baseConfig) as {vendor: {rev: string}};
    first.ours.push(await ours(root, base));
    first.native.push(await nativeDeploy(node, base, baseVendor.vendor.rev, artifacts));
    // 2. One new app commit, lockfile and vendor pin unchanged.
    await app.write({[`src/dir3/file${run}.js`]: text(99_000 + run, 700)});
    const next = await app.commit(`app: incremental ${run}`);
    await app.publish(path.join(served, 'app.git'));
    incremental.ours.push(await ours(root, next));
    incremental.native.push(await nativeDeploy(node, next, baseVendor.vendor.rev, artifacts));
    // 3. A new dependency: a new vendor commit with its tarball, a changed lockfile, a new pin.
    const added = await addPackage(work, vendor, app, `bench-extra-${run}`, run);
    vendorArtifacts.push(added.artifact);
    currentVendor = added.vendorSha;
    await vendor.publish(path.join(served, 'vendor.git'));
    await app.publish(path.join(served, 'app.git'));
    lockChange.ours.push(await ours(root, added.appSha));
    lockChange.native.push(
      await nativeDeploy(node, added.appSha, currentVendor, [...artifacts, added.artifact]),
    );
  }

  // 5. Hash verification as `deploy check` and `deploy` do it (the npm installer's verify step
  // over the release's vendor tree and lockfile), against sha512sum over the same files.
  const releaseDir = path.join(work, 'ours-0', 'current');
  const tarballs = artifacts.map(a => path.join(releaseDir, 'vendor', a.path));
  const bytes = (await Promise.all(tarballs.map(f => fsp.stat(f)))).reduce(
    (n, st) => n + st.size,
    0,
  );
  const {npmInstaller} = await import('../lib/install/npm.js');
  const {readVendorManifest} = await import('../lib/pins/vendor-manifest.js');
  const {silentReporter} = await import('../lib/support/reporter.js');
  const installer = npmInstaller({
    type: 'npm',
    directory: '.',
    scripts: true,
    dev: false,
    registries: ['https://registry.npmjs.org/'],
    reuse: true,
  });
  const manifest = await readVendorManifest(path.join(releaseDir, 'vendor'));
  const hashOurs: number[] = [];
  const hashNative: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    let t0 = performance.now();
    const verified = await installer.verify({
      releaseDir,
      vendorDir: path.join(releaseDir, 'vendor'),
      manifest,
      logFile: '/dev/null',
      env: {},
      reporter: silentReporter,
      timeoutMs: 60_000,
    });
    if (verified.length < PACKAGES) throw new Error(`verified only ${verified.length} artifacts`);
    hashOurs.push((performance.now() - t0) / 1000);
    t0 = performance.now();
    await exec('sha512sum', tarballs);
    hashNative.push((performance.now() - t0) / 1000);
  }
  // 5b. The same verify over a few large artifacts (as a vendor repo holding release binaries
  // or big packages has), where throughput rather than per-file cost decides.
  const large = await largeArtifactRelease(work);
  const largeOurs: number[] = [];
  const largeNative: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    let t0 = performance.now();
    const verified = await installer.verify({
      releaseDir: large.dir,
      vendorDir: path.join(large.dir, 'vendor'),
      manifest: await readVendorManifest(path.join(large.dir, 'vendor')),
      logFile: '/dev/null',
      env: {},
      reporter: silentReporter,
      timeoutMs: 60_000,
    });
    if (verified.length !== large.files.length) throw new Error('large artifacts not all verified');
    largeOurs.push((performance.now() - t0) / 1000);
    t0 = performance.now();
    await exec('sha512sum', large.files);
    largeNative.push((performance.now() - t0) / 1000);
  }

  // 4. vendor-sync from a registry (Verdaccio on 127.0.0.1 holding the same 120 tarballs), cold
  // and again with nothing to do, against npm ci with a cold cache from the same registry.
  const registry = await startRegistry(path.join(work, 'registry'));
  for (const a of artifacts) {
    await registry.publishTarball(
      a.name,
      a.version,
      await fsp.readFile(path.join(vendor.dir, a.path)),
    );
  }
  const syncCold: Sample[] = [];
  const syncNoop: Sample[] = [];
  const syncNoopInProcess: number[] = [];
  const npmCold: Sample[] = [];
  const baseApp = path.join(work, 'sync-app');
  await fsp.mkdir(baseApp, {recursive: true});
  const baseTree = await exec('git', ['-C', app.dir, 'show', `${base}:package-lock.json`], {
    maxBuffer: 64 * 1024 * 1024,
  });
  await fsp.writeFile(path.join(baseApp, 'package-lock.json'), baseTree.stdout);
  for (const name of ['package.json', 'deploy.json']) {
    const {stdout} = await exec('git', ['-C', app.dir, 'show', `${base}:${name}`]);
    await fsp.writeFile(path.join(baseApp, name), stdout);
  }
  for (let run = 0; run < RUNS; run++) {
    const fresh = await FixtureRepo.init(path.join(work, `sync-vendor-${run}`));
    await fresh.write({'README.md': 'vendor\n'});
    await fresh.commit('start');
    const syncArgs = [
      vendorSyncBin,
      '--app',
      baseApp,
      '--vendor',
      fresh.dir,
      '--npm-registry',
      registry.url,
    ];
    const env = {PATH: process.env.PATH, HOME: os.homedir()};
    syncCold.push(await timed(process.execPath, syncArgs, {env}));
    syncNoop.push(await timed(process.execPath, syncArgs, {env}));
    // The same no-op run in this process, modules already loaded: the work itself.
    const t0 = performance.now();
    const code = await vendorSyncMain(
      syncArgs.slice(1),
      defaultContext({
        stdout: new PassThrough().resume(),
        stderr: new PassThrough().resume(),
        env,
      }),
    );
    if (code !== 0) throw new Error(`vendor-sync exited ${code}`);
    syncNoopInProcess.push((performance.now() - t0) / 1000);
    const npmDir = path.join(work, `npm-cold-${run}`);
    await fsp.cp(baseApp, npmDir, {recursive: true});
    const home = path.join(npmDir, '.home');
    await fsp.mkdir(home);
    const cache = path.join(npmDir, '.cache');
    npmCold.push(
      await timed('npm', ['ci', '--ignore-scripts', '--registry', registry.url], {
        cwd: npmDir,
        env: {
          ...npmEnv(home, cache),
          npm_config_offline: 'false',
          npm_config_registry: registry.url,
        },
      }),
    );
  }
  await registry.close();
  await server.close();

  const summarize = (s: {ours: Sample[]; native: Sample[]}) => {
    const o = median(s.ours.map(x => x.seconds));
    const n = median(s.native.map(x => x.seconds));
    return {
      oursSeconds: o,
      nativeSeconds: n,
      ratio: o / n,
      oursPeakRssMb: Math.max(...s.ours.map(x => x.rssMb ?? 0)),
      nativePeakRssMb: Math.max(...s.native.map(x => x.rssMb ?? 0)),
    };
  };
  const results = {
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
      node: process.version,
    },
    runs: RUNS,
    benchmark: {appFiles: FILES, appCommits: 11 + 2 * RUNS, npmTarballs: PACKAGES},
    firstDeploy: summarize(first),
    incrementalDeploy: summarize(incremental),
    lockfileChangeDeploy: summarize(lockChange),
    vendorSyncCold: summarize({ours: syncCold, native: npmCold}),
    vendorSyncNoop: {
      oursSeconds: median(syncNoop.map(x => x.seconds)),
      secondsPer100Artifacts: (median(syncNoop.map(x => x.seconds)) * 100) / PACKAGES,
      inProcessSeconds: median(syncNoopInProcess),
      inProcessSecondsPer100Artifacts: (median(syncNoopInProcess) * 100) / PACKAGES,
    },
    hashVerification: {
      files: tarballs.length,
      bytes,
      oursSeconds: median(hashOurs),
      nativeSeconds: median(hashNative),
      throughputRatio: median(hashNative) / median(hashOurs),
      large: {
        files: large.files.length,
        bytes: large.bytes,
        oursSeconds: median(largeOurs),
        nativeSeconds: median(largeNative),
        throughputRatio: median(largeNative) / median(largeOurs),
      },
    },
  };
  await fsp.mkdir(path.join(packageRoot, 'bench'), {recursive: true});
  await fsp.writeFile(
    path.join(packageRoot, 'bench', 'results.json'),
    `${JSON.stringify(results, null, 2)}\n`,
  );
  await fsp.writeFile(path.join(packageRoot, 'docs', 'performance.md'), performanceDoc(results));
  console.log(JSON.stringify(results, null, 2));
  // BENCH_KEEP=1 keeps the repositories and node roots, to profile a deploy by hand.
  if (process.env.BENCH_KEEP === '1') console.log(`kept ${work}`);
  else await fsp.rm(work, {recursive: true, force: true});
}

type Compared = {
  oursSeconds: number;
  nativeSeconds: number;
  ratio: number;
  oursPeakRssMb: number;
  nativePeakRssMb: number;
};

function performanceDoc(r: {
  date: string;
  machine: {cpus: number; memoryGiB: number; node: string};
  runs: number;
  benchmark: {appFiles: number; appCommits: number; npmTarballs: number};
  firstDeploy: Compared;
  incrementalDeploy: Compared;
  lockfileChangeDeploy: Compared;
  vendorSyncCold: Compared;
  vendorSyncNoop: {
    oursSeconds: number;
    secondsPer100Artifacts: number;
    inProcessSeconds: number;
    inProcessSecondsPer100Artifacts: number;
  };
  hashVerification: {
    files: number;
    bytes: number;
    oursSeconds: number;
    nativeSeconds: number;
    throughputRatio: number;
    large: {
      files: number;
      bytes: number;
      oursSeconds: number;
      nativeSeconds: number;
      throughputRatio: number;
    };
  };
}): string {
  const f = (n: number) => n.toFixed(2);
  const met = (ok: boolean) => (ok ? 'met' : '**not met**');
  const row = (name: string, s: Compared, target: string, limit?: number) =>
    `| ${name} | ${f(s.oursSeconds)} s | ${f(s.nativeSeconds)} s | ${f(s.ratio)}× | ${target}${limit === undefined ? '' : ` (${met(s.ratio <= limit)})`} | ${s.oursPeakRssMb.toFixed(0)} MB | ${s.nativePeakRssMb.toFixed(0)} MB |`;
  const h = r.hashVerification;
  const mbps = (seconds: number) => (h.bytes / 1024 ** 2 / seconds).toFixed(0);
  const rss = Math.max(
    r.firstDeploy.oursPeakRssMb,
    r.incrementalDeploy.oursPeakRssMb,
    r.lockfileChangeDeploy.oursPeakRssMb,
  );
  return `# Performance

Generated by \`npm run bench\` (bench/bench.ts) on ${r.date}: ${r.machine.cpus} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node};
medians of ${r.runs} runs. Benchmark: an app of ${r.benchmark.appFiles} files and ${r.benchmark.appCommits} commits, a vendor repo of
${r.benchmark.npmTarballs} npm tarballs, both served by git http-backend on 127.0.0.1. "Native" is the shell-script way:
\`git fetch --depth 1\` + \`git archive | tar -x\` for both repos, then \`npm ci --offline\` from a cache filled with the same
tarballs (the fill is counted). Peak RSS is that of the deploy process (GNU time); npm's own child process is not in
repodeploy's figure.

| scenario | repodeploy | native | ratio | target | repodeploy peak RSS | native peak RSS |
| --- | --- | --- | --- | --- | --- | --- |
${row('1. first deploy on an empty node', r.firstDeploy, '≤ 1.5×', 1.5)}
${row('2. incremental deploy (one app commit, same lockfile)', r.incrementalDeploy, '≤ 1.0×', 1.0)}
${row('3. deploy with a changed lockfile and a new vendor pin', r.lockfileChangeDeploy, '')}
${row('4. vendor-sync, cold, vs npm ci with a cold cache (Verdaccio on 127.0.0.1)', r.vendorSyncCold, '')}

- Peak RSS of a deploy: ${rss.toFixed(0)} MB (target ≤ 200 MB: ${met(rss <= 200)}).
- 4b. vendor-sync with nothing to do (${r.benchmark.npmTarballs} artifacts): the work itself (in one process, modules loaded)
  ${f(r.vendorSyncNoop.inProcessSeconds)} s, ${f(r.vendorSyncNoop.inProcessSecondsPer100Artifacts)} s per 100 artifacts (target ≤ 0.1 s per 100: ${met(r.vendorSyncNoop.inProcessSecondsPer100Artifacts <= 0.1)});
  the whole command, Node start-up included, ${f(r.vendorSyncNoop.oursSeconds)} s.
- 5. Hash verification as \`deploy\` and \`deploy check\` do it (the npm installer's verify step: ${h.files} tarballs,
  ${(h.bytes / 1024 ** 2).toFixed(1)} MiB): ${f(h.oursSeconds)} s (${mbps(h.oursSeconds)} MiB/s) vs \`sha512sum\` ${f(h.nativeSeconds)} s (${mbps(h.nativeSeconds)} MiB/s):
  throughput ratio ${f(h.throughputRatio)} (target ≥ 0.8: ${met(h.throughputRatio >= 0.8)}).
- 5b. The same verify over ${h.large.files} large artifacts (${(h.large.bytes / 1024 ** 2).toFixed(0)} MiB): ${f(h.large.oursSeconds)} s (${(h.large.bytes / 1024 ** 2 / h.large.oursSeconds).toFixed(0)} MiB/s)
  vs \`sha512sum\` ${f(h.large.nativeSeconds)} s (${(h.large.bytes / 1024 ** 2 / h.large.nativeSeconds).toFixed(0)} MiB/s): throughput ratio ${f(h.large.throughputRatio)}
  (target ≥ 0.8: ${met(h.large.throughputRatio >= 0.8)}).
`;
}

await main();
