import {promises as fsp} from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import test from 'ava';
import {listenLocal} from './helpers/http.js';
import {ConfigError, DeployError, ExitCode} from '../lib/support/errors.js';
import {HealthcheckError} from '../lib/support/errors.js';
import {status} from '../lib/node/status.js';
import {makeWorld, runDeploy, runDeployBin, commitRelease} from './helpers/world.js';

test('shared: a missing file fails before the switch naming the path; then it is linked into each release', async t => {
  const world = await makeWorld(t);
  await commitRelease(
    world,
    1,
    {shared: ['config/app.ini', 'var/uploads/']},
    {'config/app.ini': 'default from the repo\n'},
  );
  const error = await t.throwsAsync(
    runDeploy({root: world.root, rev: 'main', repo: world.appUrl}),
    {instanceOf: ConfigError},
  );
  const expected = path.join(world.root, 'shared', 'config', 'app.ini');
  t.is(error.message, `Shared file missing on this node: ${expected}.`);
  await t.throwsAsync(fsp.access(path.join(world.root, 'current')));

  await fsp.mkdir(path.dirname(expected), {recursive: true});
  await fsp.writeFile(expected, '[app]\nname = node one\n');
  const ok = await runDeploy({root: world.root, rev: 'main'});
  const current = path.join(world.root, 'current');
  t.is(await fsp.readlink(path.join(current, 'config/app.ini')), expected);
  t.is(
    await fsp.readFile(path.join(current, 'config/app.ini'), 'utf8'),
    '[app]\nname = node one\n',
  );
  t.is(
    await fsp.readlink(path.join(current, 'var/uploads')),
    path.join(world.root, 'shared', 'var', 'uploads'),
  );
  t.true((await fsp.stat(path.join(world.root, 'shared/var/uploads'))).isDirectory());
  t.truthy(ok.releaseId);
});

test('hooks run in order in the release with the release variables; a failing before_switch aborts', async t => {
  const world = await makeWorld(t);
  const log = path.join(world.dir, 'hooks.log');
  const hook = (name: string) => [
    'sh',
    '-c',
    `echo "${name} $RELEASE_DIR $APP_REV $VENDOR_REV prev=$PREVIOUS_RELEASE token=$DEPLOY_GIT_TOKEN" >> ${log}`,
  ];
  const hooks = {
    before_install: hook('before_install'),
    after_install: hook('after_install'),
    before_switch: hook('before_switch'),
    after_switch: hook('after_switch'),
  };
  await commitRelease(world, 1, {hooks});
  const first = await runDeploy(
    {root: world.root, rev: 'main', repo: world.appUrl},
    {env: {PATH: process.env.PATH, DEPLOY_GIT_TOKEN: 'tok-hook-secret'}},
  );
  await commitRelease(world, 2, {hooks});
  const second = await runDeploy({root: world.root, rev: 'main'});
  const lines = (await fsp.readFile(log, 'utf8')).trim().split('\n');
  t.deepEqual(
    lines.map(l => l.split(' ')[0]),
    [
      'before_install',
      'after_install',
      'before_switch',
      'after_switch',
      'before_install',
      'after_install',
      'before_switch',
      'after_switch',
    ],
  );
  t.is(lines[0], `before_install ${first.releaseDir} ${first.app.sha}  prev= token=`);
  t.is(
    lines[7],
    `after_switch ${second.releaseDir} ${second.app.sha}  prev=${first.releaseDir} token=`,
  );

  await commitRelease(world, 3, {
    hooks: {before_switch: ['sh', '-c', 'echo not ready >&2; exit 4']},
  });
  const error = await t.throwsAsync(runDeploy({root: world.root, rev: 'main'}), {
    instanceOf: DeployError,
  });
  t.regex(error.message, /hook before_switch \(sh -c .*\) failed \(exit code 4\)/);
  t.regex(error.message, /not ready/);
  const s = await status({root: world.root});
  t.is(s.current?.id, second.releaseId);
  t.is(s.releases.at(-1)?.state, 'failed');
});

test('a failing health check switches back, runs after_switch again for the old release, marks the new one bad', async t => {
  const world = await makeWorld(t);
  const log = path.join(world.dir, 'switch.log');
  const config = {
    hooks: {after_switch: ['sh', '-c', `echo "$RELEASE_DIR" >> ${log}`]},
    healthcheck: {command: ['test', '-f', 'healthy'], timeout: 5},
  };
  await commitRelease(world, 1, config, {healthy: 'yes\n'});
  const first = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  await world.app.remove('healthy');
  await commitRelease(world, 2, config);
  const run = await runDeployBin(['--rev', 'main', '--root', world.root]);
  t.is(run.code, ExitCode.healthcheck, run.stderr);
  t.regex(run.stderr, /health check \(test -f healthy\) failed/);
  const s = await status({root: world.root});
  t.is(s.current?.id, first.releaseId);
  t.is(s.current?.state, 'live');
  const bad = s.releases.find(r => r.id !== first.releaseId);
  t.is(bad?.state, 'bad');
  const switches = (await fsp.readFile(log, 'utf8')).trim().split('\n');
  t.deepEqual(switches, [
    first.releaseDir,
    bad ? path.join(world.root, 'releases', bad.id) : '',
    first.releaseDir,
  ]);
});

test('an HTTP health check waits for the app to answer; the first deploy with no previous release leaves no current', async t => {
  let up = false;
  const server = http.createServer((_req, res) => res.writeHead(up ? 204 : 503).end());
  const base = await listenLocal(t, server);
  const url = `${base}/health`;
  const world = await makeWorld(t);
  await commitRelease(world, 1, {healthcheck: {url, status: 204, timeout: 1}});
  await t.throwsAsync(runDeploy({root: world.root, rev: 'main', repo: world.appUrl}), {
    instanceOf: HealthcheckError,
    message: /answered 503, expected 204/,
  });
  await t.throwsAsync(
    fsp.lstat(path.join(world.root, 'current')),
    undefined,
    'back to no current at all',
  );

  setTimeout(() => (up = true), 700);
  await commitRelease(world, 2, {healthcheck: {url, status: 204, timeout: 10}});
  const ok = await runDeploy({root: world.root, rev: 'main'});
  t.is((await status({root: world.root})).current?.id, ok.releaseId);
});
