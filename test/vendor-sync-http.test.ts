import {promises as fsp} from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import ssri from 'ssri';
import {listenLocal} from './helpers/http.js';
import {IntegrityError, SourceError} from '../lib/support/errors.js';
import {Http} from '../vendor-sync/http.js';
import {assetDownloadUrl} from '../vendor-sync/sources/github.js';
import {githubClient} from '../lib/http/github.js';
import {startFakeGithub} from './helpers/github-server.js';
import {tempDir} from './helpers/tmp.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;

async function serve(t: ExecutionContext, handler: Handler) {
  let n = 0;
  const seen: Array<{url: string; authorization: string | undefined}> = [];
  const server = http.createServer((req, res) => {
    seen.push({url: req.url ?? '', authorization: req.headers.authorization});
    handler(req, res, ++n);
  });
  const base = await listenLocal(t, server);
  return {url: base, seen};
}

const body = Buffer.from('artifact bytes\n');
const integrity = ssri.fromData(body, {algorithms: ['sha512']}).toString();

test('retries 5xx and 429 with the waits the server asks for, then succeeds [R32]', async t => {
  const server = await serve(t, (_req, res, n) => {
    if (n === 1) res.writeHead(503).end();
    else if (n === 2) res.writeHead(429, {'retry-after': '7'}).end();
    else res.writeHead(200).end(body);
  });
  const waits: number[] = [];
  const client = new Http({backoffMs: 100, sleep: ms => (waits.push(ms), Promise.resolve())});
  const dest = path.join(await tempDir(t), 'a.tgz');
  t.is(await client.download(`${server.url}/a.tgz`, dest, integrity), body.length);
  t.deepEqual(waits, [100, 7000]);
  t.deepEqual(await fsp.readFile(dest), body);
});

test('gives up after a bounded number of attempts, and at once on a wait too long [R32]', async t => {
  const failing = await serve(t, (_req, res) => res.writeHead(500).end());
  const waits: number[] = [];
  const client = new Http({
    attempts: 3,
    backoffMs: 1,
    sleep: ms => (waits.push(ms), Promise.resolve()),
  });
  await t.throwsAsync(client.text(`${failing.url}/x`), {
    instanceOf: SourceError,
    message: /HTTP 500 after 3 attempts/,
  });
  t.is(failing.seen.length, 3);
  const limited = await serve(t, (_req, res) => res.writeHead(429, {'retry-after': '3600'}).end());
  await t.throwsAsync(new Http({maxWaitMs: 60_000}).text(`${limited.url}/x`), {
    message: /asks to wait 3600 s/,
  });
  t.is(limited.seen.length, 1);
});

test('bytes that do not match are refused and never land at the destination', async t => {
  const server = await serve(t, (_req, res) => res.writeHead(200).end('other bytes'));
  const dir = await tempDir(t);
  await t.throwsAsync(
    new Http().download(`${server.url}/a.tgz`, path.join(dir, 'a.tgz'), integrity),
    {instanceOf: IntegrityError},
  );
  t.deepEqual(await fsp.readdir(dir), [], 'no temp file left behind');
});

test('a token goes to its own origin only: a redirect to another origin drops it [R28]', async t => {
  const storage = await serve(t, (_req, res) => res.writeHead(200).end(body));
  const api = await serve(t, (_req, res) =>
    res.writeHead(302, {location: `${storage.url}/blob`}).end(),
  );
  const client = new Http({tokens: new Map([[api.url, 'registry-token']])});
  const dest = path.join(await tempDir(t), 'a');
  await client.download(`${api.url}/a`, dest, integrity, {authorization: 'token api-token'});
  t.is(api.seen[0]?.authorization, 'Bearer registry-token');
  t.is(storage.seen[0]?.authorization, undefined);
});

test('a stalled server times out instead of hanging [R31]', async t => {
  const server = await serve(t, (_req, res) => {
    res.writeHead(200);
    res.write('partial');
    // never ends
  });
  await t.throwsAsync(new Http({attempts: 1, timeoutMs: 300}).text(`${server.url}/slow`), {
    instanceOf: SourceError,
  });
});

test('a release asset URL on another origin than the API is refused: the token is not sent there [R35]', async t => {
  const github = await startFakeGithub({token: 'gh-units-token'});
  t.teardown(() => github.close());
  github.releases.set('acme/tool', [{tag: 'v1', assets: [{name: 'tool', data: Buffer.from('x')}]}]);
  const asset = {repo: 'acme/tool', tag: 'v1', name: 'tool', sha256: '0'.repeat(64)};
  const own = githubClient({apiUrl: github.apiUrl, token: 'gh-units-token'});
  t.true((await assetDownloadUrl(own, asset)).startsWith(new URL(github.apiUrl).origin));
  // The same answers, read through a client whose API is on another origin (a proxying front
  // or a hostile API naming someone else's host): refused before any download.
  const other = githubClient({
    apiUrl: github.apiUrl.replace('127.0.0.1', 'localhost'),
    token: 'gh-units-token',
  });
  await t.throwsAsync(assetDownloadUrl(other, asset), {message: /asset URL on another origin/});
});
