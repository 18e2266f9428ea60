/**
 * `npm run bench`: repodeploy side by side with the native tools, in one run, on inputs the size
 * of real ones, built deterministically here in a few minutes (git fast-import, tarballs packed
 * in this process) and served by git http-backend on 127.0.0.1:
 *
 * - the long-history app (bench/long-history.ts: 8,000 commits, a pack over 300 MB, a 2,100-file
 *   tree) made an npm app, its package-lock.json naming 1,000 packages whose tarballs are in a
 *   vendor repo pinned as a submodule at `vendor`;
 * - on it, run by run: first deploy, incremental deploy (one app commit), deploy with a changed
 *   lockfile and a new vendor pin; vendor-sync cold and no-op (Verdaccio); hash verification;
 * - peak RSS of a first deploy against history size (about 100 MB, 400 MB and 1 GB of pack) and
 *   against a pack whose blobs inflate to 1 GiB (the tip, and an old commit by abbreviated sha).
 *
 * Every figure is reported as min–median–max with every run's value, ratios run by run, and the
 * targets as met / not met; writes bench/results.json and docs/performance.md. No timing is
 * asserted anywhere.
 *
 * Environment:
 * - BENCH_RUNS      runs of each timed scenario (default 5)
 * - BENCH_RSS_RUNS  runs of each point of the peak-RSS series (default 1)
 * - BENCH_QUICK=1   small sizes (a few hundred commits, 60 packages, small packs) to try the bench
 *                   out in a minute; its figures say nothing about the targets
 * - BENCH_KEEP=1    keep the temporary directory (repositories, node roots) to profile by hand
 * - BENCH_NO_WRITE=1  print the results only: leave bench/results.json and docs/performance.md
 */
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {startGitHttpServer} from '../test/helpers/git-http-server.js';
import {hashRuns, largeArtifactRelease} from './hashing.js';
import {appendCommit, buildApp, buildFilesRepo, LONG_HISTORY, noise} from './long-history.js';
import {timed, type Sample} from './measure.js';
import {nativeDeploy} from './native.js';
import {
  appManifests,
  benchPackages,
  packPackage,
  text,
  vendorManifest,
  type PackedPackage,
} from './npm-vendor.js';
import {summarize, type Raw} from './report.js';
import {performanceDoc} from './report-doc.js';
import {
  allowShaWants,
  historySeries,
  inflateSeries,
  packMiB,
  revParse,
  type Deployer,
} from './rss.js';
import {syncRuns} from './sync.js';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const deployBin = path.join(packageRoot, 'bin', 'deploy.js');
const QUICK = process.env.BENCH_QUICK === '1';
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const RSS_RUNS = Number(process.env.BENCH_RSS_RUNS ?? 1);

/** The sizes measured; the quick ones only try the bench out. */
const SIZES = QUICK
  ? {
      app: {...LONG_HISTORY, commits: 300, files: 300, bundleBytes: 60_000},
      historyFiles: 100,
      packages: 60,
      staleTarballs: 120,
      vendorFiles: 200,
      history: [
        {label: 'small (quick)', bytes: 40_000},
        {label: 'medium (quick)', bytes: 160_000},
        {label: 'large (quick)', bytes: 400_000},
      ],
      historyCommits: 200,
      inflateVersions: 60,
      large: {count: 2, mib: 8},
    }
  : {
      app: LONG_HISTORY,
      historyFiles: LONG_HISTORY.files,
      packages: 1000,
      staleTarballs: 2500,
      vendorFiles: 3500,
      history: [
        {label: '~100 MB', bytes: 300_000},
        {label: '~400 MB', bytes: 1_200_000},
        {label: '~1 GB', bytes: 3_200_000},
      ],
      historyCommits: LONG_HISTORY.commits,
      inflateVersions: 1000,
      large: {count: 6, mib: 24},
    };

type Pair = {ours: Sample[]; native: Sample[]};

/** The npm app on the long history, its vendor repo, served; the tarballs also on disk. */
async function buildNpmBenchmark(work: string) {
  const served = path.join(work, 'served');
  const vendorTree = path.join(work, 'vendor-tree');
  const packages = benchPackages(SIZES.packages);
  const files: Record<string, Buffer> = {'vendor-manifest.json': vendorManifest(packages)};
  for (const p of packages) files[p.artifact.path] = p.bytes;
  // Real vendor repos hold thousands of files, older versions the manifest no longer lists
  // among them: the deploy fetches and writes them too.
  for (let i = 0; i < SIZES.staleTarballs; i++) {
    const name = `bench-pkg-${i % SIZES.packages}`;
    const version = `0.${Math.floor(i / SIZES.packages)}.0`;
    files[`npm/${name}/${name}-${version}.tgz`] = noise(2_000_000 + i, 700 + (i % 5) * 300);
  }
  await writeTree(vendorTree, files);
  await buildFilesRepo(path.join(served, 'vendor.git'), files);
  const vendorSha = await revParse(path.join(served, 'vendor.git'), 'main');
  const manifests = appManifests(packages);
  await buildApp(path.join(served, 'app.git'), SIZES.app, vendorSha, {
    deployJson: Buffer.from('{"install": "npm"}\n'),
    files: {'package.json': manifests.packageJson, 'package-lock.json': manifests.packageLock},
  });
  for (const repo of ['app.git', 'vendor.git']) await allowShaWants(path.join(served, repo));
  const base = await revParse(path.join(served, 'app.git'), 'main');
  return {served, vendorTree, packages, vendorSha, manifests, base};
}

async function writeTree(dir: string, files: Record<string, Buffer>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    await fsp.mkdir(path.dirname(path.join(dir, name)), {recursive: true});
    await fsp.writeFile(path.join(dir, name), content);
  }
}

type NpmBenchmark = Awaited<ReturnType<typeof buildNpmBenchmark>>;

/**
 * Run `run`'s commits, each on a ref of its own from the same base: one app commit (lockfile
 * unchanged), then a vendor commit adding a package and an app commit pinning it.
 */
async function runCommits(b: NpmBenchmark, run: number) {
  const appGit = path.join(b.served, 'app.git');
  const ref = `refs/heads/run-${run}`;
  const next = await appendCommit(appGit, {
    ref,
    parent: b.base,
    message: `incremental ${run}`,
    files: {'src/m3/part0.js': Buffer.from(text(99_000 + run, 2_000))},
  });
  const added: PackedPackage = packPackage(`bench-extra-${run}`, 50_000 + run);
  const withAdded = [...b.packages, added];
  await writeTree(b.vendorTree, {[added.artifact.path]: added.bytes});
  const vendorSha = await appendCommit(path.join(b.served, 'vendor.git'), {
    ref,
    parent: b.vendorSha,
    message: `add ${added.artifact.name}`,
    files: {[added.artifact.path]: added.bytes, 'vendor-manifest.json': vendorManifest(withAdded)},
  });
  const manifests = appManifests(withAdded);
  const locked = await appendCommit(appGit, {
    ref,
    parent: next,
    message: `depend on ${added.artifact.name}`,
    files: {'package.json': manifests.packageJson, 'package-lock.json': manifests.packageLock},
    gitlinks: {vendor: vendorSha},
  });
  return {next, locked, vendorSha, artifacts: withAdded.map(p => p.artifact)};
}

/** Scenarios 1–3, `RUNS` times, each run on a new node for both. */
async function deployScenarios(
  work: string,
  b: NpmBenchmark,
  ours: Deployer,
  appUrl: string,
  vendorUrl: string,
) {
  const first: Pair = {ours: [], native: []};
  const incremental: Pair = {ours: [], native: []};
  const lockChange: Pair = {ours: [], native: []};
  const artifacts = b.packages.map(p => p.artifact);
  for (let run = 0; run < RUNS; run++) {
    console.log(`run ${run + 1}/${RUNS}`);
    const root = path.join(work, `ours-${run}`);
    const node = path.join(work, `native-${run}`);
    const c = await runCommits(b, run);
    const native = (sha: string, vsha: string, a: typeof artifacts) =>
      nativeDeploy(work, {
        node,
        sha,
        appUrl,
        vendor: {sha: vsha, url: vendorUrl},
        npm: {vendorDir: b.vendorTree, artifacts: a},
      });
    first.ours.push(await ours(root, b.base, appUrl));
    first.native.push(await native(b.base, b.vendorSha, artifacts));
    incremental.ours.push(await ours(root, c.next, appUrl));
    incremental.native.push(await native(c.next, b.vendorSha, artifacts));
    lockChange.ours.push(await ours(root, c.locked, appUrl));
    lockChange.native.push(await native(c.locked, c.vendorSha, c.artifacts));
    if (run > 0) await fsp.rm(root, {recursive: true, force: true});
    await fsp.rm(node, {recursive: true, force: true});
  }
  return {first, incremental, lockChange};
}

/** Wall time of each phase of the bench, so its total on a machine shows where it goes. */
const phases: Record<string, number> = {};
async function phase<T>(name: string, body: () => Promise<T>): Promise<T> {
  console.log(`${name} ...`);
  const t0 = performance.now();
  const value = await body();
  phases[name] = (performance.now() - t0) / 1000;
  console.log(`${name}: ${(phases[name] ?? 0).toFixed(1)} s`);
  return value;
}

async function deployPhase(work: string, b: NpmBenchmark, ours: Deployer) {
  const server = await startGitHttpServer({projectRoot: b.served});
  try {
    const urls = [server.repoUrl('app.git'), server.repoUrl('vendor.git')] as const;
    return await deployScenarios(work, b, ours, ...urls);
  } finally {
    await server.close();
  }
}

/** Every measurement, in the order that lets later phases reuse what earlier ones built. */
async function measureAll(work: string, ours: Deployer): Promise<Raw> {
  const b = await phase('build the npm app on the long history', () => buildNpmBenchmark(work));
  const appPackMiB = await packMiB(path.join(b.served, 'app.git'));
  console.log(`app pack ${appPackMiB.toFixed(0)} MiB`);
  const deploys = await phase('deploys', () => deployPhase(work, b, ours));
  const hashSmall = await phase('hashing the app tarballs', () =>
    hashRuns(path.join(work, 'ours-0', 'current'), RUNS),
  );
  const hashLarge = await phase('hashing large files', async () =>
    hashRuns(await largeArtifactRelease(work, SIZES.large.count, SIZES.large.mib), RUNS),
  );
  const sync = await phase('vendor-sync', () => syncRuns(work, b.manifests, b.packages, RUNS));
  const shapes = SIZES.history.map(h => ({
    label: h.label,
    shape: {
      ...SIZES.app,
      commits: SIZES.historyCommits,
      files: SIZES.historyFiles,
      bundleBytes: h.bytes,
    },
  }));
  const history = await phase('peak RSS against history size', () =>
    historySeries(work, shapes, SIZES.vendorFiles, RSS_RUNS, ours),
  );
  const inflate = await phase('peak RSS on an inflating pack', () =>
    inflateSeries(work, SIZES.inflateVersions, RSS_RUNS, ours),
  );
  return {
    quick: QUICK,
    runs: RUNS,
    rssRuns: RSS_RUNS,
    phases,
    benchmark: {
      appCommits: SIZES.app.commits,
      appFiles: SIZES.app.files,
      appPackMiB,
      npmPackages: SIZES.packages,
      vendorFiles: SIZES.packages + SIZES.staleTarballs + 1,
    },
    deploys,
    sync,
    hashSmall,
    hashLarge,
    history,
    inflate,
  };
}

async function main(): Promise<void> {
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-bench-'));
  // The deploys' HOME too is in the bench's directory: nothing is cached outside it.
  const home = path.join(work, 'home');
  await fsp.mkdir(home);
  console.log(`benchmark in ${work}${QUICK ? ' (quick sizes)' : ''}`);
  const ours: Deployer = (root, rev, repoUrl) =>
    timed(process.execPath, [deployBin, '--rev', rev, '--root', root, '--repo', repoUrl], {
      env: {PATH: process.env.PATH, HOME: home},
    });
  const t0 = performance.now();
  const raw = await measureAll(work, ours);
  raw.phases.total = (performance.now() - t0) / 1000;
  const results = summarize(raw);
  if (process.env.BENCH_NO_WRITE !== '1') {
    await fsp.writeFile(
      path.join(packageRoot, 'bench', 'results.json'),
      `${JSON.stringify(results, null, 2)}\n`,
    );
    await fsp.writeFile(path.join(packageRoot, 'docs', 'performance.md'), performanceDoc(results));
  }
  console.log(performanceDoc(results));
  if (process.env.BENCH_KEEP === '1') console.log(`kept ${work}`);
  else await fsp.rm(work, {recursive: true, force: true});
}

await main();
