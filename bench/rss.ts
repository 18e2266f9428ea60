/**
 * Peak RSS of a first deploy against history size, and against a pack whose blobs inflate far
 * beyond it; each beside the native way. The apps install nothing: the memory measured is that
 * of fetching, indexing and writing the trees.
 */
import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import {startGitHttpServer} from '../test/helpers/git-http-server.js';
import {buildApp, buildInflating, buildVendor, type HistoryShape} from './long-history.js';
import {nativeDeploy} from './native.js';
import {type Sample} from './measure.js';

const exec = promisify(execFile);

export type RssPoint = {
  label: string;
  commits: number;
  packMiB: number;
  ours: Sample[];
  native: Sample[];
};

export type Deployer = (root: string, rev: string, repoUrl: string) => Promise<Sample>;

export async function packMiB(gitdir: string): Promise<number> {
  const dir = path.join(gitdir, 'objects', 'pack');
  let total = 0;
  for (const name of await fsp.readdir(dir))
    if (name.endsWith('.pack')) total += (await fsp.stat(path.join(dir, name))).size;
  return total / 1024 ** 2;
}

export async function revParse(gitdir: string, rev: string): Promise<string> {
  return (await exec('git', ['--git-dir', gitdir, 'rev-parse', rev])).stdout.trim();
}

/** Let native git fetch any reachable commit by sha, as repodeploy may. */
export async function allowShaWants(gitdir: string): Promise<void> {
  await exec('git', ['--git-dir', gitdir, 'config', 'uploadpack.allowReachableSHA1InWant', 'true']);
}

/** One app per shape, each beside its own vendor repo (pinned as a submodule), `runs` deploys. */
export async function historySeries(
  work: string,
  shapes: Array<{label: string; shape: HistoryShape}>,
  vendorFiles: number,
  runs: number,
  ours: Deployer,
): Promise<RssPoint[]> {
  const served = path.join(work, 'served-rss');
  const points: RssPoint[] = [];
  // One vendor repo for all: each app's submodule URL (../vendor.git) reaches it by a symlink.
  const vendorGit = path.join(served, 'vendor.git');
  await buildVendor(vendorGit, vendorFiles);
  await allowShaWants(vendorGit);
  const vendorSha = await revParse(vendorGit, 'main');
  const server = await startGitHttpServer({projectRoot: served});
  try {
    for (const [i, {label, shape}] of shapes.entries()) {
      const dir = path.join(served, `h${i}`);
      await fsp.mkdir(dir, {recursive: true});
      await fsp.symlink(vendorGit, path.join(dir, 'vendor.git'));
      await buildApp(path.join(dir, 'app.git'), shape, vendorSha);
      await allowShaWants(path.join(dir, 'app.git'));
      const sha = await revParse(path.join(dir, 'app.git'), 'main');
      const point: RssPoint = {
        label,
        commits: shape.commits,
        packMiB: await packMiB(path.join(dir, 'app.git')),
        ours: [],
        native: [],
      };
      console.log(`  history ${label}: ${point.packMiB.toFixed(0)} MiB pack`);
      const appUrl = server.repoUrl(`h${i}/app.git`);
      for (let run = 0; run < runs; run++) {
        point.ours.push(await ours(path.join(work, `rss-${i}-${run}`), sha, appUrl));
        point.native.push(
          await nativeDeploy(work, {
            node: path.join(work, `rss-native-${i}-${run}`),
            sha,
            appUrl,
            vendor: {sha: vendorSha, url: server.repoUrl(`h${i}/vendor.git`)},
          }),
        );
        await fsp.rm(path.join(work, `rss-${i}-${run}`), {recursive: true, force: true});
        await fsp.rm(path.join(work, `rss-native-${i}-${run}`), {recursive: true, force: true});
      }
      points.push(point);
      await fsp.rm(dir, {recursive: true, force: true});
    }
  } finally {
    await server.close();
  }
  return points;
}

export type InflatePoint = {
  versions: number;
  packMiB: number;
  inflatedMiB: number;
  /** The tip, by full sha: a shallow fetch. */
  tip: {ours: Sample[]; native: Sample[]};
  /** An old commit by abbreviated sha: the whole history is fetched and indexed. */
  old: {rev: string; ours: Sample[]; native: Sample[]};
};

/** A pack of `versions` versions of a 1 MiB file: deploy the tip and an old commit. */
export async function inflateSeries(
  work: string,
  versions: number,
  runs: number,
  ours: Deployer,
): Promise<InflatePoint> {
  const served = path.join(work, 'served-inflate');
  const gitdir = path.join(served, 'app.git');
  await buildInflating(gitdir, versions);
  await allowShaWants(gitdir);
  const tip = await revParse(gitdir, 'main');
  const oldSha = await revParse(gitdir, `main~${versions - 10}`);
  const blobBytes = Number(
    (await exec('git', ['--git-dir', gitdir, 'cat-file', '-s', `${tip}:big.txt`])).stdout,
  );
  const point: InflatePoint = {
    versions,
    packMiB: await packMiB(gitdir),
    inflatedMiB: (blobBytes * versions) / 1024 ** 2,
    tip: {ours: [], native: []},
    old: {rev: oldSha.slice(0, 12), ours: [], native: []},
  };
  console.log(`  inflating: ${point.packMiB.toFixed(1)} MiB pack, ${versions} versions`);
  const server = await startGitHttpServer({projectRoot: served});
  const appUrl = server.repoUrl('app.git');
  try {
    for (let run = 0; run < runs; run++) {
      for (const [which, rev, sha] of [
        ['tip', tip, tip],
        ['old', point.old.rev, oldSha],
      ] as const) {
        const root = path.join(work, `inflate-${which}-${run}`);
        const node = path.join(work, `inflate-native-${which}-${run}`);
        point[which].ours.push(await ours(root, rev, appUrl));
        const depth = which === 'old' ? 'full' : 'one';
        point[which].native.push(await nativeDeploy(work, {node, sha, appUrl, depth}));
        await fsp.rm(root, {recursive: true, force: true});
        await fsp.rm(node, {recursive: true, force: true});
      }
    }
  } finally {
    await server.close();
  }
  return point;
}
