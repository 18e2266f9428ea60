import test from 'ava';
import {UsageError} from '../../lib/support/errors.js';
import {parseRepoLocation} from '../../lib/git/location.js';

test('http(s) URLs are kept, paths are made absolute', t => {
  t.deepEqual(parseRepoLocation('https://git.example/app.git/'), {
    kind: 'http',
    url: 'https://git.example/app.git',
  });
  t.deepEqual(parseRepoLocation('app', {cwd: '/srv'}), {kind: 'path', path: '/srv/app'});
  t.deepEqual(parseRepoLocation('file:///srv/app.git'), {kind: 'path', path: '/srv/app.git'});
});

test('relative pins resolve against the app location, as git resolves submodule URLs', t => {
  t.deepEqual(
    parseRepoLocation('../vendor.git', {base: {kind: 'http', url: 'http://h/team/app.git'}}),
    {
      kind: 'http',
      url: 'http://h/team/vendor.git',
    },
  );
  t.deepEqual(parseRepoLocation('./lib', {base: {kind: 'path', path: '/repos/app'}}), {
    kind: 'path',
    path: '/repos/app/lib',
  });
});

test('credentials in a URL and unsupported schemes are refused', t => {
  const withToken = t.throws(() => parseRepoLocation('https://user:secret@h/app.git'), {
    instanceOf: UsageError,
  });
  t.false(withToken.message.includes('secret'));
  t.regex(withToken.hint ?? '', /DEPLOY_GIT_TOKEN/);
  t.throws(() => parseRepoLocation('ssh://h/app.git'), {
    instanceOf: UsageError,
    message: /only http\(s\)/,
  });
  t.throws(() => parseRepoLocation('git@h:app.git'), {instanceOf: UsageError});
  t.throws(() => parseRepoLocation('  '), {instanceOf: UsageError});
});
