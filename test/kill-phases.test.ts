import {spawn} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {readLock} from '../lib/node/lock.js';
import {status} from '../lib/node/status.js';
import {startGitHttpServer} from './helpers/git-http-server.js';
import {waitFor} from './helpers/http.js';
import {deployBin, makeWorld, runDeploy, type World} from './helpers/world.js';

async function commitVersion(world: World, n: number): Promise<void> {
  await world.app.write({
    ...Object.fromEntries(
      Array.from({length: 40}, (_, i) => [`src/f${i}.js`, `export const v = ${n};\n`]),
    ),
    'version.txt': `${n}\n`,
    'deploy.json': JSON.stringify({install: {command: ['true']}}),
  });
  await world.app.commit(`version ${n}`);
  await world.publish();
}

/** `current` must name a complete release: its metadata says so and its files are all there. */
async function assertCurrentComplete(t: ExecutionContext, root: string, versions: string[]) {
  const target = await fsp.readlink(path.join(root, 'current'));
  const dir = path.join(root, target);
  const meta = JSON.parse(
    await fsp.readFile(path.join(dir, '.repodeploy/release.json'), 'utf8'),
  ) as {state: string};
  t.true(['ready', 'live', 'retired'].includes(meta.state), `current is ${meta.state}`);
  t.true(versions.includes((await fsp.readFile(path.join(dir, 'version.txt'), 'utf8')).trim()));
}

const phases = [
  {point: 'after-mkdir', label: 'after mkdir', newCurrent: false},
  {point: 'mid-write', label: 'mid-write (half the files written)', newCurrent: false},
  {point: 'after-write', label: 'after the write, before the install', newCurrent: false},
  {point: 'after-ready', label: 'after the building marker is cleared', newCurrent: false},
  {point: 'after-rename', label: 'between the rename and the fsync', newCurrent: true},
] as const;

for (const {point, label, newCurrent} of phases) {
  test(`[R1] SIGKILL ${label}: current is a complete release, the next run cleans up and deploys`, async t => {
    const world = await makeWorld(t);
    await commitVersion(world, 1);
    const first = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
    await commitVersion(world, 2);
    const child = spawn(process.execPath, [deployBin, '--rev', 'main', '--root', world.root], {
      stdio: 'ignore',
      env: {...process.env, REPODEPLOY_PAUSE_AT: point},
    });
    const marker = path.join(world.root, `.paused-${point}`);
    await waitFor(t, point, () =>
      fsp.access(marker).then(
        () => true,
        () => false,
      ),
    );
    child.kill('SIGKILL');
    await new Promise(resolve => child.once('exit', resolve));
    await fsp.rm(marker);
    if (point === 'mid-write') {
      const killed = (await fsp.readdir(path.join(world.root, 'releases'))).find(
        id => id !== first.releaseId,
      );
      const written = await fsp.readdir(path.join(world.root, 'releases', killed ?? '', 'src'));
      t.true(written.length > 0 && written.length < 40, `${written.length} of 40 files written`);
    }

    await assertCurrentComplete(t, world.root, newCurrent ? ['2'] : ['1']);
    if (!newCurrent)
      t.is(await fsp.readlink(path.join(world.root, 'current')), `releases/${first.releaseId}`);
    t.is((await readLock(world.root)).state, 'dead', 'the killed run left its lock behind');

    await commitVersion(world, 3);
    const third = await runDeploy({root: world.root, rev: 'main'});
    await assertCurrentComplete(t, world.root, ['3']);
    const s = await status({root: world.root});
    t.is(s.current?.id, third.releaseId);
    t.false(
      s.releases.some(r => r.state === 'building'),
      'nothing left building',
    );
    t.is((await readLock(world.root)).state, 'free');
  });
}

test('[R1] SIGKILL mid-fetch (the server stalls): no pack kept, releases and current untouched', async t => {
  const world = await makeWorld(t);
  await commitVersion(world, 1);
  const first = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  await commitVersion(world, 2);
  const stalling = await startGitHttpServer({projectRoot: world.servedDir, stallUploadPack: true});
  t.teardown(() => stalling.close());
  const packDir = path.join(world.root, 'repos/app.git/objects/pack');
  const packsBefore = (await fsp.readdir(packDir)).sort();
  const child = spawn(
    process.execPath,
    [deployBin, '--rev', 'main', '--root', world.root, '--repo', stalling.repoUrl('app.git')],
    {
      stdio: 'ignore',
    },
  );
  // The refs are listed (a request completes) before the stalled upload-pack.
  await waitFor(t, 'the fetch to start', () => Promise.resolve(stalling.requests.length > 0));
  await new Promise(resolve => setTimeout(resolve, 300));
  child.kill('SIGKILL');
  await new Promise(resolve => child.once('exit', resolve));
  // What arrived went to a temporary file no reader takes for a pack; the next fetch removes it.
  const packs = async () => (await fsp.readdir(packDir)).filter(name => name.startsWith('pack-'));
  t.deepEqual((await packs()).sort(), packsBefore, 'no partial pack or index');
  t.is(await fsp.readlink(path.join(world.root, 'current')), `releases/${first.releaseId}`);
  t.deepEqual(await fsp.readdir(path.join(world.root, 'releases')), [first.releaseId]);
  const next = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  t.is((await status({root: world.root})).current?.id, next.releaseId);
  t.deepEqual(
    (await fsp.readdir(packDir)).filter(name => !name.startsWith('pack-')),
    [],
    'no temporary file left',
  );
});
