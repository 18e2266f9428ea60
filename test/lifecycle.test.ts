import {spawn} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test from 'ava';
import {ConfigError, ExitCode, InstallError, LockError} from '../lib/support/errors.js';
import {readHistory} from '../lib/node/history.js';
import {prune, rollback} from '../lib/node/lifecycle.js';
import {acquireLock, breakLock, readLock} from '../lib/node/lock.js';
import {writeNodeSettings} from '../lib/node/settings.js';
import {processScope, recordChild, stopRecordedChild} from '../lib/node/processes.js';
import {status} from '../lib/node/status.js';
import {tempDir} from './helpers/tmp.js';
import {fingerprint} from './helpers/tree.js';
import {waitFor} from './helpers/http.js';
import {
  deployBin,
  makeWorld,
  runDeploy,
  runDeployBin,
  testDeps,
  type World,
} from './helpers/world.js';

/** Commit a new app version whose install runs `command`. */
async function commitVersion(
  world: World,
  n: number,
  command: string[] = ['true'],
): Promise<string> {
  await world.app.write({
    'version.txt': `${n}\n`,
    'deploy.json': JSON.stringify({install: {command}}),
  });
  const sha = await world.app.commit(`version ${n}`);
  await world.publish();
  return sha;
}

async function deployVersion(world: World, n: number, command?: string[]) {
  await commitVersion(world, n, command);
  return runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
}

async function state(root: string) {
  const s = await status({root});
  return {current: s.current?.id, states: Object.fromEntries(s.releases.map(r => [r.id, r.state]))};
}

test('a SIGKILLed deploy never becomes current; the next run takes over its lock and marks it failed [R1] [R11]', async t => {
  const world = await makeWorld(t);
  const first = await deployVersion(world, 1);
  await commitVersion(world, 2, ['sleep', '30']);
  const child = spawn(process.execPath, [deployBin, '--rev', 'main', '--root', world.root], {
    stdio: 'ignore',
  });
  const releases = path.join(world.root, 'releases');
  const scratch = path.join(world.root, '.scratch');
  await waitFor(
    t,
    'the install to start',
    async () =>
      (await fsp.readdir(releases)).length === 2 &&
      (await fsp.readdir(scratch).catch(() => [])).length > 0,
  );
  child.kill('SIGKILL');
  await new Promise(resolve => child.once('exit', resolve));

  t.is(await fsp.readlink(path.join(world.root, 'current')), `releases/${first.releaseId}`);
  const lock = await readLock(world.root);
  t.is(lock.state, 'dead', 'the killed run left its lock; its owner is gone');
  t.is(lock.owner?.pid, child.pid);

  t.true(
    (await fsp.readdir(scratch)).some(name => name.startsWith('repodeploy-cmd-')),
    'the killed installer left its scratch directory',
  );

  await commitVersion(world, 3);
  const third = await runDeploy({root: world.root, rev: 'main'});
  t.deepEqual(
    await fsp.readdir(scratch).catch(() => []),
    [],
    "the next run removed the killed installer's scratch",
  );
  const after = await state(world.root);
  t.is(after.current, third.releaseId);
  const killed =
    Object.keys(after.states).find(id => id !== first.releaseId && id !== third.releaseId) ?? '';
  t.is(after.states[killed], 'failed');
  t.regex(
    (await status({root: world.root})).releases.find(r => r.id === killed)?.error ?? '',
    /interrupted/,
  );
  t.is((await readLock(world.root)).state, 'free', 'lock released after the run');
});

/** Whether `pid` runs (not gone, not a zombie waiting to be reaped). */
async function alive(pid: number): Promise<boolean> {
  const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  return stat !== '' && state !== 'Z' && state !== 'X';
}

test('a SIGKILLed deploy leaves its installer running; the next run stops it, and what it started, before cleaning up [R1]', async t => {
  const world = await makeWorld(t);
  await deployVersion(world, 1);
  const pids = path.join(world.dir, 'pids');
  await fsp.mkdir(pids);
  // The installer starts a process of its own that writes into the release a while later.
  await commitVersion(world, 2, [
    'sh',
    '-c',
    `(sleep 3; echo late > late.txt; exec sleep 60) & echo $! > "${pids}/grandchild"; echo $$ > "${pids}/installer"; exec sleep 60`,
  ]);
  const child = spawn(process.execPath, [deployBin, '--rev', 'main', '--root', world.root], {
    stdio: 'ignore',
  });
  const read = (name: string) =>
    fsp.readFile(path.join(pids, name), 'utf8').then(
      text => Number(text.trim()),
      () => 0,
    );
  await waitFor(t, 'the installer to start', async () => (await read('installer')) > 0);
  await waitFor(t, 'its own process to start', async () => (await read('grandchild')) > 0);
  child.kill('SIGKILL');
  await new Promise(resolve => child.once('exit', resolve));
  const installer = await read('installer');
  const grandchild = await read('grandchild');
  t.true(await alive(installer), 'SIGKILL of the deploy left its installer running');
  t.teardown(() => {
    for (const pid of [installer, grandchild]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone, as it should be.
      }
    }
  });
  const killed = (await fsp.readdir(path.join(world.root, 'releases'))).sort().at(-1) ?? '';

  await commitVersion(world, 3);
  const third = await runDeploy({root: world.root, rev: 'main'});
  t.false(await alive(installer), 'the next run stopped the installer');
  t.false(await alive(grandchild), 'and the process it started');
  await new Promise(resolve => setTimeout(resolve, 3500));
  await t.throwsAsync(
    fsp.access(path.join(world.root, 'releases', killed, 'late.txt')),
    undefined,
    'nothing wrote into the interrupted release after it was cleaned up',
  );
  const after = await state(world.root);
  t.is(after.current, third.releaseId);
  t.is(after.states[killed], 'failed');
});

test('concurrent deploys: exactly one proceeds, the others name the holder and leave its lock alone [R9] [R12]', async t => {
  const world = await makeWorld(t);
  await deployVersion(world, 1);
  await commitVersion(world, 2, ['sleep', '2']);
  const runs = await Promise.all(
    Array.from({length: 4}, () => runDeployBin(['--rev', 'main', '--root', world.root])),
  );
  const winners = runs.filter(r => r.code === 0);
  const losers = runs.filter(r => r.code !== 0);
  t.is(winners.length, 1, runs.map(r => r.stderr).join('\n---\n'));
  t.is(losers.length, 3);
  for (const loser of losers) {
    t.is(loser.code, ExitCode.lock);
    t.regex(loser.stderr, /is locked by deploy --rev main \(pid \d+ on .+, user .+, since .+\)/);
  }
  t.is((await readLock(world.root)).state, 'free');
  const history = await readHistory(world.root);
  t.is(history.filter(h => h.error?.code === 'ELOCKED').length, 3);
});

test('lock: a live owner is never robbed; the loser does not remove it; unlock removes only a dead one [R11] [R12]', async t => {
  const root = await tempDir(t);
  const lock = await acquireLock(root, {user: 'a', command: 'deploy --rev x'});
  const error = await t.throwsAsync(acquireLock(root, {user: 'b', command: 'deploy prune'}), {
    instanceOf: LockError,
  });
  t.regex(error.message, new RegExp(`locked by deploy --rev x \\(pid ${process.pid}`));
  t.is((await readLock(root)).owner?.token, lock.owner.token, 'still held by the first');
  await t.throwsAsync(breakLock(root, false), {
    instanceOf: LockError,
    message: /still running; not removed/,
  });
  await lock.release();
  t.is((await readLock(root)).state, 'free');

  // A run whose lock an operator broke by force, and that a second run then took, may still
  // finish: its release must not remove the second run's lock (Deployer PR #958).
  const first = await acquireLock(root, {user: 'a', command: 'deploy --rev y'});
  await breakLock(root, true);
  const second = await acquireLock(root, {user: 'b', command: 'deploy --rev z'});
  await first.release();
  t.is((await readLock(root)).owner?.token, second.owner.token, 'the second lock stays');
  await second.release();
  t.is((await readLock(root)).state, 'free');

  // A lock left by a process that has exited is stale: unlock removes it.
  const gone = spawn(process.execPath, ['-e', '']);
  await new Promise(resolve => gone.once('exit', resolve));
  await fsp.mkdir(path.join(root, '.lock'));
  await fsp.writeFile(
    path.join(root, '.lock', 'owner.json'),
    JSON.stringify({
      pid: gone.pid,
      pidStart: '1',
      ...processScope(),
      host: (await import('node:os')).hostname(),
      user: 'x',
      command: 'deploy',
      startedAt: '',
      token: 't',
    }),
  );
  t.is((await readLock(root)).state, 'dead');
  const removed = await breakLock(root, false);
  t.is(removed.owner?.pid, gone.pid);
  t.is((await readLock(root)).state, 'free');
});

test('rollback skips failed and bad releases and records why [R5]', async t => {
  const world = await makeWorld(t);
  const r1 = await deployVersion(world, 1);
  const r2 = await deployVersion(world, 2);
  await t.throwsAsync(deployVersion(world, 3, ['false']), {instanceOf: InstallError});
  const r4 = await deployVersion(world, 4);
  t.is((await state(world.root)).current, r4.releaseId);

  const back = await rollback({root: world.root, reason: 'errors in the logs'}, testDeps());
  t.deepEqual(
    [back.from, back.to],
    [r4.releaseId, r2.releaseId],
    'the failed release 3 is skipped',
  );
  let s = await state(world.root);
  t.is(s.current, r2.releaseId);
  t.is(s.states[r4.releaseId], 'bad');

  const again = await rollback({root: world.root}, testDeps());
  t.is(again.to, r1.releaseId);
  s = await state(world.root);
  t.is(s.states[r2.releaseId], 'bad');

  await t.throwsAsync(rollback({root: world.root, to: r4.releaseId}, testDeps()), {
    instanceOf: ConfigError,
    message: /is bad/,
  });
  const pruned = await t.throwsAsync(rollback({root: world.root, to: 'deadbeef'}, testDeps()), {
    instanceOf: ConfigError,
  });
  t.regex(pruned.message, /No release deadbeef on this node \(it may have been pruned\)/);
  t.regex(pruned.hint ?? '', /deploy --rev deadbeef/);
  await t.throwsAsync(rollback({root: world.root}, testDeps()), {
    message: /No earlier release that was live and good/,
  });

  const history = await readHistory(world.root);
  t.like(history.filter(h => h.command === 'rollback' && h.outcome === 'success')[0], {
    releaseId: r2.releaseId,
    previousReleaseId: r4.releaseId,
    reason: 'errors in the logs',
  });
});

test('rollback --to a rev, and --dry-run changes nothing', async t => {
  const world = await makeWorld(t);
  const r1 = await deployVersion(world, 1);
  await deployVersion(world, 2);
  const before = await fingerprint(world.root);
  const plan = await rollback(
    {root: world.root, to: r1.app.sha.slice(0, 8), dryRun: true},
    testDeps(),
  );
  t.is(plan.to, r1.releaseId);
  t.deepEqual(await fingerprint(world.root), before);
  const run = await runDeployBin([
    'rollback',
    '--to',
    r1.app.sha.slice(0, 8),
    '--root',
    world.root,
    '--json',
  ]);
  t.is(run.code, 0, run.stderr);
  t.like(JSON.parse(run.stdout), {ok: true, to: r1.releaseId});
  t.is((await state(world.root)).current, r1.releaseId);
});

test('prune after many failed deploys keeps current, the last good release and a little evidence [R6]', async t => {
  const world = await makeWorld(t);
  await fsp.mkdir(world.root, {recursive: true});
  await writeNodeSettings(world.root, {format: 1, keepReleases: 2, keepFailed: 1});
  const r1 = await deployVersion(world, 1);
  const r2 = await deployVersion(world, 2);
  const failed: string[] = [];
  for (let n = 3; n <= 6; n++) {
    await t.throwsAsync(deployVersion(world, n, ['false']));
    const s = await status({root: world.root});
    failed.push(s.releases.at(-1)?.id ?? '');
  }
  const before = await fingerprint(world.root);
  const plan = await prune({root: world.root, dryRun: true}, testDeps());
  t.deepEqual(await fingerprint(world.root), before, '--dry-run changes nothing');
  t.deepEqual(
    plan.removed.sort(),
    failed.slice(0, 3).sort(),
    'the oldest failed releases go first',
  );

  const result = await prune({root: world.root}, testDeps());
  t.deepEqual(result.removed.sort(), failed.slice(0, 3).sort());
  const s = await state(world.root);
  t.is(s.current, r2.releaseId);
  t.truthy(s.states[r1.releaseId], 'the last good release survives');
  t.is(s.states[failed[3] ?? ''], 'failed', 'the newest failure is kept as evidence');

  // Good releases beyond keepReleases go after each deploy, oldest first; current always stays.
  const r7 = await deployVersion(world, 7);
  const r8 = await deployVersion(world, 8);
  const final = await state(world.root);
  t.is(final.current, r8.releaseId);
  t.deepEqual(
    Object.keys(final.states)
      .filter(id => final.states[id] !== 'failed')
      .sort(),
    [r2.releaseId, r7.releaseId, r8.releaseId].sort(),
  );
  t.like(r8, {pruned: [r1.releaseId]});
});

test('deploy releases lists states, shas and reasons', async t => {
  const world = await makeWorld(t);
  await deployVersion(world, 1);
  await t.throwsAsync(deployVersion(world, 2, ['false']));
  const run = await runDeployBin(['releases', '--root', world.root]);
  t.is(run.code, 0);
  const lines = run.stdout.trim().split('\n');
  t.is(lines.length, 2);
  t.regex(lines[0] ?? '', /^\* \S+\s+live\s+app [0-9a-f]{12}/);
  t.regex(lines[1] ?? '', /^ {2}\S+\s+failed\s+app [0-9a-f]{12}.*\(install command "false" failed/);
  const json = await runDeployBin(['releases', '--root', world.root, '--json']);
  t.is((JSON.parse(json.stdout) as {releases: unknown[]}).releases.length, 2);
});

test('Ctrl-C (SIGINT) stops the install, marks the release failed, releases the lock and exits 130 [R1] [R40]', async t => {
  const world = await makeWorld(t);
  const first = await deployVersion(world, 1);
  await commitVersion(world, 2, ['sleep', '5']);
  const child = spawn(process.execPath, [deployBin, '--rev', 'main', '--root', world.root], {
    stdio: 'ignore',
  });
  await waitFor(
    t,
    'the install to start',
    async () =>
      (await fsp.readdir(path.join(world.root, 'releases'))).length === 2 &&
      (await readLock(world.root)).state === 'live',
  );
  child.kill('SIGINT');
  const code = await new Promise<number | null>(resolve => {
    child.once('exit', exitCode => {
      resolve(exitCode);
    });
  });
  t.is(code, ExitCode.sigint, 'the process exits 128 + 2, as a shell reports an interrupted one');
  t.is((await readLock(world.root)).state, 'free', 'the lock was released on the way out');
  t.is(
    (await state(world.root)).states[(await status({root: world.root})).releases.at(-1)?.id ?? ''],
    'failed',
  );
  t.is(await fsp.readlink(path.join(world.root, 'current')), `releases/${first.releaseId}`);
  await commitVersion(world, 3);
  await runDeploy({root: world.root, rev: 'main'});
  const after = await state(world.root);
  t.is(Object.values(after.states).filter(s => s === 'failed').length, 1);
});

test('a recorded installer is stopped only if it is the same process (its pid may have been reused since)', async t => {
  const dir = await tempDir(t);
  const sleeper = spawn('sleep', ['30'], {stdio: 'ignore'});
  t.teardown(() => sleeper.kill('SIGKILL'));
  const pid = sleeper.pid ?? 0;
  const file = path.join(dir, 'install.log.running');
  await fsp.writeFile(file, JSON.stringify({pid, start: '1', command: 'not this one'}));
  t.deepEqual(await stopRecordedChild(file), []);
  t.true(await alive(pid), 'another process with the same pid is left alone');
  await t.throwsAsync(fsp.access(file), undefined, 'the stale record is removed');

  const exited = new Promise(resolve => sleeper.once('exit', resolve));
  recordChild(file, pid, 'sleep');
  t.deepEqual(await stopRecordedChild(file), ['sleep']);
  await exited;
  t.false(await alive(pid));
  t.deepEqual(await stopRecordedChild(file), [], 'no record, nothing to do');
});
