import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {ConfigError, ExitCode, ReleasePathError} from '../lib/support/errors.js';
import {rollback} from '../lib/node/lifecycle.js';
import {ReleaseStore} from '../lib/node/release-store.js';
import {tempDir} from './helpers/tmp.js';
import {fingerprint} from './helpers/tree.js';
import {
  commitRelease,
  makeWorld,
  runDeploy,
  runDeployBin,
  testDeps,
  type World,
} from './helpers/world.js';

// Through `deploy`: app and vendor repositories over git smart HTTP, a real node root.

type Fence = {outside: string; world: World};
type Snapshot = Record<string, unknown>;

/** Everything a failed deploy must leave as it was: the outside dir, releases/, shared/, current. */
async function snapshot({outside, world}: Fence): Promise<Snapshot> {
  return {
    outside: await fingerprint(outside),
    releases: await fingerprint(path.join(world.root, 'releases')),
    shared: await fingerprint(path.join(world.root, 'shared')),
    current: await fsp.readlink(path.join(world.root, 'current')),
  };
}

/** A world with one good release live and a directory outside the node root. */
async function fenced(t: ExecutionContext, files: Record<string, string>): Promise<Fence> {
  const world = await makeWorld(t);
  const outside = await tempDir(t, 'repodeploy-outside-');
  for (const [rel, content] of Object.entries(files)) {
    await fsp.mkdir(path.dirname(path.join(outside, rel)), {recursive: true});
    await fsp.writeFile(path.join(outside, rel), content);
  }
  await commitRelease(world, 1, {});
  await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  return {outside, world};
}

/** Deploy the app's main: it must fail with a ConfigError matching `message`, changing nothing. */
async function refused(t: ExecutionContext, fence: Fence, message: RegExp): Promise<void> {
  const before = await snapshot(fence);
  const error = await t.throwsAsync(runDeploy({root: fence.world.root, rev: 'main'}), {
    instanceOf: ConfigError,
  });
  t.regex(error.message, message);
  t.deepEqual(await snapshot(fence), before, 'outside, releases, shared and current unchanged');
}

test('[R34] a shared directory through a committed symlink out of the root is refused; the outside directory stays', async t => {
  const fence = await fenced(t, {'data/keep.db': 'precious\n'});
  await fence.world.app.write({x: {symlink: fence.outside}});
  await commitRelease(fence.world, 2, {shared: ['x/data/']});
  await refused(
    t,
    fence,
    new RegExp(
      `deploy\\.json "shared\\[0\\]": "x/data/" goes through x, a symlink to ${fence.outside} in the app tree at [0-9a-f]{12}`,
    ),
  );
  t.is(await fsp.readFile(path.join(fence.outside, 'data/keep.db'), 'utf8'), 'precious\n');
});

test('[R34] a shared file through a committed symlink is refused; the outside file stays', async t => {
  const fence = await fenced(t, {'app.ini': 'outside config\n'});
  // The node provides the shared file, so nothing but the link stops the deploy.
  await fsp.mkdir(path.join(fence.world.root, 'shared/x'), {recursive: true});
  await fsp.writeFile(path.join(fence.world.root, 'shared/x/app.ini'), 'node config\n');
  await fence.world.app.write({x: {symlink: fence.outside}});
  await commitRelease(fence.world, 2, {shared: ['x/app.ini']});
  await refused(t, fence, /"shared\[0\]": "x\/app\.ini" goes through x, a symlink to /);
  t.is(await fsp.readFile(path.join(fence.outside, 'app.ini'), 'utf8'), 'outside config\n');
});

test('[R34] a shared path through "y -> .." naming an earlier release is refused; that release stays whole and can be rolled back to', async t => {
  const fence = await fenced(t, {});
  const {world} = fence;
  const first = (await fsp.readlink(path.join(world.root, 'current'))).split('/').pop() ?? '';
  await commitRelease(world, 2, {});
  await runDeploy({root: world.root, rev: 'main'});
  await world.app.write({y: {symlink: '..'}});
  await commitRelease(world, 3, {shared: [`y/${first}/`]});
  await refused(
    t,
    fence,
    new RegExp(`"shared\\[0\\]": "y/${first}/" goes through y, a symlink to \\.\\. `),
  );
  const releases = await new ReleaseStore(world.root).list();
  t.is(releases.find(r => r.id === first)?.meta?.state, 'retired');
  t.is(await fsp.readFile(path.join(world.root, 'releases', first, 'version.txt'), 'utf8'), '1\n');
  const back = await rollback({root: world.root}, testDeps());
  t.is(back.to, first);
  t.is(await fsp.readFile(path.join(world.root, 'current', 'version.txt'), 'utf8'), '1\n');
});

test('[R34] an npm install directory through a committed symlink is refused; npm never runs in the outside directory', async t => {
  const lock = {
    name: 'outside',
    lockfileVersion: 3,
    requires: true,
    packages: {'': {name: 'outside'}},
  };
  const fence = await fenced(t, {
    'package.json': '{"name": "outside"}\n',
    'package-lock.json': JSON.stringify(lock),
    'node_modules/left/index.js': 'module.exports = 1;\n',
  });
  await fence.world.app.write({x: {symlink: fence.outside}});
  await commitRelease(fence.world, 2, {install: {type: 'npm', directory: 'x'}});
  await refused(t, fence, /"install\.directory": "x" goes through x, a symlink to /);
  t.true((await fsp.readdir(path.join(fence.outside, 'node_modules'))).includes('left'));
});

test('[R34] a committed venv with a link inside is refused; python never writes through it', async t => {
  const fence = await fenced(t, {'bin/tool': 'outside tool\n'});
  await fence.world.app.write({
    'requirements.txt': '',
    'venv/bin': {symlink: path.join(fence.outside, 'bin')},
  });
  await commitRelease(fence.world, 2, {install: 'pip'});
  await refused(t, fence, /"install\.venv": "venv" has venv\/bin in it, a symlink to /);
});

test('[R34] "shared": [".repodeploy/"] is refused: no release goes live without its release.json', async t => {
  const fence = await fenced(t, {});
  await commitRelease(fence.world, 2, {shared: ['.repodeploy/']});
  await refused(
    t,
    fence,
    /"shared\[0\]": "\.repodeploy\/" names \.repodeploy, the release's own metadata/,
  );
});

test('[R34] a benign committed var -> /var/lib/app with "var/uploads/" shared is refused, naming the link', async t => {
  const fence = await fenced(t, {'var-lib-app/uploads/photo.jpg': 'jpeg\n'});
  const varLib = path.join(fence.outside, 'var-lib-app');
  await fence.world.app.write({var: {symlink: varLib}});
  await commitRelease(fence.world, 2, {shared: ['var/uploads/']});
  const before = await snapshot(fence);
  const run = await runDeployBin(['--rev', 'main', '--root', fence.world.root, '--json']);
  t.is(run.code, ExitCode.config, run.stderr);
  const out = JSON.parse(run.stdout) as {ok: boolean; error: {code: string; message: string}};
  t.is(out.error.code, 'ECONFIG');
  t.true(out.error.message.includes(`goes through var, a symlink to ${varLib}`), out.error.message);
  t.deepEqual(await snapshot(fence), before);
});

test('[R34] a shared path through a symlink of the vendor tree is refused once written: the release is marked failed', async t => {
  const fence = await fenced(t, {'data/keep.db': 'precious\n'});
  const {world} = fence;
  await world.vendor.write({'README.md': 'vendor\n', data: {symlink: fence.outside}});
  const vendorSha = await world.vendor.commit('vendor with a link');
  await commitRelease(world, 2, {
    vendor: {url: '../vendor.git', rev: vendorSha},
    shared: ['vendor/data/data/'],
  });
  const before = await snapshot(fence);
  const live = path.join(world.root, before.current as string);
  const liveBefore = await fingerprint(live);
  const error = await t.throwsAsync(runDeploy({root: world.root, rev: 'main'}), {
    instanceOf: ReleasePathError,
  });
  t.regex(
    error.message,
    /"shared\[0\]": "vendor\/data\/data\/" goes through vendor\/data, a symlink to .* in the release/,
  );
  const after = await snapshot(fence);
  t.deepEqual(after.outside, before.outside);
  t.deepEqual(after.shared, before.shared);
  t.is(after.current, before.current);
  const releases = await new ReleaseStore(world.root).list();
  const failed = releases.find(r => r.meta?.state === 'failed');
  t.regex(failed?.meta?.error ?? '', /goes through vendor\/data/);
  t.deepEqual(await fingerprint(live), liveBefore, 'the live release is unchanged');
});

test('[R34] deploy check refuses the same changesets as not deployable, naming the link', async t => {
  const world = await makeWorld(t);
  const outside = await tempDir(t, 'repodeploy-outside-');
  await world.app.write({x: {symlink: outside}});
  await commitRelease(world, 1, {shared: ['x/data/'], install: {type: 'npm', directory: 'x'}});
  const run = await runDeployBin(
    ['check', '--rev', 'main', '--repo', world.appUrl, '--json'],
    {},
    world.dir,
  );
  t.is(run.code, ExitCode.notDeployable, run.stderr);
  const report = JSON.parse(run.stdout) as {
    checks: Array<{id: string; status: string; message: string}>;
  };
  const config = report.checks.find(c => c.id === 'deploy-json');
  t.is(config?.status, 'fail');
  t.regex(config?.message ?? '', /"shared\[0\]": "x\/data\/" goes through x, a symlink to /);
  t.deepEqual(await fsp.readdir(outside), []);
});

test('[R34] deploy bundle refuses a changeset whose shared path goes through a committed symlink', async t => {
  const world = await makeWorld(t);
  const outside = await tempDir(t, 'repodeploy-outside-');
  await world.app.write({var: {symlink: outside}});
  await commitRelease(world, 1, {shared: ['var/uploads/']});
  const out = path.join(world.dir, 'app.bundle');
  const run = await runDeployBin(['bundle', '--rev', 'main', '--repo', world.appUrl, '--out', out]);
  t.is(run.code, ExitCode.config, run.stdout);
  t.regex(run.stderr, /"shared\[0\]": "var\/uploads\/" goes through var, a symlink to /);
  await t.throwsAsync(fsp.access(out), {code: 'ENOENT'});
});

test('[R34] deploy check refuses a shared path through a symlink of the vendor tree, once the tree is written', async t => {
  const world = await makeWorld(t);
  const outside = await tempDir(t, 'repodeploy-outside-');
  await world.vendor.write({'README.md': 'vendor\n', data: {symlink: outside}});
  const vendorSha = await world.vendor.commit('vendor with a link');
  await commitRelease(world, 1, {
    vendor: {url: '../vendor.git', rev: vendorSha},
    shared: ['vendor/data/x/'],
  });
  const run = await runDeployBin(
    ['check', '--rev', 'main', '--repo', world.appUrl, '--json'],
    {},
    world.dir,
  );
  t.is(run.code, ExitCode.notDeployable, run.stderr);
  const report = JSON.parse(run.stdout) as {
    checks: Array<{id: string; status: string; message: string; fix: string | null}>;
  };
  const failed = report.checks.find(c => c.status === 'fail');
  t.is(failed?.id, 'lockfile');
  t.regex(
    failed?.message ?? '',
    /"shared\[0\]": "vendor\/data\/x\/" goes through vendor\/data, a symlink to /,
  );
  t.regex(failed?.fix ?? '', /Fix the path in deploy\.json/);
});
