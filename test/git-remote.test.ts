import type http from 'node:http';
import path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {ExitCode, SourceError, UsageError} from '../lib/errors.js';
import {
  credentialPolicy,
  mayCarryCredentials,
  parseCredentialList,
} from '../lib/git/credentials.js';
import {startGitHttpServer} from './helpers/git-http-server.js';
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
