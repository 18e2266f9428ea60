/**
 * `npm run bench`: repodeploy side by side with the native tools, in one run, on a benchmark built
 * deterministically here: an app repo of 2,500 files with history, a vendor repo of 120 npm
 * tarballs, both served by git http-backend on 127.0.0.1. Medians of several runs and peak RSS;
 * writes bench/results.json and docs/performance.md. No timing is asserted anywhere.
 */
import {execFile, spawn} from 'node:child_process';
import {createHash} from 'node:crypto';
import {createReadStream, promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {pipeline} from 'node:stream/promises';
import {fileURLToPath} from 'node:url';
import {promisify} from 'node:util';
import cacache from 'cacache';
import ssri from 'ssri';
import * as tar from 'tar';
import {startGitHttpServer} from '../test/helpers/git-http-server.js';
import {FixtureRepo} from '../test/helpers/repos.js';

const exec = promisify(execFile);
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const deployBin = path.join(packageRoot, 'bin', 'deploy.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const FILES = 2500;
const PACKAGES = 120;

type Sample = {seconds: number; rssMb: number | null};

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

/** Run a command under GNU time for its peak RSS; resolve its wall time. */
async function timed(
  command: string,
  args: string[],
  options: {cwd?: string; env?: NodeJS.ProcessEnv} = {},
): Promise<Sample> {
  const started = performance.now();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'RSS_KB=%M', command, ...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', code => {
      if (code === 0) resolve(stderr);
      else
        reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${stderr.slice(-2000)}`));
    });
  });
  const rss = /RSS_KB=(\d+)/.exec(out)?.[1];
  return {seconds: (performance.now() - started) / 1000, rssMb: rss ? Number(rss) / 1024 : null};
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

async function buildRepos(work: string) {
  const vendor = await FixtureRepo.init(path.join(work, 'src', 'vendor'));
  const deps: Record<string, string> = {};
  const lockPackages: Record<string, unknown> = {};
  const artifacts = [];
  for (let i = 0; i < PACKAGES; i++) {
    const name = `bench-pkg-${i}`;
    const stage = path.join(work, 'pkgs', name);
    await fsp.mkdir(path.join(stage, 'package'), {recursive: true});
    await fsp.writeFile(
      path.join(stage, 'package', 'package.json'),
      JSON.stringify({name, version: '1.0.0', main: 'index.js', license: 'MIT'}),
    );
    await fsp.writeFile(
      path.join(stage, 'package', 'index.js'),
      `module.exports = ${i};\n${text(i, 4000)}`,
    );
    const tgz = path.join(stage, `${name}-1.0.0.tgz`);
    await tar.c({gzip: true, file: tgz, cwd: stage, portable: true, mtime: new Date(0)}, [
      'package',
    ]);
    const bytes = await fsp.readFile(tgz);
    const integrity = ssri.fromData(bytes, {algorithms: ['sha512']}).toString();
    const rel = `npm/${name}/${name}-1.0.0.tgz`;
    await vendor.write({[rel]: {content: bytes}});
    const resolved = `https://registry.npmjs.org/${name}/-/${name}-1.0.0.tgz`;
    artifacts.push({
      ecosystem: 'npm',
      name,
      version: '1.0.0',
      path: rel,
      integrity,
      source: resolved,
      size: bytes.length,
    });
    deps[name] = '1.0.0';
    lockPackages[`node_modules/${name}`] = {version: '1.0.0', resolved, integrity, license: 'MIT'};
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
  async function nativeDeploy(node: string, sha: string): Promise<Sample> {
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
git -C "$node/repos/vendor.git" fetch -q --depth 1 "$vendor" main
git -C "$node/repos/vendor.git" archive "$vsha" | tar -x -C "$node/releases/$sha/vendor"
cd "$node/releases/$sha" && npm ci --offline --ignore-scripts --cache "$cache" >/dev/null 2>&1
`,
    );
    const home = path.join(node, 'home');
    await fsp.mkdir(home, {recursive: true});
    const cache = path.join(node, 'npm-cache');
    const started = performance.now();
    await fillCache(cache, vendor.dir, artifacts);
    const fill = (performance.now() - started) / 1000;
    const run = await timed('sh', [script, node, sha, vendorSha, appUrl, vendorUrl, cache], {
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
  const base = await app.head();
  for (let run = 0; run < RUNS; run++) {
    console.log(`run ${run + 1}/${RUNS}`);
    const root = path.join(work, `ours-${run}`);
    const node = path.join(work, `native-${run}`);
    first.ours.push(await ours(root, base));
    first.native.push(await nativeDeploy(node, base));
    // One new app commit, lockfile and vendor pin unchanged.
    await app.write({[`src/dir3/file${run}.js`]: text(99_000 + run, 700)});
    const next = await app.commit(`app: incremental ${run}`);
    await app.publish(path.join(served, 'app.git'));
    incremental.ours.push(await ours(root, next));
    incremental.native.push(await nativeDeploy(node, next));
  }

  // Hash verification throughput: sha512 of every vendored tarball, ours (Node) vs sha512sum.
  const tarballs = artifacts.map(a => path.join(vendor.dir, a.path));
  const hashOurs: number[] = [];
  const hashNative: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    let t0 = performance.now();
    for (const file of tarballs)
      createHash('sha512')
        .update(await fsp.readFile(file))
        .digest();
    hashOurs.push((performance.now() - t0) / 1000);
    t0 = performance.now();
    await exec('sha512sum', tarballs);
    hashNative.push((performance.now() - t0) / 1000);
  }
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
    benchmark: {appFiles: FILES, appCommits: 11 + RUNS, npmTarballs: PACKAGES},
    firstDeploy: summarize(first),
    incrementalDeploy: summarize(incremental),
    hashVerification: {
      oursSeconds: median(hashOurs),
      nativeSeconds: median(hashNative),
      throughputRatio: median(hashNative) / median(hashOurs),
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

function performanceDoc(r: {
  date: string;
  machine: {cpus: number; memoryGiB: number; node: string};
  runs: number;
  benchmark: {appFiles: number; appCommits: number; npmTarballs: number};
  firstDeploy: {
    oursSeconds: number;
    nativeSeconds: number;
    ratio: number;
    oursPeakRssMb: number;
    nativePeakRssMb: number;
  };
  incrementalDeploy: {
    oursSeconds: number;
    nativeSeconds: number;
    ratio: number;
    oursPeakRssMb: number;
    nativePeakRssMb: number;
  };
  hashVerification: {oursSeconds: number; nativeSeconds: number; throughputRatio: number};
}): string {
  const f = (n: number) => n.toFixed(2);
  const row = (name: string, s: typeof r.firstDeploy, target: string) =>
    `| ${name} | ${f(s.oursSeconds)} s | ${f(s.nativeSeconds)} s | ${f(s.ratio)}× | ${target} | ${s.oursPeakRssMb.toFixed(0)} MB | ${s.nativePeakRssMb.toFixed(0)} MB |`;
  return `# Performance

Generated by \`npm run bench\` (bench/bench.ts) on ${r.date}: ${r.machine.cpus} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node};
medians of ${r.runs} runs. Benchmark: an app of ${r.benchmark.appFiles} files and ${r.benchmark.appCommits} commits, a vendor repo of
${r.benchmark.npmTarballs} npm tarballs, both served by git http-backend on 127.0.0.1. "Native" is the shell-script way:
\`git fetch --depth 1\` + \`git archive | tar -x\` for both repos, then \`npm ci --offline\` from a cache filled with the same
tarballs. Peak RSS is that of the deploy process (GNU time); npm's own child process is not in repodeploy's figure.

| scenario | repodeploy | native | ratio | target | repodeploy peak RSS | native peak RSS |
| --- | --- | --- | --- | --- | --- | --- |
${row('first deploy on an empty node', r.firstDeploy, '≤ 1.5×')}
${row('incremental deploy (one app commit)', r.incrementalDeploy, '≤ 1.0×')}

Hash verification of the vendored tarballs: repodeploy (Node sha512) ${f(r.hashVerification.oursSeconds)} s, \`sha512sum\`
${f(r.hashVerification.nativeSeconds)} s: throughput ratio ${f(r.hashVerification.throughputRatio)} (target ≥ 0.8).

Not measured yet: a deploy with a changed lockfile and vendor pin, vendor-sync cold and no-op.
`;
}

await main();
