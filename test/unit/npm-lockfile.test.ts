import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test from 'ava';
import {ConfigError, IntegrityError} from '../../lib/support/errors.js';
import {readLockfile} from '../../lib/pins/npm-lockfile.js';
import {tempDir} from '../helpers/tmp.js';

const sha512 = `sha512-${Buffer.alloc(64, 7).toString('base64')}`;
const npmDefaults = {
  type: 'npm' as const,
  directory: '.',
  scripts: true,
  dev: false,
  registries: ['https://registry.npmjs.org/'],
  reuse: true,
};

async function lockfileIn(
  t: Parameters<typeof tempDir>[0],
  packages: Record<string, unknown>,
  version = 3,
) {
  const dir = await tempDir(t);
  await fsp.writeFile(
    path.join(dir, 'package-lock.json'),
    JSON.stringify({lockfileVersion: version, packages}),
  );
  return dir;
}

test('readLockfile keeps what npm ci installs and skips links, bundled, dev and foreign-platform optional entries', async t => {
  const dir = await lockfileIn(t, {
    '': {name: 'app'},
    'node_modules/a': {
      version: '1.0.0',
      resolved: 'https://registry.npmjs.org/a/-/a-1.0.0.tgz',
      integrity: sha512,
    },
    'node_modules/@s/b': {
      version: '2.0.0',
      resolved: 'https://registry.npmjs.org/@s/b/-/b-2.0.0.tgz',
      integrity: sha512,
    },
    'node_modules/a/node_modules/c': {
      version: '3.0.0',
      resolved: 'https://registry.npmjs.org/c/-/c-3.0.0.tgz',
      integrity: sha512,
    },
    'node_modules/linked': {link: true, resolved: 'packages/linked'},
    'node_modules/x/node_modules/bundled': {version: '1.0.0', inBundle: true},
    'node_modules/devonly': {version: '1.0.0', dev: true},
    'node_modules/fsevents': {version: '2.3.3', optional: true, os: ['darwin']},
  });
  const reqs = await readLockfile(dir, npmDefaults);
  t.deepEqual(
    reqs.map(r => `${r.name}@${r.version}`),
    ['a@1.0.0', '@s/b@2.0.0', 'c@3.0.0'],
  );
  await t.throwsAsync(readLockfile(dir, {...npmDefaults, dev: true}), {
    instanceOf: IntegrityError,
    message: /devonly@1\.0\.0.*no "resolved"/,
  });
});

test('readLockfile refuses git, file, http-elsewhere and unhashed entries, and old lockfiles [R23]', async t => {
  const dir = await lockfileIn(t, {
    'node_modules/gitdep': {
      version: '1.0.0',
      resolved: 'git+ssh://git@github.com/x/y.git#abc',
      integrity: sha512,
    },
    'node_modules/filedep': {version: '1.0.0', resolved: 'file:../x.tgz', integrity: sha512},
    'node_modules/plain': {
      version: '1.0.0',
      resolved: 'http://registry.npmjs.org/plain/-/plain-1.0.0.tgz',
      integrity: sha512,
    },
    'node_modules/nohash': {
      version: '1.0.0',
      resolved: 'https://registry.npmjs.org/nohash/-/nohash-1.0.0.tgz',
    },
  });
  const error = await t.throwsAsync(readLockfile(dir, npmDefaults), {instanceOf: IntegrityError});
  t.regex(error.message, /^4 npm artifact problems/);
  t.regex(error.message, /gitdep@1\.0\.0.*git\+ssh: .*only registry tarballs/);
  t.regex(error.message, /filedep@1\.0\.0.*file:/);
  t.regex(
    error.message,
    /plain@1\.0\.0.*http:\/\/registry\.npmjs\.org, which is not an allowed registry/,
  );
  t.regex(error.message, /nohash@1\.0\.0.*no "integrity"/);

  const old = await lockfileIn(t, {}, 1);
  await t.throwsAsync(readLockfile(old, npmDefaults), {
    instanceOf: ConfigError,
    message: /lockfileVersion 1/,
  });
});

test('readLockfile gives one artifact per tarball: nested copies and aliases are paths of it; workspace members are not artifacts', async t => {
  const tarball = (name: string, version: string) =>
    `https://registry.npmjs.org/${name}/-/${name.split('/').pop() ?? name}-${version}.tgz`;
  const dir = await lockfileIn(t, {
    '': {name: 'app', workspaces: ['packages/api']},
    'node_modules/debug': {
      version: '4.4.1',
      resolved: tarball('debug', '4.4.1'),
      integrity: sha512,
    },
    'node_modules/send/node_modules/debug': {
      version: '2.6.9',
      resolved: tarball('debug', '2.6.9'),
      integrity: sha512,
    },
    'node_modules/body-parser/node_modules/debug': {
      version: '2.6.9',
      resolved: tarball('debug', '2.6.9'),
      integrity: sha512,
    },
    'node_modules/debug-v2': {
      name: 'debug',
      version: '2.6.9',
      resolved: tarball('debug', '2.6.9'),
      integrity: sha512,
    },
    'packages/api': {name: 'api', version: '1.0.0'},
    'node_modules/api': {link: true, resolved: 'packages/api'},
    'packages/api/node_modules/ms': {
      version: '2.1.3',
      resolved: tarball('ms', '2.1.3'),
      integrity: sha512,
    },
  });
  const reqs = await readLockfile(dir, npmDefaults);
  t.deepEqual(
    reqs.map(r => [`${r.name}@${r.version}`, r.keys]),
    [
      ['debug@4.4.1', ['node_modules/debug']],
      [
        'debug@2.6.9',
        [
          'node_modules/send/node_modules/debug',
          'node_modules/body-parser/node_modules/debug',
          'node_modules/debug-v2',
        ],
      ],
      ['ms@2.1.3', ['packages/api/node_modules/ms']],
    ],
  );
});

test('readLockfile refuses paths that leave the app, names that are no package names, and one version pinned with two hashes [R36]', async t => {
  const other = `sha512-${Buffer.alloc(64, 9).toString('base64')}`;
  const entry = (name: string, integrity = sha512) => ({
    version: '1.0.0',
    resolved: `https://registry.npmjs.org/${name}/-/${name}-1.0.0.tgz`,
    integrity,
  });
  const dir = await lockfileIn(t, {
    'node_modules/../../outside': entry('outside'),
    '../sibling': {version: '1.0.0'},
    '/abs/node_modules/x': entry('x'),
    'node_modules/evil': {...entry('evil'), name: '../../etc'},
    'node_modules/badversion': {...entry('badversion'), version: '1.0.0/../../x'},
    'node_modules/twice': entry('twice'),
    'node_modules/a/node_modules/twice': entry('twice', other),
  });
  const error = await t.throwsAsync(readLockfile(dir, npmDefaults), {instanceOf: IntegrityError});
  t.regex(error.message, /^6 npm artifact problems/);
  t.regex(error.message, /"node_modules\/\.\.\/\.\.\/outside": a path with "\.\."/);
  t.regex(error.message, /"\.\.\/sibling": a path with "\.\."/);
  t.regex(error.message, /"\/abs\/node_modules\/x": an absolute path/);
  t.regex(error.message, /"\.\.\/\.\.\/etc" is not an npm package name/);
  t.regex(error.message, /"1\.0\.0\/\.\.\/\.\.\/x" is not a version/);
  t.regex(error.message, /twice@1\.0\.0: package-lock\.json pins it with two different hashes/);
});

test('readLockfile refuses a resolved URL whose path would leave the registry on a mirror [R36]', async t => {
  const entry = (resolved: string) => ({version: '1.0.0', resolved, integrity: sha512});
  const dir = await lockfileIn(t, {
    'node_modules/a': entry('https://registry.npmjs.org///evil.example/a.tgz'),
    'node_modules/b': entry('https://registry.npmjs.org/http://169.254.169.254/b.tgz'),
    'node_modules/c': entry('https://registry.npmjs.org/c/-/c-1.0.0.tgz?x=1'),
  });
  const error = await t.throwsAsync(readLockfile(dir, npmDefaults), {instanceOf: IntegrityError});
  t.regex(error.message, /^3 npm artifact problems/);
  t.regex(error.message, /a@1\.0\.0 .*a path no registry serves tarballs at/);
  t.regex(error.message, /b@1\.0\.0 .*a path no registry serves tarballs at/);
});

test('readLockfile refuses a package-lock.json that is a symlink [R15]', async t => {
  const dir = await tempDir(t);
  await fsp.symlink('/etc/passwd', path.join(dir, 'package-lock.json'));
  await t.throwsAsync(readLockfile(dir, npmDefaults), {
    instanceOf: IntegrityError,
    message: /symlink/,
  });
});
