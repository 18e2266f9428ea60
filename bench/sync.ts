/**
 * vendor-sync from a registry (Verdaccio on 127.0.0.1 holding the benchmark's tarballs), cold and
 * again with nothing to do, against `npm ci` with a cold cache from the same registry.
 */
import {createHash} from 'node:crypto';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {PassThrough} from 'node:stream';
import {fileURLToPath} from 'node:url';
import {defaultContext} from '../lib/cli/io.js';
import {main as vendorSyncMain} from '../vendor-sync/cli.js';
import {startRegistry} from '../test/helpers/npm-registry.js';
import {FixtureRepo} from '../test/helpers/repos.js';
import {npmEnv} from './native.js';
import {timed, type Sample} from './measure.js';
import type {PackedPackage} from './npm-vendor.js';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const vendorSyncBin = path.join(packageRoot, 'bin', 'vendor-sync.js');

export type SyncRuns = {cold: Sample[]; noop: Sample[]; noopInProcess: number[]; npmCold: Sample[]};

/**
 * Put every tarball in the registry: the first through its publish API, the others written into
 * its storage as that publish wrote the first (a publish takes Verdaccio half a second; a
 * thousand would take longer than the rest of the bench).
 */
async function publishAll(
  registry: Awaited<ReturnType<typeof startRegistry>>,
  storage: string,
  packages: PackedPackage[],
): Promise<void> {
  const [head, ...rest] = packages;
  if (!head) return;
  await registry.publishTarball(head.artifact.name, head.artifact.version, head.bytes);
  for (const p of rest) {
    const {name, version} = p.artifact;
    const file = `${name}-${version}.tgz`;
    const shasum = createHash('sha1').update(p.bytes).digest('hex');
    const time = '2026-01-01T00:00:00.000Z';
    const doc = {
      name,
      versions: {
        [version]: {
          name,
          version,
          _id: `${name}@${version}`,
          dist: {
            shasum,
            integrity: p.artifact.integrity,
            tarball: `${registry.url}${name}/-/${file}`,
          },
          contributors: [],
        },
      },
      time: {modified: time, created: time, [version]: time},
      users: {},
      'dist-tags': {latest: version},
      _uplinks: {},
      _distfiles: {},
      _attachments: {[file]: {shasum, version}},
      _rev: '1-0000000000000000',
      _id: name,
      readme: '',
    };
    await fsp.mkdir(path.join(storage, name), {recursive: true});
    await fsp.writeFile(path.join(storage, name, file), p.bytes);
    await fsp.writeFile(path.join(storage, name, 'package.json'), JSON.stringify(doc, null, 2));
  }
}

/** `runs` cold syncs into a new vendor repo, each followed by a no-op one, and a cold npm ci. */
export async function syncRuns(
  work: string,
  app: {packageJson: Buffer; packageLock: Buffer},
  packages: PackedPackage[],
  runs: number,
): Promise<SyncRuns> {
  const registry = await startRegistry(path.join(work, 'registry'));
  const result: SyncRuns = {cold: [], noop: [], noopInProcess: [], npmCold: []};
  try {
    await publishAll(registry, path.join(work, 'registry', 'storage'), packages);
    const appDir = path.join(work, 'sync-app');
    await fsp.mkdir(appDir, {recursive: true});
    await fsp.writeFile(path.join(appDir, 'package.json'), app.packageJson);
    await fsp.writeFile(path.join(appDir, 'package-lock.json'), app.packageLock);
    await fsp.writeFile(path.join(appDir, 'deploy.json'), '{"install": "npm"}\n');
    const home = path.join(work, 'home');
    const env = {PATH: process.env.PATH, HOME: home};
    for (let run = 0; run < runs; run++) {
      const fresh = await FixtureRepo.init(path.join(work, `sync-vendor-${run}`));
      await fresh.write({'README.md': 'vendor\n'});
      await fresh.commit('start');
      const args = ['--app', appDir, '--vendor', fresh.dir, '--npm-registry', registry.url];
      result.cold.push(await timed(process.execPath, [vendorSyncBin, ...args], {env}));
      result.noop.push(await timed(process.execPath, [vendorSyncBin, ...args], {env}));
      result.noopInProcess.push(await inProcess(args, env));
      const npmDir = path.join(work, `npm-cold-${run}`);
      await fsp.cp(appDir, npmDir, {recursive: true});
      const npmHome = path.join(npmDir, '.home');
      await fsp.mkdir(npmHome);
      const cache = path.join(npmDir, '.cache');
      const npmArgs = ['ci', '--ignore-scripts', '--registry', registry.url];
      result.npmCold.push(
        await timed('npm', npmArgs, {
          cwd: npmDir,
          env: {
            ...npmEnv(npmHome, cache),
            npm_config_offline: 'false',
            npm_config_registry: registry.url,
          },
        }),
      );
    }
  } finally {
    await registry.close();
  }
  return result;
}

/** The same no-op run in this process, modules already loaded: the work itself. */
async function inProcess(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = performance.now();
  const code = await vendorSyncMain(
    args,
    defaultContext({stdout: new PassThrough().resume(), stderr: new PassThrough().resume(), env}),
  );
  if (code !== 0) throw new Error(`vendor-sync exited ${code}`);
  return (performance.now() - t0) / 1000;
}
