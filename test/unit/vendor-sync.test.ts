import {PassThrough} from 'node:stream';
import test from 'ava';
import {parseDeployConfig} from '../../lib/pins/deploy-config.js';
import {ConfigError} from '../../lib/support/errors.js';
import {parsePlatform} from '../../lib/pins/npm-lockfile.js';
import {commitMessage, pullRequestBody} from '../../vendor-sync/pull-request.js';
import type {Change} from '../../vendor-sync/plan.js';
import {createProgress} from '../../vendor-sync/progress.js';
import {npmDownloadUrl} from '../../vendor-sync/sources/npm.js';
import {versionFromFilename} from '../../vendor-sync/sources/pypi.js';

test('npm tarballs come from a configured mirror or scope registry, else from the lockfile URL', t => {
  const registries = ['https://registry.npmjs.org/'];
  const resolved = 'https://registry.npmjs.org/@acme/x/-/x-1.0.0.tgz';
  const none = {registry: undefined, scopes: new Map<string, string>()};
  t.is(npmDownloadUrl('@acme/x', resolved, none, registries), resolved);
  t.is(
    npmDownloadUrl(
      '@acme/x',
      resolved,
      {registry: 'https://mirror.internal/npm/', scopes: new Map()},
      registries,
    ),
    'https://mirror.internal/npm/@acme/x/-/x-1.0.0.tgz',
  );
  t.is(
    npmDownloadUrl(
      '@acme/x',
      resolved,
      {
        registry: 'https://mirror.internal/npm',
        scopes: new Map([['@acme', 'https://acme.example/reg/']]),
      },
      registries,
    ),
    'https://acme.example/reg/@acme/x/-/x-1.0.0.tgz',
  );
  t.is(
    npmDownloadUrl(
      'x',
      'https://other.example/x.tgz',
      {registry: 'https://m/', scopes: new Map()},
      registries,
    ),
    'https://other.example/x.tgz',
  );
});

test('PyPI file names give their version only for the project asked about', t => {
  t.is(versionFromFilename('Flask-3.0.0-py3-none-any.whl', 'flask'), '3.0.0');
  t.is(versionFromFilename('zope.interface-6.1.tar.gz', 'zope-interface'), '6.1');
  t.is(versionFromFilename('flask_login-0.6.3-py3-none-any.whl', 'flask'), undefined);
});

test('platforms parse as npm names them', t => {
  t.deepEqual(parsePlatform('linux-x64'), {os: 'linux', cpu: 'x64'});
  t.deepEqual(parsePlatform('darwin'), {os: 'darwin', cpu: '*'});
});

test('asset names and repos in deploy.json cannot carry paths [R21]', t => {
  const asset = {repo: 'acme/tool', tag: 'v1', name: 'tool.tgz', sha256: 'a'.repeat(64)};
  t.notThrows(() => parseDeployConfig(JSON.stringify({assets: [asset]}), 'd'));
  for (const bad of [
    {name: '../../etc/passwd'},
    {name: 'a/b'},
    {repo: 'acme/../x/y'},
    {repo: '../..'},
    {repo: 'acme/..'},
    {tag: '../v1'},
    {sha256: 'abc'},
  ]) {
    t.throws(
      () => parseDeployConfig(JSON.stringify({assets: [{...asset, ...bad}]}), 'd'),
      {instanceOf: ConfigError},
      JSON.stringify(bad),
    );
  }
});

const art = (name: string, version: string) => ({
  ecosystem: 'npm' as const,
  name,
  version,
  path: `npm/${name}/${name}-${version}.tgz`,
  integrity: 'sha512-x',
  source: `https://registry.npmjs.org/${name}/-/${name}-${version}.tgz`,
  size: 1,
});

test('commit message and pull request body list added, updated (old → new) and removed', t => {
  const changes: Change[] = [
    {kind: 'added', artifact: art('a', '1.0.0')},
    {kind: 'updated', from: art('b', '1.0.0'), to: art('b', '2.0.0')},
    {kind: 'removed', artifact: art('c', '0.1.0')},
  ];
  t.is(
    commitMessage(changes, 'abc123'),
    'vendor-sync: 1 added, 1 updated, 1 removed for app abc123\n\nAdded:\n  npm a 1.0.0\n\nUpdated:\n  npm b: 1.0.0 → 2.0.0\n\nRemoved:\n  npm c 0.1.0\n',
  );
  const body = pullRequestBody(changes, 'abc123');
  t.regex(
    body,
    /\| `b` \| npm \| 1\.0\.0 → 2\.0\.0 \| \[registry\.npmjs\.org\]\(https:\/\/registry\.npmjs\.org\/b\/-\/b-2\.0\.0\.tgz\) \|/,
  );
  t.regex(body, /\| `c` \| npm \| removed 0\.1\.0 \|/);
});

test('progress: a bar on a terminal, plain lines elsewhere', t => {
  const plain = new PassThrough();
  let text = '';
  plain.on('data', (d: Buffer) => (text += d.toString()));
  const lines = createProgress(plain, 2, 'download');
  lines.tick('npm a 1.0.0');
  lines.tick('npm b 2.0.0');
  lines.stop();
  t.is(text, 'download 1/2 npm a 1.0.0\ndownload 2/2 npm b 2.0.0\n');

  const tty = Object.assign(new PassThrough(), {
    isTTY: true,
    columns: 80,
    cursorTo: () => true,
    clearLine: () => true,
    moveCursor: () => true,
  });
  let drawn = '';
  tty.on('data', (d: Buffer) => (drawn += d.toString()));
  const bar = createProgress(tty, 2, 'download');
  bar.tick('npm a 1.0.0');
  bar.stop();
  t.regex(drawn, /download \[[^\]]+\] \d\/2/);
});
