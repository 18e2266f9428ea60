import {createHash} from 'node:crypto';
import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {promisify} from 'node:util';
import anyTest, {type ExecutionContext, type TestFn} from 'ava';
import {IntegrityError} from '../lib/support/errors.js';
import {createHttpClient} from '../lib/http/client.js';
import {currentPlatform} from '../lib/pins/npm-lockfile.js';
import {silentReporter} from '../lib/support/reporter.js';
import {readVendorManifest} from '../lib/pins/vendor-manifest.js';
import {Http} from '../vendor-sync/http.js';
import {githubClient} from '../lib/http/github.js';
import {vendorSync, type SyncOptions} from '../vendor-sync/sync.js';
import {startFakeGithub, type FakeGithub} from './helpers/github-server.js';
import {lockedApp, startRegistry, type Registry} from './helpers/npm-registry.js';
import {startPypiIndex, type PypiIndex} from './helpers/pypi-index.js';
import {git} from './helpers/repos.js';
import {fingerprint} from './helpers/tree.js';
import {makeWorld, packageRoot, runDeploy, type World} from './helpers/world.js';

const exec = promisify(execFile);

type Shared = {
  dir: string;
  registry: Registry;
  lock100: string;
  lock110: string;
  lockNoGreet: string;
  wheels: string;
  requirements: string;
};
const test = anyTest as TestFn<Shared>;
type T = ExecutionContext<Shared>;

const toolBytes = Buffer.from('#!/bin/sh\necho prebuilt tool v1\n');
const toolSha = createHash('sha256').update(toolBytes).digest('hex');
const APP_PACKAGE = {name: 'sample', version: '1.0.0', private: true};

test.before(async t => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-vendor-sync-'));
  const registry = await startRegistry(path.join(dir, 'registry'));
  for (const version of ['1.0.0', '1.1.0']) {
    await registry.publish({
      name: '@demo/left-util',
      version,
      files: {'index.js': `exports.version = '${version}';\n`},
    });
  }
  await registry.publish({
    name: 'greet-lib',
    version: '1.0.0',
    dependencies: {'@demo/left-util': '^1.0.0'},
    files: {
      'index.js':
        "exports.greet = n => 'hello ' + n + ' with ' + require('@demo/left-util').version;\n",
    },
  });
  const lockFor = (name: string, dependencies: Record<string, string>) =>
    lockedApp(registry, path.join(dir, name), {...APP_PACKAGE, dependencies}, 2);
  const lock100 = await lockFor('lock100', {'greet-lib': '1.0.0', '@demo/left-util': '1.0.0'});
  const lock110 = await lockFor('lock110', {'greet-lib': '1.0.0', '@demo/left-util': '1.1.0'});
  const lockNoGreet = await lockFor('lockNoGreet', {'@demo/left-util': '1.1.0'});
  const built = path.join(dir, 'built');
  const requirements = path.join(dir, 'requirements.txt');
  await exec('python3', [
    path.join(packageRoot, 'examples/python-app/build_vendor.py'),
    built,
    requirements,
  ]);
  const wheels = path.join(dir, 'wheels');
  await fsp.cp(path.join(built, 'pypi'), wheels, {recursive: true});
  // A newer upload on the index, for `outdated`.
  await fsp.copyFile(
    path.join(wheels, 'hello_mod-1.0-py3-none-any.whl'),
    path.join(wheels, 'hello_mod-1.1-py3-none-any.whl'),
  );
  t.context = {dir, registry, lock100, lock110, lockNoGreet, wheels, requirements};
});

test.after.always(async t => {
  await t.context.registry.close();
  await fsp.rm(t.context.dir, {recursive: true, force: true});
});

type SyncWorld = World & {
  github: FakeGithub;
  index: PypiIndex;
  sync: (o?: Partial<SyncOptions>) => ReturnType<typeof vendorSync>;
};

async function syncWorld(t: T, kind: 'npm' | 'pip' = 'npm'): Promise<SyncWorld> {
  const world = await makeWorld(t, {allowPush: true});
  const github = await startFakeGithub({token: 'gh-test-token-123'});
  t.teardown(() => github.close());
  github.releases.set('acme/tool', [
    {tag: 'v1.0.0', assets: [{name: 'tool-linux-x64', data: toolBytes}]},
  ]);
  const index = await startPypiIndex(t.context.wheels);
  t.teardown(() => index.close());

  await world.vendor.write({'README.md': 'vendor repository\n'});
  const vendorSha = await world.vendor.commit('start');
  await world.vendor.publish(path.join(world.servedDir, 'vendor.git'));
  await world.vendor.git('remote', 'add', 'origin', world.vendorUrl);

  if (kind === 'npm') {
    await useLockfile(world, t.context.lock100);
    await world.app.write({
      'index.js': "console.log(require('greet-lib').greet('node'));\n",
      'deploy.json': JSON.stringify(
        {
          vendor: {url: '../vendor.git', rev: vendorSha},
          install: {type: 'npm', registries: [t.context.registry.url]},
          assets: [{repo: 'acme/tool', tag: 'v1.0.0', name: 'tool-linux-x64', sha256: toolSha}],
        },
        null,
        2,
      ),
    });
  } else {
    await fsp.copyFile(t.context.requirements, path.join(world.app.dir, 'requirements.txt'));
    await world.app.write({
      'deploy.json': JSON.stringify(
        {vendor: {url: '../vendor.git', rev: vendorSha}, install: 'pip'},
        null,
        2,
      ),
    });
  }
  await world.app.commit('app');
  await world.app.publish(path.join(world.servedDir, 'app.git'));

  const sync = (overrides: Partial<SyncOptions> = {}) =>
    vendorSync(
      {
        app: world.app.dir,
        vendor: world.vendor.dir,
        keepUnused: false,
        dryRun: false,
        push: false,
        updatePin: false,
        pr: undefined,
        platforms: [currentPlatform()],
        concurrency: 8,
        ...overrides,
      },
      {
        http: new Http({backoffMs: 10}),
        gitHttp: createHttpClient(),
        gitCredentials: undefined,
        upstreams: {
          npm: {registry: undefined, scopes: new Map()},
          pypiIndex: index.url,
          github: () => githubClient({apiUrl: github.apiUrl, token: 'gh-test-token-123'}),
          githubToken: 'gh-test-token-123',
        },
        reporter: silentReporter,
        progressStream: process.stderr,
        cwd: world.dir,
        clock: () => new Date('2026-11-28T10:00:00Z'),
        author: {name: 'Vendor Bot', email: 'bot@example.invalid'},
      },
    );
  return {...world, github, index, sync};
}

async function useLockfile(world: World, from: string): Promise<void> {
  await fsp.copyFile(path.join(from, 'package.json'), path.join(world.app.dir, 'package.json'));
  await fsp.copyFile(
    path.join(from, 'package-lock.json'),
    path.join(world.app.dir, 'package-lock.json'),
  );
}

async function lastCommitMessage(dir: string): Promise<string> {
  return git(dir, ['log', '-1', '--format=%B']);
}

test('first sync vendors npm tarballs and a GitHub asset, verified; a second run downloads nothing [R21]', async t => {
  const world = await syncWorld(t);
  const first = await world.sync();
  t.is(first.downloads, 3);
  t.deepEqual(
    first.changes
      .map(c =>
        c.kind === 'added'
          ? `${c.artifact.ecosystem} ${c.artifact.name} ${c.artifact.version}`
          : c.kind,
      )
      .sort(),
    ['github acme/tool/tool-linux-x64 v1.0.0', 'npm @demo/left-util 1.0.0', 'npm greet-lib 1.0.0'],
  );
  const manifest = await readVendorManifest(world.vendor.dir);
  t.deepEqual(
    manifest.artifacts.map(a => a.path),
    [
      'github/acme/tool/v1.0.0/tool-linux-x64',
      'npm/@demo/left-util/left-util-1.0.0.tgz',
      'npm/greet-lib/greet-lib-1.0.0.tgz',
    ],
  );
  t.deepEqual(
    await fsp.readFile(path.join(world.vendor.dir, 'github/acme/tool/v1.0.0/tool-linux-x64')),
    toolBytes,
  );
  const message = await lastCommitMessage(world.vendor.dir);
  t.regex(message, /^vendor-sync: 3 added/);
  t.regex(
    message,
    /Added:\n {2}github acme\/tool\/tool-linux-x64 v1\.0\.0\n {2}npm @demo\/left-util 1\.0\.0\n {2}npm greet-lib 1\.0\.0/,
  );
  t.is(
    await git(world.vendor.dir, ['status', '--porcelain']),
    '',
    'everything written is committed',
  );
  t.is(first.vendorCommit, await git(world.vendor.dir, ['rev-parse', 'HEAD']));

  // The token went to the API only, never to the storage host the asset redirect points at.
  t.true(world.github.requests.some(r => r.host === 'api' && r.authorized));
  const storage = world.github.requests.filter(r => r.host === 'storage');
  t.is(storage.length, 1);
  t.false(storage[0]?.authorized);

  // The storage host named the file "../../escaped-..." in Content-Disposition: ignored.
  const everywhere = await fsp.readdir(world.dir, {recursive: true});
  t.deepEqual(
    everywhere.filter(name => name.includes('escaped-')),
    [],
  );

  const again = await world.sync();
  t.is(again.downloads, 0);
  t.is(again.kept, 3);
  t.deepEqual(again.changes, []);
  t.is(again.vendorCommit, first.vendorCommit, 'no new commit');
  t.is(await git(world.vendor.dir, ['status', '--porcelain']), '', 'nothing staged or changed');
  t.is(
    world.github.requests.filter(r => r.host === 'storage').length,
    1,
    'nothing downloaded again',
  );
});

test('a lockfile bump updates old → new and drops what nothing needs; --keep keeps it', async t => {
  const world = await syncWorld(t);
  await world.sync();
  await useLockfile(world, t.context.lock110);
  const bumped = await world.sync();
  t.deepEqual(
    bumped.changes.map(c =>
      c.kind === 'updated' ? `${c.to.name}: ${c.from.version} → ${c.to.version}` : c.kind,
    ),
    ['@demo/left-util: 1.0.0 → 1.1.0'],
  );
  t.regex(
    await lastCommitMessage(world.vendor.dir),
    /Updated:\n {2}npm @demo\/left-util: 1\.0\.0 → 1\.1\.0/,
  );
  await t.throwsAsync(
    fsp.access(path.join(world.vendor.dir, 'npm/@demo/left-util/left-util-1.0.0.tgz')),
  );

  await useLockfile(world, t.context.lockNoGreet);
  const kept = await world.sync({keepUnused: true});
  t.deepEqual(kept.changes, []);
  const dropped = await world.sync();
  t.deepEqual(
    dropped.changes.map(c => (c.kind === 'removed' ? `removed ${c.artifact.name}` : c.kind)),
    ['removed greet-lib'],
  );
  t.regex(await lastCommitMessage(world.vendor.dir), /Removed:\n {2}npm greet-lib 1\.0\.0/);
  await t.throwsAsync(
    fsp.access(path.join(world.vendor.dir, 'npm/greet-lib')),
    undefined,
    'empty folders go too',
  );
});

test('bytes that do not match the pinned hash are refused and nothing is written', async t => {
  const world = await syncWorld(t);
  const lockPath = path.join(world.app.dir, 'package-lock.json');
  const lock = JSON.parse(await fsp.readFile(lockPath, 'utf8')) as {
    packages: Record<string, {integrity?: string}>;
  };
  const entry = lock.packages['node_modules/greet-lib'];
  if (entry) entry.integrity = `sha512-${Buffer.alloc(64, 1).toString('base64')}`;
  await fsp.writeFile(lockPath, JSON.stringify(lock, null, 2));
  const before = await fingerprint(world.vendor.dir);
  const error = await t.throwsAsync(world.sync(), {instanceOf: IntegrityError});
  t.regex(error.message, /greet-lib-1\.0\.0\.tgz does not match the hash the app pins/);
  const after = await fingerprint(world.vendor.dir);
  const changed = Object.keys({...before, ...after}).filter(
    k => !k.startsWith('.git') && after[k] !== before[k],
  );
  t.deepEqual(changed, [], 'the work tree is as it was: no partial download kept');
  t.is(await git(world.vendor.dir, ['rev-list', '--count', 'HEAD']), '1', 'no commit');
});

test('an upstream re-publish (same version, other bytes) is refused, never overwritten [R26]', async t => {
  const world = await syncWorld(t);
  await world.sync();
  const tarball = path.join(world.vendor.dir, 'npm/@demo/left-util/left-util-1.0.0.tgz');
  const vendored = await fsp.readFile(tarball);
  const lockPath = path.join(world.app.dir, 'package-lock.json');
  const lock = JSON.parse(await fsp.readFile(lockPath, 'utf8')) as {
    packages: Record<string, {integrity?: string}>;
  };
  const entry = lock.packages['node_modules/@demo/left-util'];
  if (entry) entry.integrity = `sha512-${Buffer.alloc(64, 2).toString('base64')}`;
  await fsp.writeFile(lockPath, JSON.stringify(lock, null, 2));
  const error = await t.throwsAsync(world.sync(), {instanceOf: IntegrityError});
  t.regex(error.message, /Refused to overwrite vendored artifacts/);
  t.regex(error.message, /npm @demo\/left-util@1\.0\.0: vendored as sha512-/);
  t.deepEqual(await fsp.readFile(tarball), vendored);
});

test('--dry-run prints the plan and changes nothing', async t => {
  const world = await syncWorld(t);
  const before = await fingerprint(world.vendor.dir);
  const plan = await world.sync({dryRun: true});
  t.true(plan.dryRun);
  t.is(plan.downloads, 3);
  t.is(plan.vendorCommit, null);
  t.deepEqual(await fingerprint(world.vendor.dir), before);
  t.is(world.github.requests.filter(r => r.host === 'storage').length, 0);
});

test('--push, --update-pin, then a deploy installs offline from what vendor-sync wrote', async t => {
  const world = await syncWorld(t);
  const result = await world.sync({push: true, updatePin: true});
  t.true(result.pushed);
  t.is(result.pin, 'deploy.json');
  const served = await git(path.join(world.servedDir, 'vendor.git'), [
    'rev-parse',
    'refs/heads/main',
  ]);
  t.is(served, result.vendorCommit ?? '');
  const config = JSON.parse(
    await fsp.readFile(path.join(world.app.dir, 'deploy.json'), 'utf8'),
  ) as {vendor: {rev: string}};
  t.is(config.vendor.rev, result.vendorCommit ?? '');

  await world.app.commit('pin the new vendor commit');
  await world.app.publish(path.join(world.servedDir, 'app.git'));
  const deployed = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  t.is(deployed.vendor?.sha, result.vendorCommit ?? undefined);
  const {stdout} = await exec(process.execPath, [path.join(world.root, 'current', 'index.js')]);
  t.is(stdout.trim(), 'hello node with 1.0.0');
  t.deepEqual(
    await fsp.readFile(
      path.join(world.root, 'current/vendor/github/acme/tool/v1.0.0/tool-linux-x64'),
    ),
    toolBytes,
  );

  // A release asset altered in the vendor repo is refused by the deploy before anything is installed.
  await fsp.writeFile(
    path.join(world.vendor.dir, 'github/acme/tool/v1.0.0/tool-linux-x64'),
    'tampered\n',
  );
  const tampered = await world.vendor.commit('tamper with the tool');
  await world.vendor.publish(path.join(world.servedDir, 'vendor.git'));
  config.vendor.rev = tampered;
  await world.app.write({'deploy.json': JSON.stringify(config, null, 2)});
  await world.app.commit('pin the tampered vendor commit');
  await world.app.publish(path.join(world.servedDir, 'app.git'));
  await t.throwsAsync(runDeploy({root: world.root, rev: 'main'}), {
    instanceOf: IntegrityError,
    message: /github acme\/tool\/tool-linux-x64@v1\.0\.0 .*do not match the pinned hash/,
  });
  t.is(await fsp.readlink(path.join(world.root, 'current')), `releases/${deployed.releaseId}`);
});

test('--pr pushes a branch and opens a pull request with a table, then updates it instead of opening another', async t => {
  const world = await syncWorld(t);
  const pr = {repo: 'acme/vendor', branch: 'vendor-sync/update', base: 'main'};
  const first = await world.sync({pr});
  t.like(first.pullRequest, {number: 1, created: true});
  const [opened] = world.github.pulls.get('acme/vendor') ?? [];
  t.like(opened, {head: 'vendor-sync/update', base: 'main', state: 'open'});
  t.regex(opened?.body ?? '', /\| Package \| Ecosystem \| Change \| Source \|/);
  t.regex(
    opened?.body ?? '',
    /\| `@demo\/left-util` \| npm \| added 1\.0\.0 \| \[127\.0\.0\.1:\d+\]\(http:\/\/127\.0\.0\.1:\d+\/@demo\/left-util\/-\/left-util-1\.0\.0\.tgz\) \|/,
  );
  t.is(
    await git(path.join(world.servedDir, 'vendor.git'), [
      'rev-parse',
      'refs/heads/vendor-sync/update',
    ]),
    first.vendorCommit ?? '',
  );

  await useLockfile(world, t.context.lock110);
  const second = await world.sync({pr});
  t.like(second.pullRequest, {number: 1, created: false});
  const prs = world.github.pulls.get('acme/vendor') ?? [];
  t.is(prs.length, 1, 'updated, not duplicated');
  t.regex(prs[0]?.body ?? '', /\| `@demo\/left-util` \| npm \| 1\.0\.0 → 1\.1\.0 \|/);
  t.is(
    await git(path.join(world.servedDir, 'vendor.git'), [
      'rev-parse',
      'refs/heads/vendor-sync/update',
    ]),
    second.vendorCommit ?? '',
  );
});

test('pip: wheels come from a PEP 503 index, matched by the requirements hashes; a second run fetches no file', async t => {
  const world = await syncWorld(t, 'pip');
  const first = await world.sync();
  t.is(first.downloads, 2);
  const manifest = await readVendorManifest(world.vendor.dir);
  t.deepEqual(
    manifest.artifacts.map(a => a.path),
    ['pypi/dep_mod-2.0-py3-none-any.whl', 'pypi/hello_mod-1.0-py3-none-any.whl'],
  );
  const fileRequests = world.index.requests.filter(p => p.startsWith('/files/')).length;
  t.is(fileRequests, 2);
  const again = await world.sync();
  t.is(again.downloads, 0);
  t.is(world.index.requests.filter(p => p.startsWith('/files/')).length, fileRequests);
});

test('outdated (CLI, --json) reports newer upstream releases for npm, PyPI and GitHub', async t => {
  const world = await syncWorld(t);
  await world.sync();
  // A PyPI artifact and a newer GitHub release to compare against.
  await fsp.mkdir(path.join(world.vendor.dir, 'pypi'), {recursive: true});
  const wheel = await fsp.readFile(path.join(t.context.wheels, 'hello_mod-1.0-py3-none-any.whl'));
  await fsp.writeFile(path.join(world.vendor.dir, 'pypi', 'hello_mod-1.0-py3-none-any.whl'), wheel);
  const manifestPath = path.join(world.vendor.dir, 'vendor-manifest.json');
  const manifest = JSON.parse(await fsp.readFile(manifestPath, 'utf8')) as {artifacts: unknown[]};
  manifest.artifacts.push({
    ecosystem: 'pypi',
    name: 'hello-mod',
    version: '1.0',
    path: 'pypi/hello_mod-1.0-py3-none-any.whl',
    integrity: `sha256-${createHash('sha256').update(wheel).digest('base64')}`,
    source: 'test',
    size: wheel.length,
  });
  await fsp.writeFile(manifestPath, JSON.stringify(manifest, null, 2));
  world.github.releases.get('acme/tool')?.push({tag: 'v2.0.0', assets: []});

  const outdatedArgs = [
    path.join(packageRoot, 'bin', 'vendor-sync.js'),
    'outdated',
    '--vendor',
    world.vendor.dir,
    '--npm-registry',
    t.context.registry.url,
    '--pypi-index',
    world.index.url,
    '--github-api-url',
    world.github.apiUrl,
  ];
  const human = await exec(process.execPath, outdatedArgs, {
    env: {PATH: process.env.PATH, GITHUB_TOKEN: 'gh-test-token-123'},
  }).catch((error: unknown) => error as {stdout: string; stderr: string; code: number});
  t.is('code' in human ? human.code : 0, 1, 'something outdated: exit 1, as npm outdated');
  const table = human.stdout.trimEnd().split('\n');
  const latestAt = (table[0] ?? '').indexOf('latest');
  t.true(latestAt > 0);
  for (const line of table.slice(1, -1)) t.not(line[latestAt - 1], undefined, line);
  t.true(table.slice(1, -1).every(line => line[latestAt - 1] === ' ' && line[latestAt] !== ' '));
  t.regex(table.at(-1) ?? '', /^3 of \d+ outdated\. !: a newer upstream release/);

  const {stdout, stderr, code} = await exec(
    process.execPath,
    [
      path.join(packageRoot, 'bin', 'vendor-sync.js'),
      'outdated',
      '--vendor',
      world.vendor.dir,
      '--npm-registry',
      t.context.registry.url,
      '--pypi-index',
      world.index.url,
      '--github-api-url',
      world.github.apiUrl,
      '--json',
    ],
    {env: {PATH: process.env.PATH, GITHUB_TOKEN: 'gh-test-token-123'}},
  )
    .then(done => ({...done, code: 0}))
    .catch((error: unknown) => error as {stdout: string; stderr: string; code: number});
  t.is(code, 1, '--json too');
  const parsed = JSON.parse(stdout) as {
    artifacts: Array<{
      ecosystem: string;
      name: string;
      current: string;
      latest: string;
      outdated: boolean;
    }>;
  };
  t.false(stderr.includes('gh-test-token-123'));
  const row = (name: string) => parsed.artifacts.find(a => a.name === name);
  t.like(row('@demo/left-util'), {current: '1.0.0', latest: '1.1.0', outdated: true});
  t.like(row('greet-lib'), {current: '1.0.0', latest: '1.0.0', outdated: false});
  t.like(row('hello-mod'), {current: '1.0', latest: '1.1', outdated: true});
  t.like(row('acme/tool/tool-linux-x64'), {current: 'v1.0.0', latest: 'v2.0.0', outdated: true});
});

test('GitHub rate limits are waited out (429 Retry-After, 403 x-ratelimit-reset) a bounded number of times [R32]', async t => {
  const world = await syncWorld(t);
  world.github.rateLimitNext(1, '429');
  const first = await world.sync({dryRun: true});
  t.is(first.downloads, 3);
  world.github.rateLimitNext(1, '403');
  const second = await world.sync({dryRun: true});
  t.is(second.downloads, 3);
  world.github.rateLimitNext(50, '429');
  const error = await t.throwsAsync(world.sync({dryRun: true}));
  t.regex(error.message, /GitHub refused|429|Too many/i);
});

test('--update-pin moves a submodule pin (the gitlink) to the new vendor commit', async t => {
  const world = await syncWorld(t);
  const config = JSON.parse(
    await fsp.readFile(path.join(world.app.dir, 'deploy.json'), 'utf8'),
  ) as Record<string, unknown>;
  const start = await git(world.vendor.dir, ['rev-parse', 'HEAD']);
  delete config.vendor;
  await world.app.write({'deploy.json': JSON.stringify(config, null, 2)});
  await world.app.addSubmodule('vendor', '../vendor.git', start);
  await world.app.commit('pin vendor as a submodule');
  const result = await world.sync({updatePin: true, push: true});
  t.is(result.pin, 'submodule');
  t.regex(
    await git(world.app.dir, ['ls-files', '-s', 'vendor']),
    new RegExp(`^160000 ${result.vendorCommit ?? '-'} 0\\tvendor$`),
  );
});

test('vendor-sync bin: --dry-run --json prints the plan and exits 0; a bad option exits 2', async t => {
  const world = await syncWorld(t);
  const bin = path.join(packageRoot, 'bin', 'vendor-sync.js');
  const {stdout} = await exec(
    process.execPath,
    [
      bin,
      '--app',
      world.app.dir,
      '--vendor',
      world.vendor.dir,
      '--github-api-url',
      world.github.apiUrl,
      '--dry-run',
      '--json',
    ],
    {env: {PATH: process.env.PATH, GITHUB_TOKEN: 'gh-test-token-123'}},
  );
  const parsed = JSON.parse(stdout) as {
    ok: boolean;
    dryRun: boolean;
    downloads: number;
    changes: unknown[];
  };
  t.like(parsed, {ok: true, dryRun: true, downloads: 3});
  t.is(parsed.changes.length, 3);
  const bad = await exec(process.execPath, [
    bin,
    '--app',
    world.app.dir,
    '--vendor',
    world.vendor.dir,
    '--concurrency',
    '99',
  ]).catch((error: unknown) => error as {code: number; stderr: string});
  t.is((bad as {code: number}).code, 2);
  t.regex((bad as {stderr: string}).stderr, /--concurrency must be 1 to 16/);
});

test('vendor-sync bin --signing-key: the vendor commit is signed and git verify-commit accepts it', async t => {
  const world = await syncWorld(t);
  const bin = path.join(packageRoot, 'bin', 'vendor-sync.js');
  // An encrypted key, given through the environment with its passphrase, as a CI secret would be.
  const key = path.join(world.dir, 'vendor-sync.key');
  const passphrase = 'vendor-sync-key-passphrase-123';
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'bot', '-f', key]);
  const env = {
    PATH: process.env.PATH,
    GITHUB_TOKEN: 'gh-test-token-123',
    VENDOR_SYNC_AUTHOR_EMAIL: 'bot@example.com',
    VENDOR_SYNC_SIGNING_KEY: key,
    VENDOR_SYNC_SIGNING_KEY_PASSPHRASE: passphrase,
  };
  const args = [bin, '--app', world.app.dir, '--vendor', world.vendor.dir];
  const {stdout, stderr} = await exec(
    process.execPath,
    [...args, '--github-api-url', world.github.apiUrl],
    {env},
  );
  t.regex(stdout, /vendor at [0-9a-f]{40}/);
  t.false(`${stdout}${stderr}`.includes(passphrase), 'the passphrase is never printed');
  const signers = path.join(world.dir, 'allowed_signers');
  const pub = (await fsp.readFile(`${key}.pub`, 'utf8')).trim().split(' ');
  await fsp.writeFile(signers, `bot@example.com ${pub[0] ?? ''} ${pub[1] ?? ''}\n`);
  const verified = await exec(
    'git',
    ['-c', `gpg.ssh.allowedSignersFile=${signers}`, 'verify-commit', 'HEAD'],
    {cwd: world.vendor.dir},
  );
  t.regex(verified.stderr, /Good "git" signature for bot@example.com with ED25519 key/);
  // A wrong passphrase is the maintainer's configuration error (exit 3), before any download.
  const wrong = await exec(process.execPath, args, {
    env: {...env, VENDOR_SYNC_SIGNING_KEY_PASSPHRASE: 'not-it'},
  }).catch((error: unknown) => error as {code: number; stderr: string});
  t.is((wrong as {code: number}).code, 3);
  t.false((wrong as {stderr: string}).stderr.includes('not-it'));
});
