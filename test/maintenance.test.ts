import {spawn} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {createInterface} from 'node:readline';
import test from 'ava';
import {ExitCode} from '../lib/support/errors.js';
import {maintenanceStatus} from '../lib/node/maintenance.js';
import {fingerprint} from './helpers/tree.js';
import {deployBin, makeWorld, runDeploy, runDeployBin, commitRelease} from './helpers/world.js';

test('maintenance on / status / off through the CLI', async t => {
  const world = await makeWorld(t);
  // The root a first deploy would have made: maintenance refuses one that does not exist.
  await fsp.mkdir(world.root, {recursive: true});
  const on = await runDeployBin([
    'maintenance',
    'on',
    '--root',
    world.root,
    '--reason',
    'db migration',
    '--json',
  ]);
  t.is(on.code, 0, on.stderr);
  t.like(JSON.parse(on.stdout), {
    on: true,
    reason: 'db migration',
    file: path.join(world.root, 'maintenance'),
  });
  const s = await runDeployBin(['maintenance', 'status', '--root', world.root]);
  t.regex(s.stdout, /^maintenance on since \d{4}-/);
  const off = await runDeployBin(['maintenance', 'off', '--root', world.root]);
  t.is(off.stdout, 'maintenance off\n');
  t.false((await maintenanceStatus(world.root)).on);
  const bad = await runDeployBin(['maintenance', 'sideways', '--root', world.root]);
  t.is(bad.code, ExitCode.usage);
});

test('the maintenance responder answers 503 with Retry-After, X-Weave-Backoff and a JSON body', async t => {
  const child = spawn(
    process.execPath,
    [deployBin, 'maintenance', 'serve', '--port', '0', '--backoff', '120'],
    {stdio: ['ignore', 'pipe', 'inherit']},
  );
  t.teardown(() => child.kill('SIGKILL'));
  const line = await new Promise<string>(resolve => {
    createInterface({input: child.stdout}).once('line', resolve);
  });
  const url = /on (http:\/\/\S+) /.exec(line)?.[1] ?? '';
  for (const p of ['/', '/api/storage/1.0/user', '/favicon.ico']) {
    const res = await fetch(new URL(p, url));
    t.is(res.status, 503);
    t.is(res.headers.get('retry-after'), '120');
    t.is(res.headers.get('x-weave-backoff'), '120');
    t.deepEqual(await res.json(), {status: 'maintenance', retry_after: 120});
  }
  child.kill('SIGTERM');
  const code = await new Promise(resolve => child.once('exit', resolve));
  t.is(code, 0, 'stops cleanly on SIGTERM');
});

test('deploy --maintenance: on during the deploy, off once the health check passes, left on when it fails', async t => {
  const world = await makeWorld(t);
  const flag = path.join(world.root, 'maintenance');
  const seen = path.join(world.dir, 'seen.txt');
  const config = (healthy: boolean) => ({
    hooks: {before_switch: ['sh', '-c', `test -f ${flag} && echo on >> ${seen}`]},
    healthcheck: {command: [healthy ? 'true' : 'false'], timeout: 5},
  });
  await commitRelease(world, 1, config(true));
  await runDeploy({root: world.root, rev: 'main', repo: world.appUrl, maintenance: true});
  t.is(await fsp.readFile(seen, 'utf8'), 'on\n', 'the flag was set while the deploy ran');
  t.false((await maintenanceStatus(world.root)).on, 'cleared after the health check passed');

  await commitRelease(world, 2, config(false));
  const run = await runDeployBin(['--rev', 'main', '--root', world.root, '--maintenance']);
  t.is(run.code, ExitCode.healthcheck);
  t.regex(run.stderr, /maintenance mode stays on/);
  t.true((await maintenanceStatus(world.root)).on);
});

test('deploy --dry-run prints the plan and leaves the root byte for byte as it was', async t => {
  const world = await makeWorld(t);
  await commitRelease(world, 1, {
    install: {command: ['true']},
    shared: ['var/'],
    hooks: {after_switch: ['true']},
  });
  const first = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  await commitRelease(world, 2, {install: {command: ['true']}, healthcheck: {command: ['true']}});
  const sha = await world.app.head();
  const before = await fingerprint(world.root);
  const run = await runDeployBin(['--rev', 'main', '--root', world.root, '--dry-run']);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, new RegExp(`app {5}${sha} \\(main\\)`));
  t.regex(
    run.stdout,
    new RegExp(
      `switch  current -> releases/\\d{8}T\\d{6}Z-${sha.slice(0, 7)} \\(now ${first.releaseId}\\)`,
    ),
  );
  t.regex(run.stdout, /health {2}true/);
  const json = await runDeployBin(['--rev', 'main', '--root', world.root, '--dry-run', '--json']);
  t.like(JSON.parse(json.stdout), {
    ok: true,
    dryRun: true,
    app: {sha},
    current: first.releaseId,
    install: 'true',
  });
  t.deepEqual(await fingerprint(world.root), before);
});
