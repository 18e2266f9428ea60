import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import test, {type ExecutionContext} from 'ava';
import {readHistory} from '../lib/node/history.js';
import {ReleaseStore} from '../lib/node/release-store.js';
import {startGitHttpServer} from './helpers/git-http-server.js';
import {allowedLine, SignedRepo, sshKey, type SshKey} from './helpers/signing-keys.js';
import {tempDir} from './helpers/tmp.js';
import {runDeployBin, type CliRun} from './helpers/world.js';

const exec = promisify(execFile);
const DEV = 'dev@example.com';
const ROBOT = 'robot@example.com';

type Require = {app?: string; vendor?: string};

/**
 * Signed app and vendor work trees (native git, real SSH keys) served over git smart HTTP, a
 * node policy in node-etc/ allowing `dev` for the app and `robot` for the vendor, and a node root.
 */
async function signedWorld(t: ExecutionContext, require: Require = {}) {
  const dir = await tempDir(t, 'repodeploy-signdeploy-');
  const served = path.join(dir, 'served');
  const server = await startGitHttpServer({projectRoot: served});
  t.teardown(() => server.close());
  const app = await SignedRepo.init(path.join(dir, 'work', 'app'));
  const vendor = await SignedRepo.init(path.join(dir, 'work', 'vendor'));
  const keys = {
    dev: await sshKey(dir, 'dev'),
    robot: await sshKey(dir, 'robot'),
    other: await sshKey(dir, 'other'),
  };
  const etc = path.join(dir, 'node-etc');
  await fsp.mkdir(etc);
  await fsp.writeFile(path.join(etc, 'app_signers'), `${allowedLine(DEV, keys.dev)}\n`);
  await fsp.writeFile(path.join(etc, 'vendor_signers'), `${allowedLine(ROBOT, keys.robot)}\n`);
  const policy = path.join(etc, 'signing.json');
  await fsp.writeFile(
    policy,
    JSON.stringify({
      app: {require: require.app ?? 'commit', allowed_signers: ['app_signers']},
      vendor: {require: require.vendor ?? 'commit', allowed_signers: ['vendor_signers']},
    }),
  );
  const publish = async () => {
    for (const [repo, name] of [
      [app, 'app.git'],
      [vendor, 'vendor.git'],
    ] as const) {
      const bare = path.join(served, name);
      await fsp.mkdir(bare, {recursive: true});
      await exec('git', ['init', '-q', '--bare', '-b', 'main'], {cwd: bare});
      await repo.git(undefined, DEV, 'push', '-q', '--force', '--mirror', bare);
    }
  };
  const root = path.join(dir, 'node');
  return {dir, served, app, vendor, keys, policy, publish, root, appUrl: server.repoUrl('app.git')};
}

type SignedWorld = Awaited<ReturnType<typeof signedWorld>>;

/** A vendor commit (signed by `vendorKey`) and an app commit pinning it (signed by `appKey`). */
async function changeset(
  world: SignedWorld,
  n: number,
  sign: {app?: SshKey | undefined; vendor?: SshKey | undefined; files?: Record<string, string>},
): Promise<{appSha: string; vendorSha: string}> {
  const vendorSha = await world.vendor.commit(
    {'MANIFEST.json': `{"format": 1, "artifacts": [], "n": ${n}}\n`},
    {signing: sign.vendor ? {ssh: sign.vendor} : undefined, email: ROBOT},
  );
  const appSha = await world.app.commit(
    {
      'version.txt': `${n}\n`,
      'deploy.json': JSON.stringify({vendor: {url: '../vendor.git', rev: vendorSha}}),
      ...sign.files,
    },
    {signing: sign.app ? {ssh: sign.app} : undefined, email: DEV},
  );
  await world.publish();
  return {appSha, vendorSha};
}

function deployWith(world: SignedWorld, rev: string, extra: string[] = []): Promise<CliRun> {
  return runDeployBin([
    '--root',
    world.root,
    '--repo',
    world.appUrl,
    '--rev',
    rev,
    '--json',
    '--signing-policy',
    world.policy,
    ...extra,
  ]);
}

/** What a refused deploy must leave alone: releases/, current and the release ids. */
async function nodeState(root: string) {
  const releases = await fsp.readdir(path.join(root, 'releases')).catch(() => []);
  const current = await fsp.readlink(path.join(root, 'current')).catch(() => null);
  return {releases: releases.sort(), current};
}

type Signers = {
  app: {principal: string; key: string; object: string; oid: string};
  vendor?: {principal: string; key: string};
};

test('signed by allowed keys: deploys, and release.json, history, status and releases name the signers', async t => {
  const world = await signedWorld(t);
  const {appSha, vendorSha} = await changeset(world, 1, {
    app: world.keys.dev,
    vendor: world.keys.robot,
  });
  const run = await deployWith(world, appSha);
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout) as {releaseId: string; signatures: Signers};
  t.like(result.signatures, {
    app: {principal: DEV, key: world.keys.dev.fingerprint, object: 'commit', oid: appSha},
    vendor: {principal: ROBOT, key: world.keys.robot.fingerprint},
  });
  const meta = await new ReleaseStore(world.root).readMeta(result.releaseId);
  t.deepEqual(meta?.signatures, result.signatures, 'release.json records the verified signers');
  const last = (await readHistory(world.root)).at(-1);
  t.deepEqual(last?.signatures, result.signatures, 'the history line records them too');

  const status = await runDeployBin(['status', '--root', world.root]);
  t.regex(
    status.stdout,
    new RegExp(`signed   app: commit ${appSha.slice(0, 12)} signed by ${DEV}`),
  );
  t.regex(
    status.stdout,
    new RegExp(`signed   vendor: commit ${vendorSha.slice(0, 12)} signed by ${ROBOT}`),
  );
  const json = await runDeployBin(['status', '--root', world.root, '--json']);
  const parsed = JSON.parse(json.stdout) as {current: {signatures: Signers}};
  t.deepEqual(parsed.current.signatures, result.signatures);
  const releases = await runDeployBin(['releases', '--root', world.root]);
  t.regex(releases.stdout, new RegExp(`signed by ${DEV}`));
});

test('refused with exit 14 and nothing written: unsigned, another key, a vendor-only key, an unsigned vendor commit', async t => {
  const world = await signedWorld(t);
  const good = await changeset(world, 1, {app: world.keys.dev, vendor: world.keys.robot});
  t.is((await deployWith(world, good.appSha)).code, 0);
  const before = await nodeState(world.root);
  const cases: Array<[string, {app?: SshKey; vendor?: SshKey}, string, RegExp]> = [
    ['unsigned app commit', {vendor: world.keys.robot}, 'unsigned', /app commit/],
    ['another key', {app: world.keys.other, vendor: world.keys.robot}, 'unknown-key', /app commit/],
    [
      'vendor-only key',
      {app: world.keys.robot, vendor: world.keys.robot},
      'not-allowed',
      /vendor repository only/,
    ],
    ['unsigned vendor commit', {app: world.keys.dev}, 'unsigned', /vendor commit/],
  ];
  let n = 2;
  for (const [what, sign, reason, message] of cases) {
    const {appSha} = await changeset(world, n++, sign);
    const run = await deployWith(world, appSha);
    t.is(run.code, 14, `${what}: ${run.stderr}`);
    const error = (
      JSON.parse(run.stdout) as {error: {code: string; message: string; reason?: string}}
    ).error;
    t.is(error.code, 'ESIGNATURE', what);
    t.regex(error.message, message, what);
    t.is(error.reason, reason, what);
    t.deepEqual(await nodeState(world.root), before, `${what}: releases/ and current unchanged`);
    const last = (await readHistory(world.root)).at(-1);
    t.is(last?.outcome, 'failure', what);
    t.is(last?.error?.code, 'ESIGNATURE', what);
  }
  // The policy from the environment is the same policy.
  const {appSha} = await changeset(world, 9, {vendor: world.keys.robot});
  const env = await runDeployBin(['--root', world.root, '--repo', world.appUrl, '--rev', appSha], {
    DEPLOY_SIGNING_POLICY: world.policy,
  });
  t.is(env.code, 14, env.stderr);
  t.deepEqual(await nodeState(world.root), before);
});

test('a changeset shipping its own signing.json and allowed_signers changes nothing', async t => {
  const world = await signedWorld(t);
  const other = world.keys.other;
  const own = {
    'signing.json': JSON.stringify({
      app: {require: 'commit', allowed_signers: ['allowed_signers']},
      vendor: {require: 'none'},
    }),
    allowed_signers: `${allowedLine('*', other)}\n`,
    '.repodeploy-signing.json': '{}',
  };
  const {appSha} = await changeset(world, 1, {app: other, vendor: world.keys.robot, files: own});
  const run = await deployWith(world, appSha);
  t.is(run.code, 14, run.stderr);
  t.regex(run.stdout, /ESIGNATURE/);
  t.deepEqual(await nodeState(world.root), {releases: [], current: null});
  // A policy the node cannot read stops the deploy before anything is fetched (exit 3).
  const fresh = path.join(world.dir, 'node2');
  const missing = await runDeployBin([
    ...['--root', fresh, '--repo', world.appUrl, '--rev', appSha],
    ...['--signing-policy', path.join(world.dir, 'no-such-policy.json')],
  ]);
  t.is(missing.code, 3, missing.stderr);
  await t.throwsAsync(fsp.access(path.join(fresh, 'repos')));
});

test('require "tag": a signed tag deploys, also when the commit is already in the store; a commit is refused', async t => {
  const world = await signedWorld(t, {app: 'tag'});
  const {appSha} = await changeset(world, 1, {vendor: world.keys.robot});
  const tagOid = await world.app.tag('v1.0.0', {signing: {ssh: world.keys.dev}, email: DEV});
  await world.publish();
  // The commit alone is refused: the policy wants the tag. It is fetched into repos/ all the same.
  const commit = await deployWith(world, appSha);
  t.is(commit.code, 14, commit.stderr);
  t.regex(commit.stdout, /signed annotated tag/);
  // Over HTTP the store already has the commit: the tag object must still be fetched.
  const tagged = await deployWith(world, 'v1.0.0');
  t.is(tagged.code, 0, tagged.stderr);
  const result = JSON.parse(tagged.stdout) as {signatures: Signers};
  t.like(result.signatures.app, {object: 'tag', oid: tagOid, principal: DEV});
  // From a local path too (the node reads the repository directly), the commit already held.
  const local = (rev: string, extra: string[]) =>
    runDeployBin([
      '--root',
      path.join(world.dir, 'node2'),
      '--repo',
      path.join(world.served, 'app.git'),
      '--rev',
      rev,
      '--json',
      ...extra,
    ]);
  t.is((await local(appSha, [])).code, 0);
  // The same commit again, now by its signed tag: --force, as it is live already.
  const fromPath = await local('v1.0.0', ['--signing-policy', world.policy, '--force']);
  t.is(fromPath.code, 0, fromPath.stderr);
  t.like((JSON.parse(fromPath.stdout) as {signatures: Signers}).signatures.app, {oid: tagOid});
});

test('deploy --dry-run names the signers, or the refusal with exit 14', async t => {
  const world = await signedWorld(t);
  const good = await changeset(world, 1, {app: world.keys.dev, vendor: world.keys.robot});
  const plan = await deployWith(world, good.appSha, ['--dry-run']);
  t.is(plan.code, 0, plan.stderr);
  t.like(JSON.parse(plan.stdout), {dryRun: true, signatures: {app: {principal: DEV}}});
  const human = await runDeployBin([
    '--root',
    world.root,
    '--repo',
    world.appUrl,
    '--rev',
    good.appSha,
    '--dry-run',
    '--signing-policy',
    world.policy,
  ]);
  t.regex(
    human.stdout,
    new RegExp(`signed  app: commit ${good.appSha.slice(0, 12)} signed by ${DEV}`),
  );
  const bad = await changeset(world, 2, {app: world.keys.other, vendor: world.keys.robot});
  const refused = await deployWith(world, bad.appSha, ['--dry-run']);
  t.is(refused.code, 14, refused.stderr);
  t.like(JSON.parse(refused.stdout), {ok: false, signatures: {refused: {reason: 'unknown-key'}}});
  t.deepEqual(await nodeState(world.root), {releases: [], current: null});
});

test('deploy check: a refused changeset fails the signatures check (exit 11); a signed one passes', async t => {
  const world = await signedWorld(t);
  const check = (sha: string) =>
    runDeployBin([
      'check',
      '--rev',
      sha,
      '--repo',
      world.appUrl,
      '--json',
      '--no-install',
      '--signing-policy',
      world.policy,
    ]);
  const good = await changeset(world, 1, {app: world.keys.dev, vendor: world.keys.robot});
  const passed = await check(good.appSha);
  t.is(passed.code, 0, passed.stdout);
  const report = JSON.parse(passed.stdout) as {
    checks: Array<{id: string; status: string}>;
    signatures: Signers;
  };
  t.is(report.checks.find(c => c.id === 'signatures')?.status, 'pass');
  t.is(report.signatures.app.principal, DEV);
  const bad = await changeset(world, 2, {app: world.keys.dev});
  const failed = await check(bad.appSha);
  t.is(failed.code, 11, failed.stdout);
  const item = (
    JSON.parse(failed.stdout) as {checks: Array<{id: string; status: string; message: string}>}
  ).checks.find(c => c.id === 'signatures');
  t.is(item?.status, 'fail');
  t.regex(item?.message ?? '', /vendor commit/);
  // Without a policy the check is not part of the report.
  const plain = await runDeployBin([
    'check',
    '--rev',
    bad.appSha,
    '--repo',
    world.appUrl,
    '--json',
    '--no-install',
  ]);
  t.false(plain.stdout.includes('"signatures"') && plain.stdout.includes('"id":"signatures"'));
});

test('bundles: deploy bundle verifies and records the signers; a node with a policy refuses a bundle without them', async t => {
  const world = await signedWorld(t);
  const {appSha} = await changeset(world, 1, {app: world.keys.dev, vendor: world.keys.robot});
  const signed = path.join(world.dir, 'signed.tar.gz');
  const made = await runDeployBin([
    'bundle',
    '--rev',
    appSha,
    '--repo',
    world.appUrl,
    '--out',
    signed,
    '--json',
    '--signing-policy',
    world.policy,
  ]);
  t.is(made.code, 0, made.stderr);
  t.like(JSON.parse(made.stdout), {
    signatures: {app: {principal: DEV}, vendor: {principal: ROBOT}},
  });
  const deployBundle = (file: string, root: string) =>
    runDeployBin([
      '--root',
      root,
      '--bundle',
      file,
      '--sha256-file',
      `${file}.sha256`,
      '--json',
      '--signing-policy',
      world.policy,
    ]);
  const ok = await deployBundle(signed, world.root);
  t.is(ok.code, 0, ok.stderr);
  t.like(JSON.parse(ok.stdout), {signatures: {app: {principal: DEV}}});

  const plain = path.join(world.dir, 'plain.tar.gz');
  t.is(
    (await runDeployBin(['bundle', '--rev', appSha, '--repo', world.appUrl, '--out', plain])).code,
    0,
  );
  const root2 = path.join(world.dir, 'node2');
  const refused = await deployBundle(plain, root2);
  t.is(refused.code, 14, refused.stderr);
  t.regex(refused.stdout, /records no verified signer/);
  t.deepEqual(await nodeState(root2), {releases: [], current: null});

  // A changeset the policy refuses makes no bundle at all.
  const bad = await changeset(world, 2, {app: world.keys.other, vendor: world.keys.robot});
  const none = path.join(world.dir, 'bad.tar.gz');
  const badRun = await runDeployBin([
    'bundle',
    '--rev',
    bad.appSha,
    '--repo',
    world.appUrl,
    '--out',
    none,
    '--signing-policy',
    world.policy,
  ]);
  t.is(badRun.code, 14, badRun.stderr);
  await t.throwsAsync(fsp.access(none));
});
