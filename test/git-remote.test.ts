import {promises as fsp} from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {ExitCode, RevError, SourceError, UsageError} from '../lib/support/errors.js';
import {
  credentialPolicy,
  mayCarryCredentials,
  parseCredentialList,
} from '../lib/git/credentials.js';
import {startGitHttpServer} from './helpers/git-http-server.js';
import {FixtureRepo, git} from './helpers/repos.js';
import {tempDir} from './helpers/tmp.js';
import {makeWorld, runDeploy, runDeployBin, writeSampleApp, type World} from './helpers/world.js';

const token = 'tok-node-7c1e94ab';
const basic = `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;

/** Every Authorization header a server received (undefined for requests without one). */
function recorder() {
  const seen: Array<string | undefined> = [];
  const intercept = (req: http.IncomingMessage) => {
    seen.push(req.headers.authorization);
    return false;
  };
  return {seen, intercept};
}

/**
 * The app repository on one server, the vendor repository on a second one (another port, so
 * another origin), both asking for the node's token and recording what they receive.
 */
async function twoOrigins(t: ExecutionContext) {
  const app = recorder();
  const world = await makeWorld(t, {
    auth: {username: 'x-access-token', password: token},
    intercept: app.intercept,
  });
  const other = recorder();
  const otherDir = await tempDir(t);
  const second = await startGitHttpServer({
    projectRoot: otherDir,
    auth: {username: 'x-access-token', password: token},
    intercept: other.intercept,
  });
  t.teardown(() => second.close());
  await world.vendor.write({'MANIFEST.json': '{"format": 1, "artifacts": []}\n'});
  const vendorSha = await world.vendor.commit('vendor');
  await world.vendor.publish(path.join(otherDir, 'vendor.git'));
  const vendorUrl = second.repoUrl('vendor.git');
  return {world, vendorSha, vendorUrl, origin: second.url, app: app.seen, other: other.seen};
}

async function pinByDeployJson(world: World, vendorUrl: string, vendorSha: string) {
  await writeSampleApp(world.app, {
    'deploy.json': JSON.stringify({vendor: {url: vendorUrl, rev: vendorSha}}),
  });
  const sha = await world.app.commit('app pins a vendor repo on another origin');
  await world.publish();
  return sha;
}

test('[R35] a vendor URL in deploy.json on another origin gets no token from deploy', async t => {
  const {world, vendorSha, vendorUrl, origin, app, other} = await twoOrigins(t);
  const sha = await pinByDeployJson(world, vendorUrl, vendorSha);
  const error = await t.throwsAsync(
    runDeploy({root: world.root, rev: sha, repo: world.appUrl}, {env: {DEPLOY_GIT_TOKEN: token}}),
    {instanceOf: SourceError},
  );
  t.regex(error.message, /authentication required/);
  t.regex(error.hint ?? '', /DEPLOY_GIT_CREDENTIALS/);
  t.true(error.hint?.includes(origin));
  t.true(other.length > 0, 'the vendor server was asked');
  t.deepEqual(
    other.filter(h => h !== undefined),
    [],
  );
  t.true(app.includes(basic), 'the app origin receives the token');
});

test('[R35] deploy check sends no token to a vendor URL the changeset names', async t => {
  const {world, vendorSha, vendorUrl, other, app} = await twoOrigins(t);
  const sha = await pinByDeployJson(world, vendorUrl, vendorSha);
  const run = await runDeployBin(['check', '--rev', sha, '--repo', world.appUrl, '--json'], {
    DEPLOY_GIT_TOKEN: token,
  });
  t.is(run.code, ExitCode.couldNotCheck, run.stdout + run.stderr);
  t.regex(run.stdout, /DEPLOY_GIT_CREDENTIALS/);
  t.false(run.stdout.includes(token) || run.stderr.includes(token));
  t.true(other.length > 0);
  t.deepEqual(
    other.filter(h => h !== undefined),
    [],
  );
  t.true(app.includes(basic));
});

test('[R35] a submodule URL in .gitmodules on another origin gets no token', async t => {
  const {world, vendorSha, vendorUrl, other} = await twoOrigins(t);
  await writeSampleApp(world.app);
  await world.app.addSubmodule('vendor', vendorUrl, vendorSha);
  const sha = await world.app.commit('app pins the vendor repo as a submodule');
  await world.publish();
  await t.throwsAsync(
    runDeploy({root: world.root, rev: sha, repo: world.appUrl}, {env: {DEPLOY_GIT_TOKEN: token}}),
    {instanceOf: SourceError, message: /authentication required/},
  );
  const run = await runDeployBin(['check', '--rev', sha, '--repo', world.appUrl, '--json'], {
    DEPLOY_GIT_TOKEN: token,
  });
  t.is(run.code, ExitCode.couldNotCheck, run.stdout + run.stderr);
  t.true(other.length > 0);
  t.deepEqual(
    other.filter(h => h !== undefined),
    [],
  );
});

test('[R35] --vendor-repo and a DEPLOY_GIT_CREDENTIALS entry name an origin the token may go to', async t => {
  const {world, vendorSha, vendorUrl, other} = await twoOrigins(t);
  const sha = await pinByDeployJson(world, vendorUrl, vendorSha);
  const env = {DEPLOY_GIT_TOKEN: token};
  const viaOption = await runDeploy(
    {root: world.root, rev: sha, repo: world.appUrl, vendorRepo: vendorUrl},
    {env},
  );
  t.is(viaOption.vendor?.sha, vendorSha);
  t.true(other.includes(basic), '--vendor-repo names the origin: it receives the token');

  const entry = vendorUrl
    .replace('http://', `http://x-access-token:${token}@`)
    .replace(/\/[^/]*$/, '');
  const checked = await runDeployBin(['check', '--rev', sha, '--repo', world.appUrl, '--json'], {
    DEPLOY_GIT_TOKEN: token,
    DEPLOY_GIT_CREDENTIALS: entry,
  });
  const report = JSON.parse(checked.stdout) as {checks: Array<{id: string; status: string}>};
  t.is(report.checks.find(c => c.id === 'vendor-pin')?.status, 'pass', checked.stdout);
});

test('[R35] a redirect from the app origin to another origin carries no token there', async t => {
  const other = recorder();
  const otherDir = await tempDir(t);
  const second = await startGitHttpServer({
    projectRoot: otherDir,
    auth: {username: 'x-access-token', password: token},
    intercept: other.intercept,
  });
  t.teardown(() => second.close());
  const world = await makeWorld(t, {
    intercept: (req, res) => {
      if (!req.url?.startsWith('/moved/')) return false;
      req.resume();
      res.writeHead(302, {location: `${second.url}${req.url.slice('/moved'.length)}`}).end();
      return true;
    },
  });
  await writeSampleApp(world.app);
  const sha = await world.app.commit('v1');
  await world.app.publish(path.join(otherDir, 'app.git'));
  const error = await t.throwsAsync(
    runDeploy(
      {root: world.root, rev: sha, repo: `${world.server.url}/moved/app.git`},
      {env: {DEPLOY_GIT_TOKEN: token}},
    ),
    {instanceOf: SourceError},
  );
  t.regex(error.message, /authentication required|refused access/);
  t.true(other.seen.length > 0, 'the redirect was followed');
  t.deepEqual(
    other.seen.filter(h => h !== undefined),
    [],
  );
});

test('[R35] credentials travel over https, or plain http to loopback only', t => {
  for (const url of [
    'https://git.example.com/app.git',
    'http://127.0.0.1:8080/app.git',
    'http://127.10.0.3/app.git',
    'http://[::1]:9000/app.git',
    'http://localhost/app.git',
    'http://LOCALHOST:3000/app.git',
  ]) {
    t.true(mayCarryCredentials(url), url);
  }
  for (const url of [
    'http://git.example.com/app.git',
    'http://127.0.0.1.nip.io/app.git',
    'http://localhost.example.com/app.git',
    'http://10.0.0.1/app.git',
    'http://[::2]/app.git',
    'http://128.0.0.1/app.git',
  ]) {
    t.false(mayCarryCredentials(url), url);
  }
});

test('[R35] DEPLOY_GIT_TOKEN is held back from a plain-http app origin that is not loopback', t => {
  const app = {kind: 'http' as const, url: 'http://git.example.com/team/app.git'};
  const policy = credentialPolicy({DEPLOY_GIT_TOKEN: token}, [app]);
  const grant = policy(app);
  t.is(grant.credentials, undefined);
  t.regex(grant.withheld ?? '', /never sent over plain http to http:\/\/git\.example\.com/);

  const https = {kind: 'http' as const, url: 'https://git.example.com/team/app.git'};
  const secure = credentialPolicy({DEPLOY_GIT_TOKEN: token, DEPLOY_GIT_USERNAME: 'ci'}, [https]);
  t.deepEqual(secure(https).credentials, {username: 'ci', password: token});
  t.deepEqual(secure({kind: 'http', url: 'https://git.example.com/team/vendor.git'}).credentials, {
    username: 'ci',
    password: token,
  });
  t.is(secure({kind: 'http', url: 'https://elsewhere.example/vendor.git'}).credentials, undefined);
  t.deepEqual(secure({kind: 'path', path: '/srv/app.git'}), {});
});

test('[R35] DEPLOY_GIT_CREDENTIALS entries go to their own origin and refuse plain http', t => {
  const list = parseCredentialList(
    `https://bot:${token}@vendor.example.com\n  http://u:loop-secret@127.0.0.1:8080/`,
  );
  t.deepEqual(list.get('https://vendor.example.com'), {username: 'bot', password: token});
  t.deepEqual(list.get('http://127.0.0.1:8080'), {username: 'u', password: 'loop-secret'});
  const policy = credentialPolicy(
    {DEPLOY_GIT_CREDENTIALS: `https://bot:${token}@vendor.example.com`},
    [],
  );
  t.deepEqual(policy({kind: 'http', url: 'https://vendor.example.com/v.git'}).credentials, {
    username: 'bot',
    password: token,
  });
  t.is(policy({kind: 'http', url: 'https://vendor.example.com:8443/v.git'}).credentials, undefined);

  for (const [entry, why] of [
    [`http://bot:${token}@vendor.example.com`, /plain http/],
    [`https://bot:${token}@vendor.example.com/team`, /names a path/],
    ['https://bot@vendor.example.com', /no token/],
    [token, /entry 1 is not a URL/],
  ] as const) {
    const error = t.throws(() => parseCredentialList(entry), {instanceOf: UsageError});
    t.regex(error.message, why);
    t.false(error.message.includes(token), error.message);
  }
});

/** A served bare repository made as self-hosted servers make them: `git init --bare`, then a push. */
async function servedAsOnASelfHostedServer(t: ExecutionContext) {
  const dir = await tempDir(t);
  const bare = path.join(dir, 'served', 'app.git');
  await fsp.mkdir(bare, {recursive: true});
  await git(bare, ['init', '-q', '--bare']);
  // git 2.39 with no init.defaultBranch points HEAD at master; keep it so on any git.
  await git(bare, ['symbolic-ref', 'HEAD', 'refs/heads/master']);
  const work = await FixtureRepo.init(path.join(dir, 'work'));
  await writeSampleApp(work);
  const v1 = await work.commit('v1');
  await work.tag('v1.0.0', {annotated: true});
  await work.write({'version.txt': '2\n'});
  const v2 = await work.commit('v2');
  await work.git('push', '-q', bare, 'main', 'v1.0.0');
  const server = await startGitHttpServer({projectRoot: path.join(dir, 'served')});
  t.teardown(() => server.close());
  return {dir, bare, work, server, url: server.repoUrl('app.git'), v1, v2};
}

test('a served repository whose HEAD names a missing branch deploys a branch, a tag and a sha', async t => {
  const served = await servedAsOnASelfHostedServer(t);
  t.is(
    (await fsp.readFile(path.join(served.bare, 'HEAD'), 'utf8')).trim(),
    'ref: refs/heads/master',
  );
  const deployed: string[] = [];
  for (const [n, rev] of ['main', 'v1.0.0', served.v1, served.v2.slice(0, 10)].entries()) {
    const root = path.join(served.dir, `node-${n}`);
    const result = await runDeploy({root, rev, repo: served.url});
    deployed.push(result.app.sha);
    t.is(
      await fsp.readFile(path.join(root, 'current', 'README.md'), 'utf8'),
      '# sample app\n',
      rev,
    );
  }
  t.deepEqual(deployed, [served.v2, served.v1, served.v1, served.v2]);
});

test('an unknown rev names what the server advertises, or that it has no branches', async t => {
  const served = await servedAsOnASelfHostedServer(t);
  const root = path.join(served.dir, 'node');
  const unknown = await t.throwsAsync(runDeploy({root, rev: 'release', repo: served.url}), {
    instanceOf: RevError,
  });
  t.regex(unknown.message, /Unknown rev "release"/);
  t.is(unknown.hint, 'The repository advertises branches main; tags v1.0.0.');

  await git(served.dir, ['init', '-q', '--bare', path.join(served.dir, 'served', 'empty.git')]);
  const empty = await t.throwsAsync(
    runDeploy({root, rev: 'main', repo: served.server.repoUrl('empty.git')}),
    {instanceOf: RevError},
  );
  t.regex(empty.hint ?? '', /advertises no branches and no tags/);
});

test('a tag that names a tree or a blob is a rev error, found before fetching everything', async t => {
  const world = await makeWorld(t);
  await writeSampleApp(world.app);
  await world.app.commit('v1');
  const tree = await world.app.git('rev-parse', 'HEAD^{tree}');
  const blob = await world.app.git('rev-parse', 'HEAD:README.md');
  await world.app.tag('tree-tag', {rev: tree});
  await world.app.tag('blob-tag', {rev: blob, annotated: true});
  await world.publish();
  for (const [rev, type, sha] of [
    ['tree-tag', 'tree', tree],
    ['blob-tag', 'blob', blob],
  ] as const) {
    world.server.requests.length = 0;
    const error = await t.throwsAsync(runDeploy({root: world.root, rev, repo: world.appUrl}), {
      instanceOf: RevError,
    });
    t.is(error.exitCode, ExitCode.rev);
    t.is(error.message, `Tag ${rev} names a ${type} (${sha}), not a commit.`);
    const fetches = world.server.requests.filter(r => r.path.endsWith('/git-upload-pack'));
    t.is(fetches.length, 1, 'only the tag was fetched');
    // The same from a repository on the node's disk.
    await t.throwsAsync(runDeploy({root: world.root, rev, repo: world.app.dir}), {
      instanceOf: RevError,
      message: `Tag ${rev} names a ${type} (${sha}), not a commit.`,
    });
  }
  const run = await runDeployBin([
    '--rev',
    'tree-tag',
    '--repo',
    world.appUrl,
    '--root',
    world.root,
  ]);
  t.is(run.code, ExitCode.rev, run.stderr);
});

test("a server's ERR line is shown, not dropped: a want it refuses", async t => {
  const world = await makeWorld(t);
  await writeSampleApp(world.app);
  await world.app.commit('v1');
  await world.app.git('checkout', '-q', '-b', 'scratch');
  await world.app.write({'scratch.txt': 'pushed, then the branch deleted\n'});
  const orphan = await world.app.commit('scratch');
  await world.publish();
  const bare = path.join(world.servedDir, 'app.git');
  await git(bare, ['update-ref', '-d', 'refs/heads/scratch']);
  await git(bare, ['config', 'uploadpack.allowAnySHA1InWant', 'false']);
  const error = await t.throwsAsync(
    runDeploy({root: world.root, rev: orphan, repo: world.appUrl}),
    {instanceOf: SourceError},
  );
  t.regex(
    error.message,
    new RegExp(`Commit ${orphan} is not in .*the server said: upload-pack: not our ref ${orphan}`),
  );
});

test("a server's side-band error is shown, not dropped: a repository missing an object", async t => {
  const world = await makeWorld(t);
  await writeSampleApp(world.app);
  const sha = await world.app.commit('v1');
  await world.publish();
  const blob = await world.app.git('rev-parse', 'HEAD:src/server.js');
  const bare = path.join(world.servedDir, 'app.git');
  // Pushed objects stay loose in a small repository: remove one, as a damaged disk would.
  await fsp.rm(path.join(bare, 'objects', blob.slice(0, 2), blob.slice(2)));
  const error = await t.throwsAsync(runDeploy({root: world.root, rev: sha, repo: world.appUrl}), {
    instanceOf: SourceError,
  });
  t.regex(error.message, new RegExp(`the server said: fatal: unable to read ${blob};.*corruption`));
  const packs = await fsp.readdir(path.join(world.root, 'repos', 'app.git', 'objects', 'pack'));
  t.deepEqual(
    packs.filter(name => name.endsWith('.pack')),
    [],
    'no pack kept',
  );
});

test('a fetch response whose pkt-line length is not four hex digits is refused, not looped on', async t => {
  const {pktLines} = await import('../lib/git/upload-pack.js');
  for (const bad of ['0008NAK\n-004', '0008NAK\n0x1f', '0008NAK\n00zz', '0008NAK\n0003']) {
    const read = async () => {
      const lines: Array<Buffer | undefined> = [];
      for await (const line of pktLines([Buffer.from(bad, 'latin1')], 'http://127.0.0.1/x.git'))
        lines.push(line);
      return lines;
    };
    await t.throwsAsync(read(), {message: /malformed fetch response/}, JSON.stringify(bad));
  }
  const good: string[] = [];
  for await (const line of pktLines([Buffer.from('0008NAK\n0000')], 'http://127.0.0.1/x.git'))
    good.push(line === undefined ? 'flush' : line.toString());
  t.deepEqual(good, ['NAK\n', 'flush']);
});

test('a token for plain http to loopback is withheld when that request would go through a proxy [R35]', async t => {
  const {credentialPolicy} = await import('../lib/git/credentials.js');
  const app = {kind: 'http' as const, url: 'http://127.0.0.1:8080/app.git'};
  const secure = {kind: 'http' as const, url: 'https://git.example/app.git'};
  const grant = (env: NodeJS.ProcessEnv, location = app) =>
    credentialPolicy({DEPLOY_GIT_TOKEN: 'tok-proxy-test', ...env}, [app, secure])(location);
  t.is(grant({}).credentials?.password, 'tok-proxy-test');
  // Without NO_PROXY, loopback is reached directly (the default), so the token may go.
  t.is(grant({HTTP_PROXY: 'http://proxy.example:3128'}).credentials?.password, 'tok-proxy-test');
  const proxied = grant({HTTP_PROXY: 'http://proxy.example:3128', NO_PROXY: 'other.example'});
  t.is(proxied.credentials, undefined);
  t.regex(proxied.withheld ?? '', /through the proxy in HTTP_PROXY, in clear text/);
  t.is(
    grant({http_proxy: 'http://proxy.example:3128', no_proxy: '127.0.0.1'}).credentials?.password,
    'tok-proxy-test',
  );
  t.is(
    grant({HTTPS_PROXY: 'http://proxy.example:3128', NO_PROXY: 'x'}, secure).credentials?.password,
    'tok-proxy-test',
  );
});
