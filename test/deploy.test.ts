import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test from 'ava';
import {
  ConfigError,
  ExitCode,
  IntegrityError,
  RevError,
  SourceError,
} from '../lib/support/errors.js';
import {readHistory} from '../lib/node/history.js';
import {status} from '../lib/node/status.js';
import {gitArchive} from './helpers/repos.js';
import {fingerprint, snapshotTree} from './helpers/tree.js';
import {
  makeWorld,
  pinVendor,
  runDeploy,
  runDeployBin,
  writeSampleApp,
  type World,
} from './helpers/world.js';

/** Vendor repo with a couple of artifacts; app pinning it through deploy.json. */
async function pinnedWorld(t: Parameters<typeof makeWorld>[0]) {
  const world = await makeWorld(t);
  await world.vendor.write({
    'npm/left-pad-1.3.0.tgz': {content: Buffer.from([0x1f, 0x8b, 0, 1, 2, 3, 4, 5])},
    'MANIFEST.json': '{"format": 1, "artifacts": []}\n',
    'tools/run.sh': {content: '#!/bin/sh\n', mode: 0o755},
  });
  const {vendorSha, appSha: v1} = await pinVendor(world, {
    sample: true,
    vendorMessage: 'vendor: first artifacts',
    appMessage: 'app v1',
    tag: {name: 'v1.0.0', annotated: true},
  });
  return {world, vendorSha, v1};
}

async function assertCurrentMatches(
  t: Parameters<typeof makeWorld>[0],
  world: World,
  appSha: string,
  vendorSha: string | undefined,
) {
  const expectedApp = path.join(world.dir, `expected-app-${appSha}`);
  await gitArchive(world.app.dir, appSha, expectedApp);
  const current = path.join(world.root, 'current');
  const appSnapshot = await snapshotTree(current, [
    '.repodeploy',
    ...(vendorSha ? ['vendor'] : []),
  ]);
  const expectedSnapshot = await snapshotTree(expectedApp, vendorSha ? ['vendor'] : []);
  t.deepEqual(appSnapshot, expectedSnapshot, 'current/ equals git archive of the app');
  if (vendorSha) {
    const expectedVendor = path.join(world.dir, `expected-vendor-${vendorSha}`);
    await gitArchive(world.vendor.dir, vendorSha, expectedVendor);
    t.deepEqual(
      await snapshotTree(path.join(current, 'vendor')),
      await snapshotTree(expectedVendor),
      'current/vendor/ equals git archive of the vendor repo at the pin',
    );
  }
}

test('deploys an annotated tag with a deploy.json pin: app and vendor trees equal git archive', async t => {
  const {world, vendorSha, v1} = await pinnedWorld(t);
  const result = await runDeploy({root: world.root, rev: 'v1.0.0', repo: world.appUrl});

  t.is(result.app.sha, v1);
  t.is(result.vendor?.sha, vendorSha);
  t.is(result.vendor?.source, 'deploy.json');
  t.regex(result.releaseId, new RegExp(`^\\d{8}T\\d{6}Z-${v1.slice(0, 7)}$`));
  t.is(await fsp.readlink(path.join(world.root, 'current')), `releases/${result.releaseId}`);
  await assertCurrentMatches(t, world, v1, vendorSha);

  const stat = await fsp.stat(path.join(world.root, 'current/bin/start.sh'));
  t.true((stat.mode & 0o111) !== 0, 'executable bit kept');
  t.is(await fsp.readlink(path.join(world.root, 'current/config/current.ini')), '../src/server.js');

  const meta = JSON.parse(
    await fsp.readFile(path.join(world.root, 'current/.repodeploy/release.json'), 'utf8'),
  ) as Record<string, unknown>;
  t.like(meta, {
    id: result.releaseId,
    state: 'live',
    user: 'tester',
    host: 'test-node',
    app: {url: world.appUrl, requested: 'v1.0.0', sha: v1},
    vendor: {url: world.vendorUrl, sha: vendorSha, source: 'deploy.json'},
    tool: {name: 'repodeploy'},
  });

  const history = await readHistory(world.root);
  t.is(history.length, 1);
  t.like(history[0], {
    outcome: 'success',
    requestedRev: 'v1.0.0',
    appSha: v1,
    vendorSha,
    releaseId: result.releaseId,
  });
});

test('deploys a short sha and a branch, recording the full sha [R25]', async t => {
  const {world, v1} = await pinnedWorld(t);
  await world.app.write({'src/server.js': "console.log('v2');\n"});
  const v2 = await world.app.commit('app v2');
  await world.app.git('branch', 'release', v1);
  await world.publish();

  const byShort = await runDeploy({root: world.root, rev: v1.slice(0, 9), repo: world.appUrl});
  t.is(byShort.app.sha, v1);
  const byBranch = await runDeploy({root: world.root, rev: 'main'});
  t.is(byBranch.app.sha, v2);
  await assertCurrentMatches(t, world, v2, byBranch.vendor?.sha);
  const byOtherBranch = await runDeploy({root: world.root, rev: 'release'});
  t.is(byOtherBranch.app.sha, v1);

  const history = await readHistory(world.root);
  t.deepEqual(
    history.map(h => [h.requestedRev, h.appSha]),
    [
      [v1.slice(0, 9), v1],
      ['main', v2],
      ['release', v1],
    ],
  );
  const meta = await status({root: world.root});
  t.is(meta.releases.length, 3);
  t.is(meta.current?.appSha, v1);
  t.is(meta.current?.requestedRev, 'release');
});

test('deploys a vendor pin given as a submodule at vendor/ with a relative URL', async t => {
  const world = await makeWorld(t);
  await world.vendor.write({'pypi/pkg-1.0-py3-none-any.whl': 'wheel bytes\n'});
  const vendorSha = await world.vendor.commit('vendor');
  await writeSampleApp(world.app);
  await world.app.addSubmodule('vendor', '../vendor.git', vendorSha);
  const appSha = await world.app.commit('app with submodule');
  await world.publish();

  const result = await runDeploy({root: world.root, rev: appSha, repo: world.appUrl});
  t.is(result.vendor?.sha, vendorSha);
  t.is(result.vendor?.source, 'submodule');
  t.is(result.vendor?.url, world.vendorUrl);
  await assertCurrentMatches(t, world, appSha, vendorSha);
});

test('an app without a pin deploys without a vendor tree', async t => {
  const world = await makeWorld(t);
  await writeSampleApp(world.app);
  const sha = await world.app.commit('no pin');
  await world.vendor.commit('unused');
  await world.publish();
  const result = await runDeploy({root: world.root, rev: sha, repo: world.appUrl});
  t.is(result.vendor, null);
  await t.throwsAsync(fsp.access(path.join(world.root, 'current/vendor')));
  await assertCurrentMatches(t, world, sha, undefined);
});

test('a second deploy fetches only the new objects', async t => {
  const {world} = await pinnedWorld(t);
  for (let i = 0; i < 40; i++)
    await world.app.write({[`src/module${i}.js`]: `export const n = ${i};\n`});
  const big = await world.app.commit('many files');
  await world.publish();
  const first = await runDeploy({root: world.root, rev: big, repo: world.appUrl});
  t.true(first.app.fetch.objects > 40, `first fetch had ${first.app.fetch.objects} objects`);

  await world.app.write({'src/module7.js': 'export const n = 700;\n'});
  const next = await world.app.commit('one file changed');
  await world.publish();
  const second = await runDeploy({root: world.root, rev: 'main'});
  t.is(second.app.sha, next);
  // One commit, the root tree, src/ and one blob: nothing the node already had.
  t.is(second.app.fetch.objects, 4);
  t.true(second.app.fetch.bytes < first.app.fetch.bytes);
  t.false(second.vendor?.fetch.fetched, 'vendor pin unchanged: nothing fetched');
  await assertCurrentMatches(t, world, next, second.vendor?.sha);

  // Redeploying a commit the node already holds asks the server for no pack at all.
  const before = world.server.requests.filter(r => r.path.endsWith('git-upload-pack')).length;
  const again = await runDeploy({root: world.root, rev: big});
  t.false(again.app.fetch.fetched);
  t.is(world.server.requests.filter(r => r.path.endsWith('git-upload-pack')).length, before);
});

test('an unknown rev fails clearly and leaves the node untouched', async t => {
  const {world} = await pinnedWorld(t);
  await runDeploy({root: world.root, rev: 'v1.0.0', repo: world.appUrl});
  const before = await fingerprint(path.join(world.root));
  const error = await t.throwsAsync(runDeploy({root: world.root, rev: 'no-such-branch'}), {
    instanceOf: RevError,
  });
  t.regex(error.message, /Unknown rev "no-such-branch"/);
  t.regex(error.hint ?? '', /main/);
  const after = await fingerprint(world.root);
  delete before['history.jsonl'];
  delete after['history.jsonl'];
  t.deepEqual(
    Object.fromEntries(Object.entries(after).filter(([k]) => !k.startsWith('repos/'))),
    Object.fromEntries(Object.entries(before).filter(([k]) => !k.startsWith('repos/'))),
  );
  const history = await readHistory(world.root);
  t.like(history.at(-1), {
    outcome: 'failure',
    requestedRev: 'no-such-branch',
    error: {code: 'EREV'},
  });
});

test('an ambiguous rev names every commit it could be', async t => {
  const {world, v1} = await pinnedWorld(t);
  await world.app.write({'x.txt': 'x\n'});
  const v2 = await world.app.commit('v2');
  await world.app.git('branch', 'v1.0.0', v2);
  await world.publish();
  const error = await t.throwsAsync(
    runDeploy({root: world.root, rev: 'v1.0.0', repo: world.appUrl}),
    {
      instanceOf: RevError,
    },
  );
  t.regex(error.message, /Ambiguous rev "v1.0.0"/);
  t.true(error.message.includes(v1.slice(0, 12)) && error.message.includes(v2.slice(0, 12)));
  await t.throwsAsync(fsp.access(path.join(world.root, 'releases')));
});

test('an unreachable vendor commit fails before any release is made [R7]', async t => {
  const {world} = await pinnedWorld(t);
  await runDeploy({root: world.root, rev: 'v1.0.0', repo: world.appUrl});
  const releasesBefore = await fingerprint(path.join(world.root, 'releases'));
  const currentBefore = await fsp.readlink(path.join(world.root, 'current'));

  const missing = 'f'.repeat(40);
  await world.app.write({
    'deploy.json': JSON.stringify({vendor: {url: '../vendor.git', rev: missing}}),
  });
  await world.app.commit('pin a vendor commit that was never pushed');
  await world.publish();
  const error = await t.throwsAsync(runDeploy({root: world.root, rev: 'main'}), {
    instanceOf: SourceError,
  });
  t.regex(error.message, new RegExp(`vendor commit ${missing}`));
  t.regex(error.message, /not in/);
  t.deepEqual(await fingerprint(path.join(world.root, 'releases')), releasesBefore);
  t.is(await fsp.readlink(path.join(world.root, 'current')), currentBefore);
});

const badConfigs: Array<[string, unknown, RegExp]> = [
  [
    'an unknown key',
    {vendor: {url: '../vendor.git', rev: 'a'.repeat(40)}, vendro: {}},
    /unknown key "vendro"/,
  ],
  ['a wrong type', {vendor: {url: 42, rev: 'a'.repeat(40)}}, /"vendor\.url"/],
  [
    'a branch as the pin',
    {vendor: {url: '../vendor.git', rev: 'main'}},
    /"vendor\.rev" must be a full 40-hex commit id/,
  ],
  ['a short sha as the pin', {vendor: {url: '../vendor.git', rev: 'abcdef1'}}, /full 40-hex/],
];

for (const [name, config, expected] of badConfigs) {
  test(`deploy.json with ${name} is refused, naming the key`, async t => {
    const {world} = await pinnedWorld(t);
    await runDeploy({root: world.root, rev: 'v1.0.0', repo: world.appUrl});
    const before = await fingerprint(path.join(world.root, 'releases'));
    await world.app.write({'deploy.json': JSON.stringify(config)});
    await world.app.commit(`bad deploy.json: ${name}`);
    await world.publish();
    const error = await t.throwsAsync(runDeploy({root: world.root, rev: 'main'}), {
      instanceOf: ConfigError,
    });
    t.regex(error.message, expected);
    t.deepEqual(await fingerprint(path.join(world.root, 'releases')), before);
  });
}

test('deploy.json that is not JSON is refused', async t => {
  const world = await makeWorld(t);
  await writeSampleApp(world.app, {'deploy.json': '{"vendor": '});
  const sha = await world.app.commit('broken json');
  await world.publish();
  const error = await t.throwsAsync(runDeploy({root: world.root, rev: sha, repo: world.appUrl}), {
    instanceOf: ConfigError,
  });
  t.regex(error.message, /not valid JSON/);
});

test('deploy with a key twice in deploy.json is refused, naming the key, and nothing is written', async t => {
  const {world, vendorSha} = await pinnedWorld(t);
  await runDeploy({root: world.root, rev: 'v1.0.0', repo: world.appUrl});
  const before = await fingerprint(path.join(world.root, 'releases'));
  const pin = JSON.stringify({url: '../vendor.git', rev: vendorSha});
  await world.app.write({
    'deploy.json': `{"vendor": ${pin}, "install": {"type": "npm", "type": "pip"}}\n`,
  });
  await world.app.commit('install.type twice');
  await world.publish();
  const run = await runDeployBin(['--rev', 'main', '--root', world.root]);
  t.is(run.code, ExitCode.config, run.stderr);
  t.regex(run.stderr, /deploy\.json at [0-9a-f]{7,} is invalid: "install\.type" appears twice/);
  t.deepEqual(await fingerprint(path.join(world.root, 'releases')), before);
});

test('deploy.json that starts with a UTF-8 BOM deploys', async t => {
  const {world, vendorSha} = await pinnedWorld(t);
  await world.app.write({
    'deploy.json': `\uFEFF${JSON.stringify({vendor: {url: '../vendor.git', rev: vendorSha}})}\n`,
  });
  const sha = await world.app.commit('deploy.json saved with a BOM');
  await world.publish();
  const result = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  t.is(result.app.sha, sha);
  t.is(result.vendor?.sha, vendorSha);
});

test('deploys from local paths (work tree app, bare vendor) and remembers the repo', async t => {
  const world = await makeWorld(t);
  await world.vendor.write({'npm/a.tgz': 'a\n'});
  const vendorSha = await world.vendor.commit('vendor');
  const vendorBare = await world.vendor.publish(path.join(world.dir, 'vendor-bare.git'));
  await writeSampleApp(world.app, {
    // A path relative to the app repository (a changeset may not name an absolute path).
    'deploy.json': JSON.stringify({
      vendor: {url: path.relative(world.app.dir, vendorBare), rev: vendorSha},
    }),
  });
  const v1 = await world.app.commit('v1');
  const first = await runDeploy({root: world.root, rev: 'main', repo: world.app.dir});
  t.is(first.app.sha, v1);
  t.true(first.app.fetch.objects > 5);
  await assertCurrentMatches(t, world, v1, vendorSha);

  await world.app.write({'src/server.js': "console.log('v2');\n"});
  const v2 = await world.app.commit('v2');
  const second = await runDeploy({root: world.root, rev: v2.slice(0, 8)});
  t.is(second.app.sha, v2);
  t.is(second.app.fetch.objects, 4, 'only the new commit, two trees and one blob were copied');
  await assertCurrentMatches(t, world, v2, vendorSha);
});

test('a --vendor-repo override fetches the pin from a mirror', async t => {
  const {world, vendorSha} = await pinnedWorld(t);
  await world.vendor.publish(path.join(world.servedDir, 'mirror', 'vendor.git'));
  await fsp.rm(path.join(world.servedDir, 'vendor.git'), {recursive: true});
  await t.throwsAsync(runDeploy({root: world.root, rev: 'v1.0.0', repo: world.appUrl}), {
    instanceOf: SourceError,
  });
  const result = await runDeploy({
    root: world.root,
    rev: 'v1.0.0',
    vendorRepo: world.server.repoUrl('mirror/vendor.git'),
  });
  t.is(result.vendor?.sha, vendorSha);
  t.is(result.vendor?.url, world.server.repoUrl('mirror/vendor.git'));
});

for (const evilName of ['.GIT', '..', '.git', 'git~1']) {
  test(`a tree entry named ${JSON.stringify(evilName)} is refused before anything is written [R13]`, async t => {
    const world = await makeWorld(t);
    await writeSampleApp(world.app);
    await world.app.commit('good');
    const blob = await world.app.git('hash-object', '-w', path.join(world.app.dir, 'README.md'));
    // Built with plumbing: porcelain git would never make such a tree.
    const evilFile = path.join(world.dir, 'evil-config');
    await fsp.writeFile(evilFile, '[core]\n\tfsmonitor = touch /tmp/pwned\n');
    const evilBlob = await world.app.git('hash-object', '-w', evilFile);
    const sub = await mktree(world, `100644 blob ${evilBlob}\tconfig\n`);
    const tree = await mktree(
      world,
      `040000 tree ${sub}\t${evilName}\n100644 blob ${blob}\tok.txt\n`,
    );
    const commit = await world.app.git('commit-tree', tree, '-p', 'HEAD', '-m', 'evil');
    await world.app.git('update-ref', 'refs/heads/evil', commit);
    await world.publish();
    const error = await t.throwsAsync(
      runDeploy({root: world.root, rev: 'evil', repo: world.appUrl}),
      {
        instanceOf: IntegrityError,
      },
    );
    t.true(error.message.includes(JSON.stringify(evilName)), error.message);
    await t.throwsAsync(
      fsp.access(path.join(world.root, 'releases')),
      undefined,
      'no release dir was made',
    );
  });
}

async function mktree(world: World, spec: string): Promise<string> {
  const {execFile} = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = execFile('git', ['mktree'], {cwd: world.app.dir}, (error, stdout) => {
      if (error) reject(new Error(`git mktree failed: ${error.message}`));
      else resolve(stdout.trim());
    });
    child.stdin?.end(spec);
  });
}
