import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test from 'ava';
import {LockError} from '../lib/support/errors.js';
import {prune} from '../lib/node/lifecycle.js';
import {acquireLock} from '../lib/node/lock.js';
import {status} from '../lib/node/status.js';
import {runDeploy, runDeployBin, makeWorld, testDeps, writeSampleApp} from './helpers/world.js';

/** A node with one deployed release, and the app ready to deploy again. */
async function deployedNode(t: Parameters<typeof makeWorld>[0]) {
  const world = await makeWorld(t);
  await writeSampleApp(world.app);
  await world.app.commit('v1');
  await world.publish();
  await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  return world;
}

const OURS = [
  'releases/.pruning-20261128T093005Z-0123abc',
  '.lock.stale-0a1b2c3d',
  '.lock.released-deadbeef',
  '.lock.broken-00ff00ff',
];

/** What killed runs leave: a half-removed release and old lock directories moved aside. */
async function leaveLeftovers(root: string): Promise<void> {
  const pruning = path.join(root, OURS[0] ?? '');
  await fsp.mkdir(path.join(pruning, 'src', 'lib'), {recursive: true});
  await fsp.writeFile(path.join(pruning, 'src', 'lib', 'util.js'), 'export const x = 1;\n');
  await fsp.chmod(path.join(pruning, 'src', 'lib'), 0o555);
  for (const name of OURS.slice(1)) {
    await fsp.mkdir(path.join(root, name));
    await fsp.writeFile(path.join(root, name, 'owner.json'), '{"pid": 1}\n');
  }
}

/** Names like ours that we never make, or not in the place we make them: never touched. */
const NOT_OURS = [
  '.lock.stale-notahex!',
  '.lock.stale-0a1b2c3d4',
  '.lock.released-deadbeef.keep',
  '.pruning-20261128T093005Z-0123abc',
  'releases/.pruning-',
  'shared/.lock.stale-0a1b2c3d',
];

async function leaveLookalikes(root: string): Promise<void> {
  for (const name of NOT_OURS) await fsp.mkdir(path.join(root, name), {recursive: true});
  // A file by one of our names is not a directory we renamed aside.
  await fsp.writeFile(path.join(root, '.lock.stale-11111111'), 'not ours\n');
}

async function present(root: string, names: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const name of names) {
    if (await fsp.lstat(path.join(root, name)).catch(() => undefined)) found.push(name);
  }
  return found;
}

test('the next deploy removes .pruning-* and .lock.* leftovers of killed runs, and nothing else', async t => {
  const world = await deployedNode(t);
  await leaveLeftovers(world.root);
  await leaveLookalikes(world.root);
  await world.app.write({'src/server.js': "console.log('v2');\n"});
  await world.app.commit('v2');
  await world.publish();
  await runDeploy({root: world.root, rev: 'main'});
  t.deepEqual(await present(world.root, OURS), []);
  t.deepEqual(await present(world.root, [...NOT_OURS, '.lock.stale-11111111']), [
    ...NOT_OURS,
    '.lock.stale-11111111',
  ]);
  t.is((await status({root: world.root})).releases.length, 2, 'both releases are still there');
});

test('deploy prune removes the leftovers too', async t => {
  const world = await deployedNode(t);
  await leaveLeftovers(world.root);
  const run = await runDeployBin(['prune', '--root', world.root]);
  t.is(run.code, 0, run.stderr);
  t.deepEqual(await present(world.root, OURS), []);
  t.is((await status({root: world.root})).releases.length, 1);
});

test('a run that does not get the lock leaves the leftovers alone, as does prune --dry-run', async t => {
  const world = await deployedNode(t);
  await leaveLeftovers(world.root);
  await prune({root: world.root, dryRun: true}, testDeps());
  t.deepEqual(await present(world.root, OURS), OURS, '--dry-run changes nothing');
  const lock = await acquireLock(world.root, {user: 'other', command: 'deploy --rev main'});
  try {
    await t.throwsAsync(prune({root: world.root}, testDeps()), {instanceOf: LockError});
    t.deepEqual(await present(world.root, OURS), OURS);
  } finally {
    await lock.release();
  }
});
