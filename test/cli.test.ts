import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import {ExitCode} from '../lib/support/errors.js';
import {fingerprint} from './helpers/tree.js';
import {
  makeWorld,
  pinVendor,
  runDeployBin,
  runVendorSyncBin,
  writeSampleApp,
} from './helpers/world.js';

async function simpleWorld(t: Parameters<typeof makeWorld>[0]) {
  const world = await makeWorld(t);
  await world.vendor.write({'npm/x.tgz': 'x'});
  const {vendorSha, appSha: sha} = await pinVendor(world, {
    sample: true,
    appMessage: 'v1',
    tag: {name: 'v1'},
  });
  return {world, sha, vendorSha};
}

test('deploy bin: deploys, prints a summary, and status --json reports it', async t => {
  const {world, sha, vendorSha} = await simpleWorld(t);
  const run = await runDeployBin(['--rev', 'v1', '--repo', world.appUrl, '--root', world.root]);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /^deployed \d{8}T\d{6}Z-[0-9a-f]{7}$/m);
  t.true(run.stdout.includes(sha));
  // One line per phase, with its result: no start line, no "done in" line.
  t.regex(
    run.stderr,
    /^fetch app {2,}[0-9a-f]{12} \(tag [^)]*v1\); fetched \d+ objects?, [\d.]+ (B|KiB) {2}\d+\.\d s$/m,
  );
  t.regex(run.stderr, /^switch current {2,}current -> \d{8}T\d{6}Z-[0-9a-f]{7} {2}\d+\.\d s$/m);
  t.notRegex(run.stderr, /done in|^- /m);
  const names = run.stderr.split('\n').map(line => line.split('  ')[0]);
  t.is(new Set(names).size, names.length, `each phase once:\n${run.stderr}`);

  const statusRun = await runDeployBin(['status', '--json'], {DEPLOY_ROOT: world.root});
  t.is(statusRun.code, 0, statusRun.stderr);
  const parsed = JSON.parse(statusRun.stdout) as {
    ok: boolean;
    current: {appSha: string; vendorSha: string; state: string; id: string};
    releases: unknown[];
    repo: string;
  };
  t.true(parsed.ok);
  t.like(parsed.current, {appSha: sha, vendorSha, state: 'live'});
  t.is(parsed.releases.length, 1);
  t.is(parsed.repo, world.appUrl);

  const human = await runDeployBin(['status', '--root', world.root]);
  t.is(human.code, 0);
  t.regex(human.stdout, new RegExp(`current\\s+${parsed.current.id}\\s+app ${sha.slice(0, 12)}`));
});

test('deploy bin: --json gives one result object', async t => {
  const {world, sha} = await simpleWorld(t);
  const run = await runDeployBin(
    ['--rev', sha.slice(0, 7), '--json'],
    {DEPLOY_ROOT: world.root},
    undefined,
  );
  t.is(run.code, ExitCode.usage, 'no repo known yet');
  t.like(JSON.parse(run.stdout), {ok: false, error: {code: 'EUSAGE'}});
  const ok = await runDeployBin(['--rev', sha.slice(0, 7), '--repo', world.appUrl, '--json'], {
    DEPLOY_ROOT: world.root,
  });
  t.is(ok.code, 0, ok.stderr);
  t.like(JSON.parse(ok.stdout), {
    ok: true,
    command: 'deploy',
    requestedRev: sha.slice(0, 7),
    app: {sha},
  });
});

test('deploy bin: --help and --version print and exit 0, for the command and its subcommands', async t => {
  const help = await runDeployBin(['--help']);
  t.is(help.code, 0, help.stderr);
  t.regex(help.stdout, /deploy rollback/);
  t.is(help.stderr, '');
  const checkHelp = await runDeployBin(['check', '--help']);
  t.is(checkHelp.code, 0, checkHelp.stderr);
  t.regex(checkHelp.stdout, /--junit/);
  const version = await runDeployBin(['--version']);
  t.is(version.code, 0);
  t.regex(version.stdout, /^\d+\.\d+\.\d+\n$/);
});

test("a command's --help gives its usage line, examples and the doc to read, on both bins", async t => {
  const rollback = await runDeployBin(['rollback', '--help']);
  t.is(rollback.code, 0, rollback.stderr);
  t.regex(rollback.stdout, /^Usage: deploy rollback \[--root <dir>\]/m);
  t.regex(rollback.stdout, /Examples:\n\s+deploy rollback --root \/srv\/app/);
  t.regex(rollback.stdout, /Docs: docs\/lifecycle\.md/);
  t.regex(
    rollback.stdout,
    /set in the environment\s+as\s+DEPLOY_<OPTION>\s+\(--root\s+as\s+DEPLOY_ROOT\)/,
  );
  const check = await runDeployBin(['check', '--help']);
  t.regex(check.stdout, /^Usage: deploy check --rev <rev> --repo <url>/m);
  t.regex(check.stdout, /Docs: docs\/check\.md/);
  const sync = await runVendorSyncBin(['outdated', '--help'], os.tmpdir());
  t.is(sync.code, 0, sync.stderr);
  t.regex(sync.stdout, /^Usage: vendor-sync outdated --vendor <path\|url>/m);
  t.regex(sync.stdout, /Examples:\n\s+vendor-sync outdated --vendor/);
  t.regex(sync.stdout, /Docs: docs\/vendor-sync\.md/);
  t.regex(sync.stdout, /as\s+VENDOR_SYNC_<OPTION>\s+\(--vendor\s+as\s+VENDOR_SYNC_VENDOR\)/);
  const completion = await runDeployBin(['completion', '--help']);
  t.is(completion.code, 0, completion.stderr);
  t.regex(completion.stdout, /^Usage: deploy completion\n[\s\S]*Examples:[\s\S]*Docs: README\.md/);
});

test('deploy bin: a bad deploy.json is refused in plain words, naming the key and the doc; exit 3', async t => {
  const {world} = await simpleWorld(t);
  await world.app.write({'deploy.json': JSON.stringify({vendor: {url: 42}, instal: 'npm'})});
  await world.app.commit('a broken deploy.json');
  await world.publish();
  const run = await runDeployBin(['--rev', 'main', '--repo', world.appUrl, '--root', world.root]);
  t.is(run.code, ExitCode.config, run.stderr);
  t.regex(
    run.stderr,
    /error: deploy\.json at [0-9a-f]{7,} is invalid: "vendor\.url" must be a string \(the vendor repository URL\); it is the number 42; unknown key "instal"\./,
  );
  t.regex(run.stderr, /hint: .*docs\/deploy-json\.md/);
  t.notRegex(run.stderr, /expected|received|Invalid input/);
});

test("deploy bin: options from DEPLOY_*, a flag winning; DEPLOY_GIT_TOKEN and other commands' options are no arguments", async t => {
  const {world, sha} = await simpleWorld(t);
  const env = {
    DEPLOY_REV: 'no-such-rev',
    DEPLOY_REPO: world.appUrl,
    DEPLOY_ROOT: world.root,
    DEPLOY_GIT_TOKEN: 'not-an-option-token',
    DEPLOY_GIT_USERNAME: 'deployer',
  };
  const run = await runDeployBin(['--rev', 'v1'], env);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, new RegExp(`app\\s+${sha}`));
  // DEPLOY_REV and DEPLOY_REPO are options of the deploy, not of status: not unknown arguments.
  const status = await runDeployBin(['status', '--json'], env);
  t.is(status.code, 0, status.stderr);
  t.is((JSON.parse(status.stdout) as {current: {appSha: string}}).current.appSha, sha);
  const plan = await runDeployBin([], {
    ...env,
    DEPLOY_REV: 'v1',
    DEPLOY_DRY_RUN: 'true',
    DEPLOY_FORCE: 'true',
    DEPLOY_JSON: 'true',
  });
  t.is(plan.code, 0, plan.stderr);
  t.like(JSON.parse(plan.stdout), {ok: true, dryRun: true});
  t.is(
    (await fsp.readdir(path.join(world.root, 'releases'))).length,
    1,
    'the dry run changed nothing',
  );
  t.false(run.stdout.includes('not-an-option-token') || run.stderr.includes('not-an-option-token'));
  // DEPLOY_JSON=true makes even an error one JSON object, as --json does.
  const failed = await runDeployBin([], {...env, DEPLOY_JSON: 'true'});
  t.is(failed.code, ExitCode.rev, failed.stderr);
  t.like(JSON.parse(failed.stdout), {ok: false, error: {code: 'EREV'}});
});

test('vendor-sync bin: --vendor from vendor-sync.json; VENDOR_SYNC_VENDOR over the file; the flag over both', async t => {
  const world = await makeWorld(t);
  await world.app.write({
    'deploy.json': JSON.stringify({vendor: {url: '../vendor.git'}}),
    'vendor-sync.json': JSON.stringify({vendor: '../from-file'}),
  });
  await world.app.commit('an app with its vendor-sync settings');
  // Paths in the file are relative to it: ../from-file is beside the app's work tree.
  const base = path.dirname(world.app.dir);
  const synced = async (name: string) =>
    fsp.access(path.join(base, name, 'vendor-manifest.json')).then(
      () => true,
      () => false,
    );
  // Credentials under the same prefix are no options: strict mode must not refuse them.
  const tokens = {VENDOR_SYNC_GIT_TOKEN: 'x', VENDOR_SYNC_NPM_TOKEN: 'y'};
  const fromFile = await runVendorSyncBin([], world.app.dir, tokens);
  t.is(fromFile.code, 0, fromFile.stderr);
  t.true(await synced('from-file'));
  const env = {...tokens, VENDOR_SYNC_VENDOR: path.join(base, 'from-env')};
  const fromEnv = await runVendorSyncBin([], world.app.dir, env);
  t.is(fromEnv.code, 0, fromEnv.stderr);
  t.true(await synced('from-env'));
  const flag = ['--app', world.app.dir, '--vendor', path.join(base, 'from-flag')];
  const fromFlag = await runVendorSyncBin(flag, world.dir, env);
  t.is(fromFlag.code, 0, fromFlag.stderr);
  t.true(await synced('from-flag'));
  // VENDOR_SYNC_DRY_RUN stands for --dry-run.
  const dry = await runVendorSyncBin(['--vendor', path.join(base, 'dry')], world.app.dir, {
    VENDOR_SYNC_DRY_RUN: 'true',
  });
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /^dry run:/);
  t.false(await synced('dry'));
  // A wrong key in the file is refused in plain words, naming the file.
  await fsp.writeFile(path.join(world.app.dir, 'vendor-sync.json'), '{"vendor": 5}');
  const bad = await runVendorSyncBin([], world.app.dir);
  t.is(bad.code, ExitCode.config, bad.stderr);
  t.regex(
    bad.stderr,
    /vendor-sync\.json is invalid: "vendor" must be a string .*; it is the number 5/,
  );
});

test('a mistyped command is named, with the command meant; exit 2', async t => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cli-typo-'));
  t.teardown(() => fsp.rm(dir, {recursive: true, force: true}));
  const staus = await runDeployBin(['staus', '--root', dir]);
  t.is(staus.code, ExitCode.usage, staus.stderr);
  t.regex(staus.stderr, /error: Unknown command "staus"/);
  t.regex(staus.stderr, /hint: Did you mean "deploy status"\?/);
  const far = await runDeployBin(['frobnicate']);
  t.is(far.code, ExitCode.usage);
  t.notRegex(far.stderr, /Did you mean/);
  const outdate = await runVendorSyncBin(['outdate', '--vendor', 'x'], dir);
  t.is(outdate.code, ExitCode.usage, outdate.stderr);
  t.regex(outdate.stderr, /error: Unknown command "outdate"/);
  t.regex(outdate.stderr, /Did you mean "vendor-sync outdated"\?/);
});

test('only a deploy creates a node root: other commands refuse a missing one; exit 3', async t => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cli-root-'));
  t.teardown(() => fsp.rm(dir, {recursive: true, force: true}));
  const missing = path.join(dir, 'typo');
  for (const args of [
    ['status'],
    ['releases'],
    ['rollback'],
    ['prune'],
    ['maintenance', 'status'],
  ]) {
    const run = await runDeployBin([...args, '--root', missing]);
    t.is(run.code, ExitCode.config, `${args.join(' ')}: ${run.stderr}`);
    t.true(run.stderr.includes(`error: Node root ${missing} does not exist.`), run.stderr);
    t.regex(run.stderr, /the first `deploy --rev \.\.\. --repo \.\.\.` creates it/);
  }
  await t.throwsAsync(fsp.stat(missing), {code: 'ENOENT'});
});

test("-v adds each phase's detail lines and times in ms; -q prints no progress", async t => {
  const {world, sha} = await simpleWorld(t);
  const verbose = await runDeployBin([
    '--rev',
    'v1',
    '--repo',
    world.appUrl,
    '--root',
    world.root,
    '-v',
  ]);
  t.is(verbose.code, 0, verbose.stderr);
  // The detail lines are indented under the line of their phase.
  t.regex(
    verbose.stderr,
    new RegExp(`^fetch app .* \\d+ ms\n  resolve v1 in .*\n  app ${sha}$`, 'm'),
  );
  const root = path.join(world.dir, 'quiet-node');
  const quiet = await runDeployBin(['--rev', 'v1', '--repo', world.appUrl, '--root', root, '-q']);
  t.is(quiet.code, 0, quiet.stderr);
  t.is(quiet.stderr, '');
  t.regex(quiet.stdout, /^deployed /m);
});

test('-h, -V, -q, -v and completion, on both bins', async t => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cli-flags-'));
  t.teardown(() => fsp.rm(dir, {recursive: true, force: true}));
  const version = await runDeployBin(['-V']);
  t.is(version.code, 0, version.stderr);
  t.regex(version.stdout, /^\d+\.\d+\.\d+\n$/);
  const help = await runVendorSyncBin(['outdated', '-h'], dir);
  t.is(help.code, 0, help.stderr);
  t.regex(help.stdout, /--quiet/);
  t.regex(help.stdout, /--verbose/);
  const quiet = await runDeployBin(['status', '-q', '--root', dir]);
  t.is(quiet.code, 0, quiet.stderr);
  t.is(quiet.stderr, '');
  const verbose = await runDeployBin(['releases', '-v', '--root', dir]);
  t.is(verbose.code, 0, verbose.stderr);
  const both = await runDeployBin(['status', '-q', '-v', '--root', dir]);
  t.is(both.code, ExitCode.usage);
  for (const run of [
    await runDeployBin(['completion']),
    await runVendorSyncBin(['completion'], dir),
  ]) {
    t.is(run.code, 0, run.stderr);
    t.regex(run.stdout, /complete -o bashdefault -o default -F/);
    t.is(run.stderr, '');
  }
});

test('deploy bin: exit codes and messages for bad input', async t => {
  const {world} = await simpleWorld(t);
  const noRoot = await runDeployBin(['--rev', 'v1', '--repo', world.appUrl]);
  t.is(noRoot.code, ExitCode.usage);
  t.regex(noRoot.stderr, /error: No node root given/);
  t.regex(noRoot.stderr, /hint: Pass --root/);

  const noRev = await runDeployBin(['--root', world.root]);
  t.is(noRev.code, ExitCode.usage);
  t.regex(noRev.stderr, /error: Missing --rev \(or --bundle\)/);

  const unknownOption = await runDeployBin(['--rev', 'v1', '--root', world.root, '--frobnicate']);
  t.is(unknownOption.code, ExitCode.usage);
  t.regex(unknownOption.stderr, /frobnicate/);

  const unknownRev = await runDeployBin([
    '--rev',
    'v9',
    '--repo',
    world.appUrl,
    '--root',
    world.root,
  ]);
  t.is(unknownRev.code, ExitCode.rev);
  t.regex(unknownRev.stderr, /error: Unknown rev "v9"/);

  const sshRepo = await runDeployBin([
    '--rev',
    'v1',
    '--repo',
    'git@example.com:app.git',
    '--root',
    world.root,
  ]);
  t.is(sshRepo.code, ExitCode.usage);
  t.regex(sshRepo.stderr, /only http\(s\) URLs and local paths/);

  const down = await runDeployBin([
    '--rev',
    'v1',
    '--repo',
    'http://127.0.0.1:9/app.git',
    '--root',
    world.root,
  ]);
  t.is(down.code, ExitCode.source);
  t.regex(down.stderr, /ECONNREFUSED/);
});

test('deploy bin: refuses a current that is a real directory, and never removes it [R4]', async t => {
  const {world} = await simpleWorld(t);
  await fsp.mkdir(path.join(world.root, 'current'), {recursive: true});
  await fsp.writeFile(path.join(world.root, 'current', 'precious.txt'), 'keep me');
  const run = await runDeployBin(['--rev', 'v1', '--repo', world.appUrl, '--root', world.root]);
  t.is(run.code, ExitCode.config);
  t.regex(run.stderr, /current is a directory, not a symlink/);
  t.is(await fsp.readFile(path.join(world.root, 'current', 'precious.txt'), 'utf8'), 'keep me');
});

test('deploy bin: credentials come from the environment and are written nowhere [R7] [R27]', async t => {
  const token = 'tok-3f9a8c7e51d2';
  const world = await makeWorld(t, {auth: {username: 'deployer', password: token}});
  await writeSampleApp(world.app);
  const sha = await world.app.commit('v1');
  await world.publish();

  const denied = await runDeployBin(['--rev', sha, '--repo', world.appUrl, '--root', world.root]);
  t.is(denied.code, ExitCode.source);
  t.regex(denied.stderr, /refused access|authentication required/);
  t.regex(denied.stderr, /DEPLOY_GIT_TOKEN/);

  const wrong = await runDeployBin(['--rev', sha, '--repo', world.appUrl, '--root', world.root], {
    DEPLOY_GIT_USERNAME: 'deployer',
    DEPLOY_GIT_TOKEN: 'wrong-token-value',
  });
  t.is(wrong.code, ExitCode.source);
  t.false(wrong.stderr.includes('wrong-token-value'));

  const ok = await runDeployBin(['--rev', sha, '--repo', world.appUrl, '--root', world.root], {
    DEPLOY_GIT_USERNAME: 'deployer',
    DEPLOY_GIT_TOKEN: token,
  });
  t.is(ok.code, 0, ok.stderr);
  t.false(ok.stdout.includes(token) || ok.stderr.includes(token));

  const inUrl = await runDeployBin([
    '--rev',
    sha,
    '--repo',
    world.appUrl.replace('http://', `http://deployer:${token}@`),
    '--root',
    world.root,
  ]);
  t.is(inUrl.code, ExitCode.usage);
  t.false(inUrl.stderr.includes(token), 'a token in a URL is not echoed back');

  // The token is in no file under the node root: git config, refs, history, metadata.
  const files: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await fsp.readdir(dir, {withFileTypes: true})) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.isFile()) files.push(p);
    }
  };
  await walk(world.root);
  t.true(files.some(f => f.endsWith(path.join('repos', 'app.git', 'config'))));
  for (const file of files) {
    const content = await fsp.readFile(file);
    t.false(content.includes(token), `token found in ${file}`);
  }
});

type Releases = {releases: Array<{id: string; appSha: string}>; current: {id: string} | null};

async function releasesOf(root: string): Promise<Releases> {
  const run = await runDeployBin(['status', '--json', '--root', root]);
  return JSON.parse(run.stdout) as Releases;
}

test('deploy bin: the live sha again does nothing unless --force; with --json, changed: false', async t => {
  const {world, sha} = await simpleWorld(t);
  const first = await runDeployBin(['--rev', 'v1', '--repo', world.appUrl, '--root', world.root]);
  t.is(first.code, 0, first.stderr);
  const live = (await releasesOf(world.root)).current?.id ?? '';

  const again = await runDeployBin(['--rev', sha, '--root', world.root]);
  t.is(again.code, 0, again.stderr);
  t.is(
    again.stdout,
    `release ${live} of ${sha} is already live: nothing to do (--force deploys it again)\n`,
  );
  const json = await runDeployBin(['--rev', 'v1', '--root', world.root, '--json']);
  t.is(json.code, 0, json.stderr);
  t.like(JSON.parse(json.stdout), {ok: true, changed: false, releaseId: live, app: {sha}});
  t.is((await releasesOf(world.root)).releases.length, 1, 'no second release');

  const forced = await runDeployBin(['--rev', sha, '--root', world.root, '--force', '--json']);
  t.is(forced.code, 0, forced.stderr);
  const result = JSON.parse(forced.stdout) as {changed: boolean; releaseId: string};
  t.true(result.changed);
  t.not(result.releaseId, live);
  t.is((await releasesOf(world.root)).releases.length, 2);
});

test('deploy bin: a roll-out resumed with the same --release-id is a no-op; another sha under that id is refused', async t => {
  const {world, sha} = await simpleWorld(t);
  const args = ['--rev', sha, '--repo', world.appUrl, '--root', world.root, '--release-id', 'r1'];
  t.is((await runDeployBin(args)).code, 0);
  const resumed = await runDeployBin([...args, '--json']);
  t.is(resumed.code, 0, resumed.stderr);
  t.like(JSON.parse(resumed.stdout), {changed: false, releaseId: 'r1'});

  await world.app.write({'v2.txt': 'two\n'});
  const v2 = await world.app.commit('v2');
  await world.publish();
  const other = await runDeployBin(['--rev', v2, '--root', world.root, '--release-id', 'r1']);
  t.is(other.code, ExitCode.usage, other.stderr);
  t.regex(other.stderr, /Release r1 already exists/);
  t.deepEqual(
    (await releasesOf(world.root)).releases.map(r => r.id),
    ['r1'],
  );
});

test('deploy bin: --dry-run of the live sha says it is already live; --json says changed: false', async t => {
  const {world, sha} = await simpleWorld(t);
  t.is((await runDeployBin(['--rev', 'v1', '--repo', world.appUrl, '--root', world.root])).code, 0);
  const live = (await releasesOf(world.root)).current?.id ?? '';
  const plan = await runDeployBin(['--rev', 'v1', '--root', world.root, '--dry-run']);
  t.is(plan.code, 0, plan.stderr);
  t.regex(plan.stdout, new RegExp(`already live: releases/${live} is ${sha} \\(v1\\)`));
  const json = await runDeployBin(['--rev', sha, '--root', world.root, '--dry-run', '--json']);
  t.is(json.code, 0, json.stderr);
  t.like(JSON.parse(json.stdout), {ok: true, dryRun: true, changed: false, releaseId: live});
  const forced = await runDeployBin([
    '--rev',
    sha,
    '--root',
    world.root,
    '--dry-run',
    '--json',
    '--force',
  ]);
  t.like(JSON.parse(forced.stdout), {changed: true});
});

test('deploy bin: --dry-run plans from the node stores when they hold the commits, changing nothing', async t => {
  const {world, sha: v1} = await simpleWorld(t);
  t.is((await runDeployBin(['--rev', v1, '--repo', world.appUrl, '--root', world.root])).code, 0);
  await world.app.write({'v2.txt': 'two\n'});
  const v2 = await world.app.commit('v2');
  await world.publish();
  // A commit the node does not hold yet: fetched into a scratch directory, as before.
  const scratch = await runDeployBin(['--rev', v2, '--root', world.root, '--dry-run', '--json']);
  t.is(scratch.code, 0, scratch.stderr);
  t.like(JSON.parse(scratch.stdout), {changed: true, stores: 'scratch', app: {sha: v2}});
  t.is((await runDeployBin(['--rev', v2, '--root', world.root])).code, 0);

  // Both commits are in the node's stores now: no server is needed to plan either.
  await world.server.close();
  const before = await fingerprint(world.root);
  const back = await runDeployBin(['--rev', v1, '--root', world.root, '--dry-run']);
  t.is(back.code, 0, back.stderr);
  t.regex(back.stdout, /from {4}the node's stores/);
  t.regex(back.stdout, new RegExp(`app {5}${v1}`));
  t.regex(back.stdout, /would build releases\/\d{8}T\d{6}Z-/);
  const live = await runDeployBin(['--rev', v2, '--root', world.root, '--dry-run', '--json']);
  t.is(live.code, 0, live.stderr);
  t.like(JSON.parse(live.stdout), {changed: false, stores: 'node', app: {sha: v2}});
  t.deepEqual(await fingerprint(world.root), before, 'the stores were read, not written');
});
