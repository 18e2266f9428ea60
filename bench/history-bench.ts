/**
 * `npm run bench:history`: a first deploy from a long-history app (bench/long-history.ts) side
 * by side with the native way (`git fetch --depth 1` + `git archive | tar -x` for the app and its
 * vendor submodule), with peak RSS, in one run. BENCH_RUNS (default 3) runs each; HISTORY_COMMITS
 * overrides the number of commits. Prints min–median–max; no timing is asserted anywhere.
 */
import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {promisify} from 'node:util';
import {startGitHttpServer} from '../test/helpers/git-http-server.js';
import {buildApp, buildVendor, LONG_HISTORY} from './long-history.js';
import {timed, type Sample} from './measure.js';

const exec = promisify(execFile);
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const deployBin = path.join(packageRoot, 'bin', 'deploy.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

const spread = (values: number[], unit: string) => {
  const s = [...values].sort((a, b) => a - b);
  const med = s[Math.floor(s.length / 2)] ?? 0;
  return `${(s[0] ?? 0).toFixed(2)}–${med.toFixed(2)}–${(s.at(-1) ?? 0).toFixed(2)} ${unit}`;
};

async function packBytes(gitdir: string): Promise<number> {
  const dir = path.join(gitdir, 'objects', 'pack');
  let total = 0;
  for (const name of await fsp.readdir(dir))
    if (name.endsWith('.pack')) total += (await fsp.stat(path.join(dir, name))).size;
  return total;
}

async function main(): Promise<void> {
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-history-'));
  const served = path.join(work, 'served');
  const shape = {
    ...LONG_HISTORY,
    commits: Number(process.env.HISTORY_COMMITS ?? LONG_HISTORY.commits),
  };
  const t0 = performance.now();
  await buildVendor(path.join(served, 'vendor.git'), 3500);
  const vendorSha = (
    await exec('git', ['--git-dir', path.join(served, 'vendor.git'), 'rev-parse', 'main'])
  ).stdout.trim();
  await buildApp(path.join(served, 'app.git'), shape, vendorSha);
  const appGit = path.join(served, 'app.git');
  const sha = (await exec('git', ['--git-dir', appGit, 'rev-parse', 'main'])).stdout.trim();
  for (const repo of ['app.git', 'vendor.git'])
    await exec('git', [
      '--git-dir',
      path.join(served, repo),
      'config',
      'uploadpack.allowReachableSHA1InWant',
      'true',
    ]);
  const pack = await packBytes(appGit);
  console.log(
    `built in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${shape.commits} commits, app pack ${(pack / 1024 ** 2).toFixed(0)} MiB, tip ${sha.slice(0, 12)}`,
  );
  const server = await startGitHttpServer({projectRoot: served});
  const env = {PATH: process.env.PATH, HOME: os.homedir(), GIT_CONFIG_NOSYSTEM: '1'};
  const script = path.join(work, 'native.sh');
  await fsp.writeFile(
    script,
    `set -e
node=$1; sha=$2; vsha=$3; app=$4; vendor=$5
mkdir -p "$node/releases/r/vendor"
git init -q --bare "$node/app.git"; git init -q --bare "$node/vendor.git"
git -C "$node/app.git" fetch -q --depth 1 "$app" "$sha"
git -C "$node/app.git" archive "$sha" | tar -x -C "$node/releases/r"
git -C "$node/vendor.git" fetch -q --depth 1 "$vendor" "$vsha"
git -C "$node/vendor.git" archive "$vsha" | tar -x -C "$node/releases/r/vendor"
`,
  );
  const ours: Sample[] = [];
  const native: Sample[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const node = path.join(work, `native-${i}`);
      native.push(
        await timed(
          'sh',
          [script, node, sha, vendorSha, server.repoUrl('app.git'), server.repoUrl('vendor.git')],
          {env},
        ),
      );
      ours.push(
        await timed(
          process.execPath,
          [
            deployBin,
            '--rev',
            sha,
            '--root',
            path.join(work, `ours-${i}`),
            '--repo',
            server.repoUrl('app.git'),
          ],
          {env},
        ),
      );
      await fsp.rm(node, {recursive: true, force: true});
      await fsp.rm(path.join(work, `ours-${i}`), {recursive: true, force: true});
    }
  } finally {
    await server.close();
  }
  const ratio = ours.map((o, i) => o.seconds / (native[i]?.seconds ?? 1));
  const line = (label: string, samples: Sample[]) =>
    `  ${label} ${spread(
      samples.map(s => s.seconds),
      's',
    )}, peak RSS ${spread(
      samples.map(s => s.rssMb ?? 0),
      'MB',
    )}`;
  console.log(`first deploy, long history (min–median–max of ${RUNS}):`);
  console.log(line('repodeploy', ours));
  console.log(line('native    ', native));
  console.log(`  ratio      ${spread(ratio, 'x')}`);
  await fsp.rm(work, {recursive: true, force: true});
}

await main();
