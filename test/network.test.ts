import {execFile} from 'node:child_process';
import {createHash} from 'node:crypto';
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import anyTest, {type ExecutionContext, type TestFn} from 'ava';
import {SourceError} from '../lib/support/errors.js';
import {readVendorManifest} from '../lib/pins/vendor-manifest.js';
import {deadProxyUrl, startForwardProxy} from './helpers/forward-proxy.js';
import {startFakeGithub} from './helpers/github-server.js';
import {lockedApp, startRegistry, type Registry} from './helpers/npm-registry.js';
import {FixtureRepo} from './helpers/repos.js';
import {selfSignedCertificate, startTlsFront} from './helpers/tls-front.js';
import {tempDir} from './helpers/tmp.js';
import {fingerprint} from './helpers/tree.js';
import {makeWorld, packageRoot, runDeploy, writeSampleApp} from './helpers/world.js';

type Shared = {dir: string; open: Registry; locked: Registry; lockDir: string};
const test = anyTest as TestFn<Shared>;
type T = ExecutionContext<Shared>;

const vendorSyncBin = path.join(packageRoot, 'bin', 'vendor-sync.js');

/**
 * Two real registries holding the same tarballs: `open` (which the lockfile names) and
 * `locked`, which serves only with a token (a private mirror).
 */
test.before(async t => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-network-'));
  const open = await startRegistry(path.join(dir, 'open'));
  const locked = await startRegistry(path.join(dir, 'locked'), {readNeedsLogin: true});
  await open.publish({name: '@demo/left-util', version: '1.0.0'});
  await open.publish({
    name: 'greet-lib',
    version: '1.0.0',
    dependencies: {'@demo/left-util': '^1.0.0'},
  });
  const lockDir = await lockedApp(open, path.join(dir, 'lock'), {
    name: 'app',
    version: '1.0.0',
    private: true,
    dependencies: {'greet-lib': '1.0.0'},
  });
  for (const [name, file] of [
    ['@demo/left-util', '@demo/left-util/-/left-util-1.0.0.tgz'],
    ['greet-lib', 'greet-lib/-/greet-lib-1.0.0.tgz'],
  ] as const) {
    const tarball = Buffer.from(await (await fetch(`${open.url}${file}`)).arrayBuffer());
    await locked.publishTarball(name, '1.0.0', tarball);
  }
  t.context = {dir, open, locked, lockDir};
});

test.after.always(async t => {
  await t.context.open.close();
  await t.context.locked.close();
  await fsp.rm(t.context.dir, {recursive: true, force: true});
});

type SyncSetup = {app: string; vendor: string; home: string; userrc: string};

/** An npm app whose lockfile names the open registry, an empty vendor work tree, an npmrc. */
async function syncSetup(
  t: T,
  userrc = '',
  projectrc?: string,
  assets: unknown[] = [],
): Promise<SyncSetup> {
  const dir = await tempDir(t);
  const vendor = await FixtureRepo.init(path.join(dir, 'vendor'));
  await vendor.write({'README.md': 'vendor\n'});
  const vendorSha = await vendor.commit('start');
  const app = await FixtureRepo.init(path.join(dir, 'app'));
  for (const file of ['package.json', 'package-lock.json'])
    await fsp.copyFile(path.join(t.context.lockDir, file), path.join(app.dir, file));
  await app.write({
    'deploy.json': JSON.stringify({
      vendor: {url: '../vendor.git', rev: vendorSha},
      install: {type: 'npm', registries: [t.context.open.url]},
      ...(assets.length > 0 ? {assets} : {}),
    }),
    ...(projectrc === undefined ? {} : {'.npmrc': projectrc}),
  });
  await app.commit('app');
  const home = path.join(dir, 'home');
  await fsp.mkdir(home);
  const rc = path.join(dir, 'user-npmrc');
  await fsp.writeFile(rc, userrc);
  return {app: app.dir, vendor: vendor.dir, home, userrc: rc};
}

type Run = {code: number; stdout: string; stderr: string};

/** The real vendor-sync bin, with an environment of the test's own (no config of the machine's). */
function vendorSync(s: SyncSetup, env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<Run> {
  return new Promise(resolve => {
    execFile(
      process.execPath,
      [vendorSyncBin, '--app', s.app, '--vendor', s.vendor, ...args],
      {
        env: {
          PATH: process.env.PATH,
          HOME: s.home,
          NPM_CONFIG_USERCONFIG: s.userrc,
          NPM_CONFIG_GLOBALCONFIG: path.join(s.home, 'no-global-npmrc'),
          // The test servers are on loopback, which is reached directly unless NO_PROXY is set.
          NO_PROXY: 'nothing.invalid',
          ...env,
        },
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        resolve({code: error ? Number(error.code ?? 1) : 0, stdout, stderr});
      },
    );
  });
}

async function vendoredNames(vendor: string): Promise<string[]> {
  const manifest = await readVendorManifest(vendor);
  return manifest.artifacts.map(a => `${a.name}@${a.version}`).sort();
}

const both = ['@demo/left-util@1.0.0', 'greet-lib@1.0.0'];
const tarballs = (r: Registry) => r.seen.filter(s => s.path.endsWith('.tgz'));

test.serial('vendor-sync goes through HTTP_PROXY, and not for a host NO_PROXY lists', async t => {
  const proxy = await startForwardProxy(t);
  const proxied = await syncSetup(t);
  const run = await vendorSync(proxied, {HTTP_PROXY: proxy.url});
  t.is(run.code, 0, run.stderr);
  t.deepEqual(await vendoredNames(proxied.vendor), both);
  const registry = new URL(t.context.open.url).host;
  t.deepEqual(
    proxy.requests.filter(r => r.endsWith('.tgz')).map(r => new URL(r).host),
    [registry, registry],
    'both tarballs were asked of the proxy as absolute URIs',
  );

  const before = proxy.count();
  const direct = await syncSetup(t);
  const second = await vendorSync(direct, {
    http_proxy: proxy.url,
    no_proxy: `example.invalid,127.0.0.1`,
  });
  t.is(second.code, 0, second.stderr);
  t.deepEqual(await vendoredNames(direct.vendor), both);
  t.is(proxy.count(), before, 'NO_PROXY host reached directly');
});

test.serial('GitHub API calls and asset downloads go through the proxy too', async t => {
  const github = await startFakeGithub({token: 'gh-test-token-123'});
  t.teardown(() => github.close());
  const data = Buffer.from('#!/bin/sh\necho tool\n');
  github.releases.set('acme/tool', [{tag: 'v1.0.0', assets: [{name: 'tool', data}]}]);
  const sha256 = createHash('sha256').update(data).digest('hex');
  const s = await syncSetup(t, '', undefined, [
    {repo: 'acme/tool', tag: 'v1.0.0', name: 'tool', sha256},
  ]);
  const proxy = await startForwardProxy(t);
  const run = await vendorSync(s, {HTTP_PROXY: proxy.url, GITHUB_TOKEN: 'gh-test-token-123'}, [
    '--github-api-url',
    github.apiUrl,
  ]);
  t.is(run.code, 0, run.stderr);
  t.is((await vendoredNames(s.vendor)).length, 3);
  const origins = proxy.requests.map(r => new URL(r).origin);
  t.true(origins.includes(github.apiUrl), 'the API call went through the proxy');
  const storage = origins.filter(o => o !== github.apiUrl && `${o}/` !== t.context.open.url);
  t.true(storage.length >= 1, 'and so did the download from the storage host');
});

test.serial(
  'vendor-sync with a dead proxy fails naming the proxy, and changes nothing',
  async t => {
    const dead = await deadProxyUrl();
    const s = await syncSetup(t);
    const before = await fingerprint(s.vendor);
    const seenBefore = t.context.open.seen.length;
    const run = await vendorSync(s, {HTTP_PROXY: dead});
    t.is(run.code, 5, run.stderr);
    t.regex(run.stderr, new RegExp(`through the proxy ${dead}/? \\(from HTTP_PROXY\\)`));
    t.regex(run.stderr, /ECONNREFUSED/);
    t.is(t.context.open.seen.length, seenBefore, 'no direct connection to the registry');
    t.deepEqual(await fingerprint(s.vendor), before);
  },
);

test.serial(
  'registry= and a token in the user npmrc: tarballs come from that registry, the token goes only there',
  async t => {
    const {open, locked} = t.context;
    const lockedKey = `//${new URL(locked.url).host}/`;
    const s = await syncSetup(
      t,
      `registry=${locked.url}\n${lockedKey}:_authToken=${locked.token}\n`,
    );
    const openBefore = tarballs(open).length;
    const run = await vendorSync(s);
    t.is(run.code, 0, run.stderr);
    t.deepEqual(await vendoredNames(s.vendor), both);
    t.is(tarballs(open).length, openBefore, 'nothing fetched from the registry the lockfile names');
    const fromLocked = tarballs(locked).slice(-2);
    t.deepEqual(
      fromLocked.map(r => r.authorization),
      [`Bearer ${locked.token}`, `Bearer ${locked.token}`],
    );
    t.false(run.stderr.includes(locked.token), 'the token is not printed');
  },
);

test.serial(
  "@scope:registry= in the app's .npmrc picks that scope's registry; its auth lines are ignored",
  async t => {
    const {open, locked} = t.context;
    const lockedKey = `//${new URL(locked.url).host}/`;
    const openKey = `//${new URL(open.url).host}/`;
    const s = await syncSetup(
      t,
      `${lockedKey}:_authToken=${locked.token}\n`,
      `@demo:registry=${locked.url}\n${openKey}:_authToken=from-the-changeset\n`,
    );
    const openBefore = tarballs(open).length;
    const lockedBefore = tarballs(locked).length;
    const run = await vendorSync(s);
    t.is(run.code, 0, run.stderr);
    t.deepEqual(await vendoredNames(s.vendor), both);
    t.deepEqual(
      tarballs(locked)
        .slice(lockedBefore)
        .map(r => [r.path, r.authorization]),
      [['/@demo/left-util/-/left-util-1.0.0.tgz', `Bearer ${locked.token}`]],
    );
    t.deepEqual(
      tarballs(open)
        .slice(openBefore)
        .map(r => [r.path, r.authorization]),
      [['/greet-lib/-/greet-lib-1.0.0.tgz', undefined]],
      'the other registry gets neither the token nor the one the changeset wrote',
    );
    t.regex(run.stderr, /ignored: \/\/127\.0\.0\.1:\d+\/:_authToken/);
  },
);

test.serial(
  'cafile and strict-ssl are honoured (through HTTPS_PROXY, by CONNECT); another CA is refused',
  async t => {
    const {open} = t.context;
    const certs = path.join(await tempDir(t), 'certs');
    const good = await selfSignedCertificate(certs, 'registry');
    const other = await selfSignedCertificate(certs, 'someone-else');
    const front = await startTlsFront(t, open.url, good);
    const proxy = await startForwardProxy(t);

    const trusted = await syncSetup(t, `registry=${front.url}\ncafile=${good.cert}\n`);
    const run = await vendorSync(trusted, {HTTPS_PROXY: proxy.url});
    t.is(run.code, 0, run.stderr);
    t.deepEqual(await vendoredNames(trusted.vendor), both);
    t.is(front.paths.filter(p => p.endsWith('.tgz')).length, 2);
    t.true(proxy.connects.includes(new URL(front.url).host), 'tunnelled through the proxy');

    const wrong = await syncSetup(t, `registry=${front.url}\ncafile=${other.cert}\n`);
    const before = await fingerprint(wrong.vendor);
    const refused = await vendorSync(wrong);
    t.is(refused.code, 5, refused.stderr);
    t.regex(refused.stderr, /TLS certificate of https:\/\/127\.0\.0\.1:\d+ is not trusted/);
    t.regex(refused.stderr, /cafile=/);
    t.deepEqual(await fingerprint(wrong.vendor), before);

    const unchecked = await syncSetup(
      t,
      `registry=${front.url}\ncafile=${other.cert}\nstrict-ssl=false\n`,
    );
    const anyway = await vendorSync(unchecked);
    t.is(anyway.code, 0, anyway.stderr);
    t.deepEqual(await vendoredNames(unchecked.vendor), both, 'strict-ssl=false is honoured too');
  },
);

test.serial(
  'a cafile that does not exist is a config error naming it; nothing is written',
  async t => {
    const s = await syncSetup(t, 'cafile=/nonexistent/corp-ca.pem\n');
    const before = await fingerprint(s.vendor);
    const run = await vendorSync(s);
    t.is(run.code, 3, run.stderr);
    t.regex(run.stderr, /cafile=\/nonexistent\/corp-ca\.pem \(user config\), which does not exist/);
    t.deepEqual(await fingerprint(s.vendor), before);
  },
);

test.serial(
  "deploy's git fetch goes through HTTP_PROXY, not for NO_PROXY hosts; a dead proxy fails clearly",
  async t => {
    const world = await makeWorld(t);
    await writeSampleApp(world.app);
    await world.app.commit('v1');
    await world.publish();
    const proxy = await startForwardProxy(t);
    await runDeploy(
      {root: world.root, rev: 'main', repo: world.appUrl},
      {env: {http_proxy: proxy.url, NO_PROXY: 'nothing.invalid'}},
    );
    t.true(
      proxy.requests.some(r => r.startsWith(`${world.appUrl}/info/refs`)),
      'refs asked of the proxy',
    );
    t.true(proxy.requests.some(r => r === `${world.appUrl}/git-upload-pack`));

    const before = proxy.count();
    await world.app.write({'v2.txt': 'two\n'});
    await world.app.commit('v2');
    await world.publish();
    await runDeploy(
      {root: world.root, rev: 'main', repo: world.appUrl},
      {env: {HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1'}},
    );
    t.is(proxy.count(), before, 'NO_PROXY host reached directly');

    const releases = await fingerprint(path.join(world.root, 'releases'));
    const dead = await deadProxyUrl();
    const error = await t.throwsAsync(
      runDeploy(
        {root: world.root, rev: 'main', repo: world.appUrl},
        {env: {HTTP_PROXY: dead, NO_PROXY: 'nothing.invalid'}},
      ),
      {instanceOf: SourceError},
    );
    t.regex(error.message, new RegExp(`through the proxy ${dead}/? \\(from HTTP_PROXY\\)`));
    t.deepEqual(await fingerprint(path.join(world.root, 'releases')), releases);

    // Without NO_PROXY, loopback is reached directly: a dead proxy does not stop a local server.
    await runDeploy(
      {root: world.root, rev: 'main', repo: world.appUrl},
      {env: {HTTP_PROXY: dead, HTTPS_PROXY: dead}},
    );
  },
);
