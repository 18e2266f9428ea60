import {execFile, spawn} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {promises as fsp} from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {
  ConfigError,
  ExitCode,
  IntegrityError,
  LockError,
  SourceError,
} from '../lib/support/errors.js';
import {createHttpClient} from '../lib/http/client.js';
import {acquireLock, readLock} from '../lib/node/lock.js';
import {ReleaseStore} from '../lib/node/release-store.js';
import {status} from '../lib/node/status.js';
import {recordFigure, STRESS} from './helpers/figures.js';
import {listenLocal, waitFor} from './helpers/http.js';
import {smallFileSystem, tempDir} from './helpers/tmp.js';
import {fingerprint} from './helpers/tree.js';
import {
  deployBin,
  makeWorld,
  releaseMeta,
  runDeploy,
  runDeployBin,
  writeSampleApp,
  type World,
} from './helpers/world.js';

test('[R2] a reader stat()ing current/... through many switches and rollbacks never misses', async t => {
  const root = await tempDir(t);
  const store = new ReleaseStore(root);
  for (const id of ['r1', 'r2']) {
    await store.create(releaseMeta(id));
    await fsp.writeFile(path.join(store.dir(id), 'version.txt'), `${id}\n`);
  }
  await store.switchTo('r1');
  // A separate process reads as fast as it can until told to stop, counting misses.
  const reader = spawn(
    process.execPath,
    [
      '-e',
      `const fs = require('fs'); let reads = 0, misses = 0; const file = ${JSON.stringify(path.join(root, 'current', 'version.txt'))};
       process.on('message', () => { process.send({reads, misses}); process.exit(0); });
       (function loop() { for (let i = 0; i < 200; i++) { try { fs.statSync(file); reads++; } catch { misses++; } } setImmediate(loop); })();`,
    ],
    {stdio: ['ignore', 'ignore', 'inherit', 'ipc']},
  );
  const switches = STRESS ? 1000 : 200;
  for (let i = 0; i < switches; i++) await store.switchTo(i % 2 === 0 ? 'r2' : 'r1');
  const counts = await new Promise<{reads: number; misses: number}>(resolve => {
    reader.once('message', message => {
      resolve(message as {reads: number; misses: number});
    });
    reader.send('stop');
  });
  t.true(counts.reads > switches, `the reader really read (${counts.reads} reads)`);
  t.is(counts.misses, 0);
  await recordFigure('R2', 'switches', switches);
  await recordFigure('R2', 'reads', counts.reads);
  await recordFigure('R2', 'misses', counts.misses);
});

test('[R4] a dangling current link is refused, not replaced', async t => {
  const world = await makeWorld(t);
  await writeSampleApp(world.app);
  await world.app.commit('v1');
  await world.publish();
  await fsp.mkdir(path.join(world.root, 'releases'), {recursive: true});
  await fsp.symlink('releases/gone', path.join(world.root, 'current'));
  await t.throwsAsync(runDeploy({root: world.root, rev: 'main', repo: world.appUrl}), {
    instanceOf: ConfigError,
    message: /points at releases\/gone, which does not exist/,
  });
  t.is(await fsp.readlink(path.join(world.root, 'current')), 'releases/gone');
});

test('[R10] deploy, rollback and prune at once are serialized: each runs whole or names the holder', async t => {
  const world = await makeWorld(t);
  const commit = async (n: number, command: string[]) => {
    await world.app.write({
      'version.txt': `${n}\n`,
      'deploy.json': JSON.stringify({install: {command}}),
    });
    await world.app.commit(`v${n}`);
    await world.publish();
  };
  await commit(1, ['true']);
  await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  await commit(2, ['true']);
  await runDeploy({root: world.root, rev: 'main'});
  await commit(3, ['sleep', '1']);
  const rounds = STRESS ? 20 : 3;
  for (let round = 0; round < rounds; round++) {
    const runs = await Promise.all([
      // --force: every round builds a release, also once main is live.
      runDeployBin(['--rev', 'main', '--root', world.root, '--force']),
      runDeployBin(['rollback', '--root', world.root]),
      runDeployBin(['prune', '--root', world.root, '--keep', '2']),
    ]);
    for (const run of runs)
      t.true(
        run.code === 0 || run.code === ExitCode.lock || run.code === ExitCode.config,
        run.stderr,
      );
    // Losers exit 7 only while another run holds the lock; the holder succeeds, or fails for its
    // own reason (a rollback with nothing left to roll back to exits 3).
    t.true(
      runs.some(r => r.code !== ExitCode.lock),
      'something got the lock',
    );
    for (const run of runs.filter(r => r.code === ExitCode.lock))
      t.regex(run.stderr, /is locked by deploy/);
    const s = await status({root: world.root});
    t.is(s.current?.state, 'live', 'current always points at a complete, live release');
    t.is((await readLock(world.root)).state, 'free');
  }
  await recordFigure('R10', 'rounds of three racing commands', rounds);

  // Deterministically: while a deploy is held between its write and its install, rollback and
  // prune are refused, naming it; once it has finished, both run.
  await commit(4, ['true']);
  const held = spawn(process.execPath, [deployBin, '--rev', 'main', '--root', world.root], {
    stdio: 'ignore',
    env: {...process.env, REPODEPLOY_PAUSE_AT: 'after-write'},
  });
  const done = new Promise(resolve => held.once('exit', resolve));
  const marker = path.join(world.root, '.paused-after-write');
  await waitFor(t, 'the deploy to pause', () =>
    fsp.access(marker).then(
      () => true,
      () => false,
    ),
  );
  for (const args of [['rollback'], ['prune', '--keep', '1']]) {
    const run = await runDeployBin([...args, '--root', world.root]);
    t.is(run.code, ExitCode.lock, run.stderr);
    t.regex(run.stderr, /is locked by deploy --rev main/);
  }
  await fsp.rm(marker);
  t.is(await done, 0);
  t.is((await runDeployBin(['prune', '--keep', '1', '--root', world.root])).code, 0);
});

test('[R14] a symlink to outside, then files under its name in the next commit: nothing is written outside', async t => {
  const world = await makeWorld(t);
  const outside = await tempDir(t, 'repodeploy-outside-');
  await world.app.write({'README.md': 'x\n', lib: {symlink: outside}});
  await world.app.commit('lib is a symlink out');
  await world.publish();
  await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  await world.app.git('rm', '-q', 'lib');
  await world.app.write({'lib/x.js': 'escaped?\n', 'lib/sub/y.js': 'escaped?\n'});
  await world.app.commit('lib is now a directory');
  await world.publish();
  await runDeploy({root: world.root, rev: 'main'});
  t.deepEqual(await fsp.readdir(outside), [], 'nothing written through the old symlink');
  t.is(await fsp.readFile(path.join(world.root, 'current', 'lib', 'x.js'), 'utf8'), 'escaped?\n');
});

test('[R16] a tree with a name twice (file and directory of the same name) is refused', async t => {
  const world = await makeWorld(t);
  await writeSampleApp(world.app);
  await world.app.commit('good');
  const blob = await world.app.git('hash-object', '-w', path.join(world.app.dir, 'README.md'));
  const sub = await mktree(world, `100644 blob ${blob}\tinner\n`);
  // Entries are raw: mode SP name NUL 20-byte id. Built by hand, as git's own tools refuse to.
  const entry = (mode: string, name: string, oid: string) =>
    Buffer.concat([Buffer.from(`${mode} ${name}\0`), Buffer.from(oid, 'hex')]);
  const raw = Buffer.concat([entry('100644', 'config', blob), entry('40000', 'config', sub)]);
  const rawFile = path.join(world.dir, 'tree.raw');
  await fsp.writeFile(rawFile, raw);
  const tree = await world.app.git('hash-object', '-w', '-t', 'tree', '--literally', rawFile);
  const commit = await world.app.git('commit-tree', tree, '-m', 'duplicate names');
  await world.app.git('update-ref', 'refs/heads/dup', commit);
  await world.publish();
  const error = await t.throwsAsync(runDeploy({root: world.root, rev: 'dup', repo: world.appUrl}), {
    instanceOf: IntegrityError,
  });
  t.regex(error.message, /the name "config" appears twice/);
  await t.throwsAsync(fsp.access(path.join(world.root, 'releases')));
});

async function mktree(world: World, spec: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('git', ['mktree'], {cwd: world.app.dir}, (error, stdout) => {
      if (error) reject(new Error(`git mktree failed: ${error.message}`));
      else resolve(stdout.trim());
    });
    child.stdin?.end(spec);
  });
}

async function twoServers(t: ExecutionContext) {
  const seen: Array<{server: string; authorization: string | undefined}> = [];
  const b = http.createServer((req, res) => {
    seen.push({server: 'b', authorization: req.headers.authorization});
    res.writeHead(200, {'content-type': 'text/plain'}).end('ok');
  });
  const bUrl = await listenLocal(t, b);
  const a = http.createServer((req, res) => {
    seen.push({server: 'a', authorization: req.headers.authorization});
    res.writeHead(302, {location: `${bUrl}/moved`}).end();
  });
  return {aUrl: await listenLocal(t, a), seen};
}

test('[R28] the git HTTP client drops credentials on a redirect to another origin', async t => {
  const {aUrl, seen} = await twoServers(t);
  const client = createHttpClient();
  const res = await client.request({
    url: `${aUrl}/repo.git/info/refs`,
    method: 'GET',
    headers: {authorization: 'Basic c2VjcmV0'},
  });
  t.is(res.statusCode, 200);
  t.deepEqual(seen, [
    {server: 'a', authorization: 'Basic c2VjcmV0'},
    {server: 'b', authorization: undefined},
  ]);
});

test('[R29] refused credentials are tried once, not in a loop', async t => {
  const world = await makeWorld(t, {auth: {username: 'u', password: 'right-password'}});
  await writeSampleApp(world.app);
  await world.app.commit('v1');
  await world.publish();
  const error = await t.throwsAsync(
    runDeploy(
      {root: world.root, rev: 'main', repo: world.appUrl},
      {env: {DEPLOY_GIT_USERNAME: 'u', DEPLOY_GIT_TOKEN: 'wrong-password'}},
    ),
    {instanceOf: SourceError},
  );
  t.regex(error.message, /authentication required|refused access/);
  const denied = world.server.requests.filter(r => r.status === 401).length;
  t.true(denied >= 1 && denied <= 2, `${denied} refused requests`);
});

async function oneCommitWorld(t: ExecutionContext, serverOptions: Parameters<typeof makeWorld>[1]) {
  const world = await makeWorld(t, serverOptions);
  await writeSampleApp(world.app);
  // Enough content for a pack of a few hundred KiB, so a cut lands mid-pack.
  const noise = randomBytes(300 * 1024);
  await world.app.write({'assets/blob.bin': {content: noise}});
  await world.app.commit('v1');
  await world.publish();
  return world;
}

async function packFiles(root: string): Promise<string[]> {
  try {
    return await fsp.readdir(path.join(root, 'repos', 'app.git', 'objects', 'pack'));
  } catch {
    return [];
  }
}

test('[R30] a connection cut mid-pack leaves no pack, no release, and current as it was', async t => {
  const world = await oneCommitWorld(t, {truncateUploadPackAt: 20_000});
  const error = await t.throwsAsync(
    runDeploy({root: world.root, rev: 'main', repo: world.appUrl}),
    {instanceOf: SourceError},
  );
  t.regex(error.message, /Could not fetch from/);
  t.deepEqual(await packFiles(world.root), [], 'no partial pack or index kept');
  await t.throwsAsync(fsp.access(path.join(world.root, 'releases')));
  await t.throwsAsync(fsp.access(path.join(world.root, 'current')));
});

test('[R31] a git server that stalls after the headers times out', async t => {
  const world = await oneCommitWorld(t, {stallUploadPack: true});
  const started = Date.now();
  const error = await t.throwsAsync(
    runDeploy(
      {root: world.root, rev: 'main', repo: world.appUrl},
      {http: createHttpClient({idleTimeoutMs: 800})},
    ),
    {instanceOf: SourceError},
  );
  t.regex(error.message, /sent nothing for 800 ms/);
  t.true(Date.now() - started < 20_000);
  t.deepEqual(await packFiles(world.root), []);
});

test('[R32] a git server answering 503 gives a clear error and changes nothing', async t => {
  const world = await makeWorld(t, {
    intercept: (_req, res) => {
      res.writeHead(503, {'retry-after': '1'}).end('down for maintenance');
      return true;
    },
  });
  await writeSampleApp(world.app);
  await world.app.commit('v1');
  await world.publish();
  const error = await t.throwsAsync(
    runDeploy({root: world.root, rev: 'main', repo: world.appUrl}),
    {instanceOf: SourceError},
  );
  t.regex(error.message, /HTTP 503/);
  await t.throwsAsync(fsp.access(path.join(world.root, 'releases')));
});

test('[R33] ENOSPC during a fetch (a 3 MiB file system): current and every release stay as they were', async t => {
  const world = await makeWorld(t);
  const mountPoint = await smallFileSystem(t, 'size=3m');
  if (!mountPoint) return;
  const root = path.join(mountPoint, 'node');
  await writeSampleApp(world.app);
  await world.app.commit('small');
  await world.publish();
  const first = await runDeploy({root, rev: 'main', repo: world.appUrl});
  const before = await fingerprint(path.join(root, 'releases'));
  const big = randomBytes(4 * 1024 * 1024);
  await world.app.write({'data/big.bin': {content: big}});
  await world.app.commit('too big for the disk');
  await world.publish();
  const error = await t.throwsAsync(runDeploy({root, rev: 'main'}));
  const cause = (error as {cause?: unknown}).cause;
  t.regex(`${error.message} ${cause instanceof Error ? cause.message : ''}`, /ENOSPC|no space/i);
  t.is(await fsp.readlink(path.join(root, 'current')), `releases/${first.releaseId}`);
  t.deepEqual(await fingerprint(path.join(root, 'releases')), before);
  t.is((await readLock(root)).state, 'free');
  const leftovers = (await packFiles(root)).filter(
    f => !f.endsWith('.pack') && !f.endsWith('.idx'),
  );
  t.deepEqual(leftovers, [], 'no temporary files left in the store');
});

test('[R9] lock races: contenders released together, exactly one wins every round (in one process and across processes)', async t => {
  const root = await tempDir(t);
  const rounds = STRESS ? 1000 : 100;
  for (let round = 0; round < rounds; round++) {
    const results = await Promise.allSettled(
      Array.from({length: 10}, (_, i) =>
        acquireLock(root, {user: `u${i}`, command: `race ${round}`}),
      ),
    );
    const winners = results.filter(r => r.status === 'fulfilled');
    t.is(winners.length, 1, `round ${round}`);
    for (const loser of results.filter(r => r.status === 'rejected')) {
      t.true(loser.reason instanceof LockError);
    }
    await (
      winners[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLock>>>
    ).value.release();
  }
  await recordFigure('R9', 'in-process rounds of 10 contenders', rounds);

  // Across processes: each waits for the same start time, then tries once.
  const processRounds = STRESS ? 50 : 3;
  const lockModule = new URL('../lib/node/lock.js', import.meta.url).href;
  for (let round = 0; round < processRounds; round++) {
    // Late enough that every process is up and waiting. The winner holds the lock until the
    // others have exited (or 20 s passed, if more than one won), so none can come late and win
    // a lock already released, however slow the machine.
    const start = Date.now() + 1500;
    const released = `${root}.release-${round}`;
    let exited = 0;
    const fallback = setTimeout(() => void fsp.writeFile(released, ''), 20_000);
    const runs = await Promise.all(
      Array.from(
        {length: 4},
        (_, i) =>
          new Promise<string>(resolve => {
            const child = execFile(
              process.execPath,
              [
                '--input-type=module',
                '-e',
                `const {acquireLock} = await import(${JSON.stringify(lockModule)});
                 const {existsSync} = await import('node:fs');
                 while (Date.now() < ${start}) {}
                 try { const lock = await acquireLock(${JSON.stringify(root)}, {user: 'p${i}', command: 'race'});
                   console.log('won');
                   while (!existsSync(${JSON.stringify(released)})) await new Promise(r => setTimeout(r, 20));
                   await lock.release(); }
                 catch (e) { console.log(e.code); }`,
              ],
              (_error, stdout) => {
                if (++exited === 3) void fsp.writeFile(released, '');
                resolve(stdout.trim());
              },
            );
            child.stdin?.end();
          }),
      ),
    );
    clearTimeout(fallback);
    await fsp.rm(released, {force: true});
    t.is(runs.filter(r => r === 'won').length, 1, `process round ${round}: ${runs.join(', ')}`);
    t.is(runs.filter(r => r === 'ELOCKED').length, 3);
  }
  await recordFigure('R9', 'cross-process rounds of 4 contenders', processRounds);
  t.is((await readLock(root)).state, 'free');
});
