/**
 * The native way of deploying, as a shell script a team would write: `git fetch --depth 1` and
 * `git archive | tar -x` for the app and its vendor repository, then `npm ci --offline` from a
 * cache filled with the vendored tarballs (the fill is counted: a node has no such cache).
 */
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {fillCache, type BenchArtifact} from './npm-vendor.js';
import {timed, type Sample} from './measure.js';

const SCRIPT = `set -e
node=$1; sha=$2; vsha=$3; app=$4; vendor=$5; cache=$6; depth=$7
mkdir -p "$node/repos" "$node/releases/$sha/vendor"
[ -d "$node/repos/app.git" ] || git init -q --bare "$node/repos/app.git"
if [ "$depth" = full ]; then
  git -C "$node/repos/app.git" fetch -q "$app" +refs/heads/main:refs/heads/main
else
  git -C "$node/repos/app.git" fetch -q --depth 1 "$app" "$sha"
fi
git -C "$node/repos/app.git" archive "$sha" | tar -x -C "$node/releases/$sha"
if [ "$vsha" != - ]; then
  [ -d "$node/repos/vendor.git" ] || git init -q --bare "$node/repos/vendor.git"
  git -C "$node/repos/vendor.git" fetch -q --depth 1 "$vendor" "$vsha"
  git -C "$node/repos/vendor.git" archive "$vsha" | tar -x -C "$node/releases/$sha/vendor"
fi
if [ "$cache" != - ]; then
  cd "$node/releases/$sha" && npm ci --offline --ignore-scripts --cache "$cache" >/dev/null 2>&1
fi
`;

export type NativeTarget = {
  /** The node's directory (repositories, releases, npm cache). */
  node: string;
  sha: string;
  appUrl: string;
  /** The vendor commit and URL; none: the app has no vendor repository to fetch. */
  vendor?: {sha: string; url: string};
  /** Install with npm from a cache filled with these tarballs, read from `vendorDir`. */
  npm?: {vendorDir: string; artifacts: BenchArtifact[]};
  /** `full`: fetch the whole branch (what git must do for a commit it cannot name by full sha). */
  depth?: 'one' | 'full';
};

/** One native deploy, timed with its peak RSS (the fill of the npm cache included). */
export async function nativeDeploy(work: string, target: NativeTarget): Promise<Sample> {
  const script = path.join(work, 'native.sh');
  await fsp.writeFile(script, SCRIPT);
  const home = path.join(target.node, 'home');
  await fsp.mkdir(home, {recursive: true});
  const cache = path.join(target.node, 'npm-cache');
  const started = performance.now();
  if (target.npm) await fillCache(cache, target.npm.vendorDir, target.npm.artifacts);
  const fill = (performance.now() - started) / 1000;
  const args = [
    script,
    target.node,
    target.sha,
    target.vendor?.sha ?? '-',
    target.appUrl,
    target.vendor?.url ?? '-',
    target.npm ? cache : '-',
    target.depth ?? 'one',
  ];
  const run = await timed('sh', args, {env: {...npmEnv(home, cache), GIT_CONFIG_NOSYSTEM: '1'}});
  return {seconds: run.seconds + fill, rssMb: run.rssMb};
}

/** npm with no configuration of the machine's, offline, its cache and home in the bench's dir. */
export function npmEnv(home: string, cache: string): NodeJS.ProcessEnv {
  return {
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
  };
}
