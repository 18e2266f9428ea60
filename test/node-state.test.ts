import {spawn} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import {ExitCode} from '../lib/support/errors.js';
import {readHistoryReport} from '../lib/node/history.js';
import {rollback} from '../lib/node/lifecycle.js';
import {readLock, type LockOwner} from '../lib/node/lock.js';
import {writeNodeSettings} from '../lib/node/settings.js';
import {processScope} from '../lib/node/processes.js';
import {status} from '../lib/node/status.js';
import {waitFor} from './helpers/http.js';
import {
  commitRelease,
  deployBin,
  makeWorld,
  runDeploy,
  runDeployBin,
  testDeps,
  type World,
} from './helpers/world.js';

/** Commit version `n` of an app whose install runs `command`, and deploy it. */
async function deployVersion(world: World, n: number, command: string[] = ['true']) {
  await commitRelease(world, n, {install: {command}});
  return runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
}

test('a history.jsonl ending in a cut line: the next record starts on its own line, the cut one is reported [R41]', async t => {
  const world = await makeWorld(t);
  const first = await deployVersion(world, 1);
  const file = path.join(world.root, 'history.jsonl');
  const whole = await fsp.readFile(file, 'utf8');
  // A power loss mid-append: half of a second record made it to disk, without its newline.
  const cut = '{"time":"2026-12-01T10:00:00.000Z","command":"deploy","user":"op","outc';
  await fsp.writeFile(file, whole + cut);

  const second = await deployVersion(world, 2);
  const lines = (await fsp.readFile(file, 'utf8')).split('\n');
  t.is(lines[1], cut, 'the cut line is left as it was');
  t.like(JSON.parse(lines[2] ?? ''), {outcome: 'success', releaseId: second.releaseId});

  const report = await readHistoryReport(world.root);
  t.deepEqual(
    report.records.map(r => r.releaseId),
    [first.releaseId, second.releaseId],
  );
  t.deepEqual(report.skippedLines, [2]);
  const s = await status({root: world.root});
  t.is(s.lastAttempt?.outcome, 'success');
  t.deepEqual(s.warnings, [
    'history.jsonl line 2 is cut short or not JSON (a crash mid-write?); skipped',
  ]);
  const run = await runDeployBin(['status', '--root', world.root]);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /warning {2}history\.jsonl line 2 is cut short/);
});

/** Start a real deploy as pid 1 of a pid namespace of its own (as in a container sharing the root). */
function deployInOwnPidNamespace(world: World, env: NodeJS.ProcessEnv) {
  const child = spawn(
    'unshare',
    [
      '--pid',
      '--fork',
      '--mount-proc',
      process.execPath,
      deployBin,
      '--rev',
      'main',
      '--root',
      world.root,
    ],
    {env: {PATH: process.env.PATH, ...env}, stdio: ['ignore', 'ignore', 'pipe']},
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{code: number | null; stderr: string}>(resolve => {
    child.once('exit', code => {
      resolve({code, stderr});
    });
  });
  return {child, exited};
}

test('a deploy holding the lock in another pid namespace is not robbed: the second deploy exits 7 naming it [R37]', async t => {
  const world = await makeWorld(t);
  const first = await deployVersion(world, 1);
  await commitRelease(world, 2, {install: {command: ['true']}});
  const inner = deployInOwnPidNamespace(world, {REPODEPLOY_PAUSE_AT: 'after-mkdir'});
  t.teardown(() => inner.child.kill('SIGKILL'));
  const marker = path.join(world.root, '.paused-after-mkdir');
  await waitFor(t, 'the deploy in its own pid namespace to hold the lock', async () =>
    fsp.access(marker).then(
      () => true,
      () => false,
    ),
  );
  const held = await readLock(world.root);
  t.is(held.state, 'unknown');
  t.is(held.owner?.pid, 1, 'the holder is pid 1 of its namespace: from here, that pid is init');

  const second = await runDeployBin(['--rev', 'main', '--root', world.root]);
  t.is(second.code, ExitCode.lock, second.stderr);
  t.regex(
    second.stderr,
    /is locked by deploy --rev main \(pid 1 on .+\), in another pid namespace \(a container\?\): cannot tell/,
  );
  t.regex(second.stderr, /deploy unlock --force/);
  const unlock = await runDeployBin(['unlock', '--root', world.root]);
  t.is(unlock.code, ExitCode.lock, 'unlock without --force leaves it too');

  await fsp.rm(marker);
  const done = await inner.exited;
  t.is(done.code, 0, done.stderr);
  const s = await status({root: world.root});
  t.deepEqual(
    s.releases.filter(r => r.state === 'live').map(r => r.id),
    [s.current?.id],
    'exactly one release is live',
  );
  t.deepEqual(
    s.releases.map(r => r.state),
    ['retired', 'live'],
    `${first.releaseId} and the inner deploy's release, nothing else`,
  );
  t.is((await readLock(world.root)).state, 'free');
});

/** A lock file as a run records it, with `change` applied, its process exited. */
async function writeDeadLock(root: string, change: Partial<LockOwner>): Promise<void> {
  const gone = spawn(process.execPath, ['-e', '']);
  await new Promise(resolve => gone.once('exit', resolve));
  const owner: LockOwner = {
    pid: gone.pid ?? 0,
    pidStart: '12345',
    ...processScope(),
    host: os.hostname(),
    user: 'deploy',
    command: 'deploy --rev main',
    startedAt: '2026-12-01T10:00:00.000Z',
    token: 'elsewhere',
    ...change,
  };
  await fsp.mkdir(path.join(root, '.lock'), {recursive: true});
  await fsp.writeFile(path.join(root, '.lock', 'owner.json'), JSON.stringify(owner));
}

for (const [what, change, why] of [
  [
    'another boot',
    {bootId: 'd5c5b2a4-0000-4000-8000-000000000000'},
    /recorded in another boot, or by another machine with the same host name/,
  ],
  ['another pid namespace', {pidNs: 'pid:[4026599999]'}, /in another pid namespace/],
  [
    'an older version (no boot id)',
    {bootId: undefined, pidNs: undefined},
    /recorded without a boot id/,
  ],
] as const) {
  test(`a lock recorded by ${what} with a pid that is dead here counts as held; unlock --force removes it [R37]`, async t => {
    const world = await makeWorld(t);
    await commitRelease(world, 1, {install: {command: ['true']}});
    await fsp.mkdir(world.root, {recursive: true});
    await writeDeadLock(world.root, change);
    const run = await runDeployBin(['--rev', 'main', '--root', world.root, '--repo', world.appUrl]);
    t.is(run.code, ExitCode.lock, run.stderr);
    t.regex(run.stderr, why);
    t.regex(run.stderr, /deploy --rev main \(pid \d+ on /);
    t.deepEqual(await fsp.readdir(world.root).then(names => names.includes('releases')), false);
    const unlock = await runDeployBin(['unlock', '--root', world.root]);
    t.is(unlock.code, ExitCode.lock);
    t.regex(unlock.stderr, why);
    const forced = await runDeployBin(['unlock', '--force', '--root', world.root]);
    t.is(forced.code, 0, forced.stderr);
    t.is((await readLock(world.root)).state, 'free');
    const after = await runDeployBin([
      '--rev',
      'main',
      '--root',
      world.root,
      '--repo',
      world.appUrl,
    ]);
    t.is(after.code, 0, after.stderr);
  });
}

/** Whether `pid` runs (not gone, not a zombie waiting to be reaped). */
async function alive(pid: number): Promise<boolean> {
  const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  return stat !== '' && state !== 'Z' && state !== 'X';
}

/** Every running process whose working directory is `dir` or below it, from /proc. */
async function processesIn(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cwd = await fsp.readlink(`/proc/${name}/cwd`).catch(() => '');
    if ((cwd === dir || cwd.startsWith(`${dir}/`)) && (await alive(Number(name))))
      found.push(Number(name));
  }
  return found;
}

/** Read the pid a test process wrote into `dir/name` (0 while it is not there yet). */
function readPid(dir: string, name: string): Promise<number> {
  return fsp.readFile(path.join(dir, name), 'utf8').then(
    text => Number(text.trim()) || 0,
    () => 0,
  );
}

for (const [signal, exitCode] of [
  ['SIGTERM', 143],
  ['SIGINT', 130],
] as const) {
  test(`${signal} mid-install stops the installer's whole group, marks the release failed, writes history, frees the lock, exits ${exitCode} [R40]`, async t => {
    const world = await makeWorld(t);
    const first = await deployVersion(world, 1);
    const pids = path.join(world.dir, 'pids');
    await fsp.mkdir(pids);
    // The installer starts a writer that ignores SIGTERM and SIGINT and writes into the release
    // later, and a plain `sleep`; then waits for them.
    const script = [
      `echo $$ > ${pids}/installer`,
      '(trap "" TERM INT; sleep 8; echo late > late.txt) &',
      `echo $! > ${pids}/writer`,
      'sleep 60 &',
      `echo $! > ${pids}/sleeper`,
      'wait',
    ].join('\n');
    await commitRelease(world, 2, {install: {command: ['sh', '-c', script]}});
    const child = spawn(process.execPath, [deployBin, '--rev', 'main', '--root', world.root], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const names = ['installer', 'writer', 'sleeper'];
    t.teardown(async () => {
      for (const name of names) {
        const pid = await readPid(pids, name);
        if (pid > 0 && (await alive(pid))) process.kill(pid, 'SIGKILL');
      }
    });
    await waitFor(t, 'the installer and its children to start', async () =>
      (await Promise.all(names.map(name => readPid(pids, name)))).every(pid => pid > 0),
    );
    const signalled = Date.now();
    child.kill(signal);
    const exit = await new Promise(resolve => {
      child.once('exit', (code, sig) => {
        resolve({code, sig});
      });
    });
    t.deepEqual(exit, {code: exitCode, sig: null}, stderr);
    t.regex(stderr, new RegExp(`error: interrupted by ${signal} during install command`));

    for (const name of names)
      t.false(await alive(await readPid(pids, name)), `the ${name} is stopped`);
    const s = await status({root: world.root});
    t.is(s.current?.id, first.releaseId, 'current is unchanged');
    const interrupted = s.releases.find(r => r.id !== first.releaseId);
    t.is(interrupted?.state, 'failed');
    t.regex(interrupted?.error ?? '', new RegExp(`interrupted by ${signal}`));
    const last = (await readHistoryReport(world.root)).records.at(-1);
    t.like(last, {outcome: 'failure', releaseId: interrupted?.id, error: {code: 'EINTERRUPTED'}});
    t.is((await readLock(world.root)).state, 'free');

    const releaseDir = path.join(world.root, 'releases', interrupted?.id ?? '');
    t.deepEqual(await processesIn(releaseDir), [], 'no process is left in the release');
    await new Promise(resolve => setTimeout(resolve, Math.max(0, signalled + 9500 - Date.now())));
    await t.throwsAsync(
      fsp.access(path.join(releaseDir, 'late.txt')),
      undefined,
      'nothing wrote into the release after the deploy ended',
    );
  });
}

test('a health check command that times out is stopped with every process it started [R40]', async t => {
  const world = await makeWorld(t);
  const first = await deployVersion(world, 1);
  const pids = path.join(world.dir, 'pids');
  await fsp.mkdir(pids);
  await commitRelease(world, 2, {
    install: {command: ['true']},
    healthcheck: {
      command: ['sh', '-c', `sleep 30 & echo $! > ${pids}/child; sleep 30`],
      timeout: 1,
    },
  });
  t.teardown(async () => {
    const pid = await readPid(pids, 'child');
    if (pid > 0 && (await alive(pid))) process.kill(pid, 'SIGKILL');
  });
  const run = await runDeployBin(['--rev', 'main', '--root', world.root]);
  t.is(run.code, ExitCode.healthcheck, run.stderr);
  t.regex(
    run.stderr,
    /health check \(sh -c .*\) failed \(timed out after 1 s; stopped with every process it started\)/,
  );
  const pid = await readPid(pids, 'child');
  t.true(pid > 0);
  t.false(await alive(pid), 'the sleep the health check started is gone too');
  t.is((await status({root: world.root})).current?.id, first.releaseId, 'switched back');
});

/** Rewrite a release's release.json through `change` (what another version might have written). */
async function rewriteMeta(
  root: string,
  id: string,
  change: (meta: Record<string, unknown>) => void,
) {
  const file = path.join(root, 'releases', id, '.repodeploy', 'release.json');
  const meta = JSON.parse(await fsp.readFile(file, 'utf8')) as Record<string, unknown>;
  change(meta);
  await fsp.writeFile(file, JSON.stringify(meta));
}

test('releases whose release.json cannot be read are kept and reported by prune, deploy and status; dirs without one go only when asked [R39]', async t => {
  const world = await makeWorld(t);
  const r1 = await deployVersion(world, 1);
  const r2 = await deployVersion(world, 2);
  await deployVersion(world, 3);
  await writeNodeSettings(world.root, {
    format: 1,
    repo: world.appUrl,
    keepReleases: 1,
    keepFailed: 0,
  });
  // A downgrade: a newer version wrote format 2; another state this version does not know.
  await rewriteMeta(world.root, r1.releaseId, meta => (meta.format = 2));
  await rewriteMeta(world.root, r2.releaseId, meta => (meta.state = 'standby'));
  const stray = path.join(world.root, 'releases', 'copied-by-hand');
  await fsp.mkdir(stray);
  await fsp.writeFile(path.join(stray, 'notes.txt'), 'mine\n');

  const pruned = await runDeployBin(['prune', '--root', world.root]);
  t.is(pruned.code, 0, pruned.stderr);
  t.regex(
    pruned.stdout,
    new RegExp(`kept ${r1.releaseId}: .*format 2 \\(written by a newer repodeploy\\?\\)`),
  );
  t.regex(
    pruned.stdout,
    new RegExp(`kept ${r2.releaseId}: .*state "standby", unknown to this version`),
  );
  t.regex(
    pruned.stdout,
    /kept copied-by-hand: no \.repodeploy\/release\.json \(--remove-unknown removes it\)/,
  );

  const r4 = await deployVersion(world, 4);
  const r5 = await deployVersion(world, 5);
  const after = await status({root: world.root});
  t.is(after.current?.id, r5.releaseId);
  t.deepEqual(
    after.releases.map(r => [r.id, r.state]).sort(),
    [
      [r1.releaseId, 'unknown'],
      [r2.releaseId, 'unknown'],
      ['copied-by-hand', 'unknown'],
      [r4.releaseId, 'retired'],
      [r5.releaseId, 'live'],
    ].sort(),
    "the deploy's prune removed the release it could read beyond keepReleases (3), nothing else",
  );
  t.regex(after.releases.find(r => r.id === r1.releaseId)?.error ?? '', /format 2/);
  t.true(after.warnings.some(w => w.startsWith(`releases/${r2.releaseId}: `)));
  const listing = await runDeployBin(['releases', '--root', world.root]);
  t.regex(listing.stdout, new RegExp(`${r2.releaseId}\\s+unknown .*state "standby"`));

  const removed = await runDeployBin(['prune', '--remove-unknown', '--root', world.root, '--json']);
  t.is(removed.code, 0, removed.stderr);
  t.like(JSON.parse(removed.stdout), {removed: ['copied-by-hand'], unknown: []});
  t.deepEqual(
    (await fsp.readdir(path.join(world.root, 'releases'))).sort(),
    [r1.releaseId, r2.releaseId, r4.releaseId, r5.releaseId].sort(),
    'the unreadable releases stay, whatever is asked',
  );
});

/** Deploy version `n` with the node's clock showing `when`. */
async function deployAt(world: World, n: number, when: string) {
  await commitRelease(world, n, {install: {command: ['true']}});
  const clock = () => new Date(when);
  return runDeploy({root: world.root, rev: 'main', repo: world.appUrl}, {clock});
}

test('rollback follows the order releases were live in, with the clock stepped back and forward [R38]', async t => {
  const world = await makeWorld(t);
  const r1 = await deployAt(world, 1, '2026-12-01T12:00:00Z');
  // The clock is stepped back a day: this release's id and times sort before the first one's.
  const r2 = await deployAt(world, 2, '2026-11-30T12:00:00Z');
  t.true(r2.releaseId < r1.releaseId);
  const back = await rollback({root: world.root}, testDeps());
  t.deepEqual([back.from, back.to], [r2.releaseId, r1.releaseId]);

  // Stepped forward a year, then back before everything.
  const r3 = await deployAt(world, 3, '2027-12-01T12:00:00Z');
  const r4 = await deployAt(world, 4, '2026-11-29T12:00:00Z');
  const again = await runDeployBin(['rollback', '--root', world.root, '--json']);
  t.is(again.code, 0, again.stderr);
  t.like(JSON.parse(again.stdout), {from: r4.releaseId, to: r3.releaseId});
  const third = await rollback({root: world.root}, testDeps());
  t.deepEqual([third.from, third.to], [r3.releaseId, r1.releaseId], 'then the one before it');
  await t.throwsAsync(rollback({root: world.root}, testDeps()), {
    message: /No earlier release that was live and good/,
  });
});

test('prune keeps the release live most recently, not the one with the latest clock time [R38]', async t => {
  const world = await makeWorld(t);
  await fsp.mkdir(world.root, {recursive: true});
  await writeNodeSettings(world.root, {format: 1, keepReleases: 1, keepFailed: 1});
  // The first deploy ran with the clock a year ahead; it was corrected before the next ones.
  const r1 = await deployAt(world, 1, '2027-12-01T12:00:00Z');
  const r2 = await deployAt(world, 2, '2026-12-01T12:00:00Z');
  const r3 = await deployAt(world, 3, '2026-12-02T12:00:00Z');
  t.deepEqual(r3.pruned, [r1.releaseId], 'the oldest live release goes, whatever its time says');
  const s = await status({root: world.root});
  t.deepEqual(
    s.releases.map(r => [r.id, r.state]),
    [
      [r2.releaseId, 'retired'],
      [r3.releaseId, 'live'],
    ],
    'listed in the order they were made',
  );
  t.is((await rollback({root: world.root}, testDeps())).to, r2.releaseId);
});
