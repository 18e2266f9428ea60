// The first vendor pin as a new user makes it, and vendor-sync pushing to a repository on a path.
import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import test from 'ava';
import {withVendorRev} from '../vendor-sync/pin.js';
import {git} from './helpers/repos.js';
import {snapshotTree} from './helpers/tree.js';
import {makeWorld, runDeployBin, type World, runVendorSyncBin} from './helpers/world.js';

const exec = promisify(execFile);

/** An app whose deploy.json names the vendor repository and pins nothing yet. */
async function unpinnedApp(world: World): Promise<void> {
  await world.app.write({
    'index.js': "console.log('app');\n",
    'deploy.json':
      '{\n  "vendor": {"url": "../vendor.git"},\n  "install": {"command": ["true"]}\n}\n',
  });
  await world.app.commit('app naming its vendor repository');
  await world.publish();
}

test('deploy and deploy check refuse a changeset with no vendor pin yet, naming vendor-sync (exit 3; check: not deployable)', async t => {
  const world = await makeWorld(t);
  await unpinnedApp(world);
  const deployed = await runDeployBin([
    '--rev',
    'main',
    '--repo',
    world.appUrl,
    '--root',
    world.root,
  ]);
  t.is(deployed.code, 3, deployed.stderr);
  t.regex(deployed.stderr, /pins no commit of it yet: "vendor\.rev" is missing/);
  t.regex(deployed.stderr, /vendor-sync --app .* --update-pin/);
  t.deepEqual(await fsp.readdir(path.join(world.root, 'releases')).catch(() => []), []);

  // deploy check reports it as its deploy.json check failing: not deployable (exit 11).
  const checked = await runDeployBin(['check', '--rev', 'main', '--repo', world.appUrl, '--json']);
  t.is(checked.code, 11, checked.stdout + checked.stderr);
  const report = JSON.parse(checked.stdout) as {
    checks: Array<{id: string; status: string; message: string}>;
  };
  const failed = report.checks.find(c => c.status === 'fail');
  t.is(failed?.id, 'deploy-json');
  t.regex(failed?.message ?? '', /"vendor\.rev" is missing[^]*vendor-sync --app .* --update-pin/);
});

test('the first pin: a new directory or a repository with no commit as --vendor, pushed to a bare repository on a path', async t => {
  const world = await makeWorld(t);
  await unpinnedApp(world);
  const bare = path.join(world.dir, 'srv', 'app-vendor.git');
  await fsp.mkdir(bare, {recursive: true});
  // git init --bare without -b: HEAD names master; vendor-sync pushes main.
  await git(bare, ['init', '-q', '--bare']);

  for (const kind of ['new directory', 'repository with no commit']) {
    const vendorDir = path.join(world.dir, kind.replace(/ /g, '-'));
    if (kind !== 'new directory') {
      await fsp.mkdir(vendorDir);
      await git(vendorDir, ['init', '-q', '-b', 'main']);
    }
    const first = await runVendorSyncBin(
      ['--app', world.app.dir, '--vendor', vendorDir, '--update-pin'],
      world.dir,
    );
    t.is(first.code, 0, first.stderr);
    const head = await git(vendorDir, ['rev-parse', 'HEAD']);
    const config = JSON.parse(
      await fsp.readFile(path.join(world.app.dir, 'deploy.json'), 'utf8'),
    ) as {vendor: {rev: string}};
    t.is(config.vendor.rev, head, kind);
  }

  const vendorDir = path.join(world.dir, 'new-directory');
  await git(vendorDir, ['remote', 'add', 'origin', '../srv/app-vendor.git']);
  const pushed = await runVendorSyncBin(
    ['--app', world.app.dir, '--vendor', vendorDir, '--push'],
    world.dir,
  );
  t.is(pushed.code, 0, pushed.stderr);
  const head = await git(vendorDir, ['rev-parse', 'HEAD']);
  t.is(await git(bare, ['rev-parse', 'refs/heads/main']), head);
  await exec('git', ['--git-dir', bare, 'fsck', '--strict']);

  // Nothing committed and the target already holds HEAD: nothing is pushed.
  const again = await runVendorSyncBin(
    ['--app', world.app.dir, '--vendor', vendorDir, '--push'],
    world.dir,
  );
  t.is(again.code, 0, again.stderr);
  t.regex(again.stderr + again.stdout, /already at [0-9a-f]{40}: nothing pushed/);
  t.is(await git(bare, ['rev-parse', 'refs/heads/main']), head);
});

test('--push to a remote that is not a repository fails before anything is committed', async t => {
  const world = await makeWorld(t);
  await unpinnedApp(world);
  const vendorDir = path.join(world.dir, 'vendor-work');
  await fsp.mkdir(vendorDir);
  await git(vendorDir, ['init', '-q', '-b', 'main']);
  await fsp.writeFile(path.join(vendorDir, 'README.md'), 'vendor\n');
  await git(vendorDir, ['add', '-A']);
  await git(vendorDir, ['commit', '-q', '-m', 'start']);
  await git(vendorDir, ['remote', 'add', 'origin', path.join(world.dir, 'no-such-repo.git')]);
  const before = await snapshotTree(vendorDir, ['.git']);
  const head = await git(vendorDir, ['rev-parse', 'HEAD']);

  const run = await runVendorSyncBin(
    ['--app', world.app.dir, '--vendor', vendorDir, '--push'],
    world.dir,
  );
  t.is(run.code, 5, run.stderr);
  t.regex(run.stderr, /no-such-repo\.git does not exist/);
  t.is(await git(vendorDir, ['rev-parse', 'HEAD']), head);
  t.deepEqual(await snapshotTree(vendorDir, ['.git']), before);
});

test('--update-pin changes only vendor.rev and keeps the file as written', t => {
  const old = 'b'.repeat(40);
  const sha = 'c'.repeat(40);
  const text = `{\n    "install": "npm",\n    "vendor": {\n        "url": "../v.git",\n        "rev": "${old}"\n    },\n    "shared": ["var/"]\n}\n`;
  t.is(withVendorRev(text, sha), text.replace(old, sha));
  const first = withVendorRev('{\n  "vendor": {\n    "url": "../v.git"\n  }\n}\n', sha);
  t.deepEqual(JSON.parse(first), {vendor: {url: '../v.git', rev: sha}});
  t.true(first.endsWith('\n'));
});

test('a changeset may not name a vendor repository by a path on the node; --vendor-repo may [R35]', async t => {
  const world = await makeWorld(t);
  await world.vendor.write({'vendor-manifest.json': '{"format": 1, "artifacts": []}\n'});
  const vendorSha = await world.vendor.commit('vendor');
  const elsewhere = path.join(world.dir, 'elsewhere', 'vendor.git');
  await world.vendor.publish(elsewhere);
  await world.app.write({
    'deploy.json': JSON.stringify({vendor: {url: elsewhere, rev: vendorSha}}),
  });
  await world.app.commit('app naming a path on the node');
  await world.publish();
  const refused = await runDeployBin([
    '--rev',
    'main',
    '--repo',
    world.appUrl,
    '--root',
    world.root,
  ]);
  t.is(refused.code, 3, refused.stderr);
  t.regex(refused.stderr, /names its vendor repository as a path on this machine/);
  const named = await runDeployBin([
    '--rev',
    'main',
    '--repo',
    world.appUrl,
    '--root',
    world.root,
    '--vendor-repo',
    elsewhere,
  ]);
  t.is(named.code, 0, named.stderr);
});
