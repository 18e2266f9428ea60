import test from 'ava';
import {ConfigError, IntegrityError} from '../../lib/support/errors.js';
import {parsePnpmLock, pnpmReleaseProblem} from '../../lib/pins/pnpm-lock.js';

const sha = (n: number) => `sha512-${Buffer.alloc(64, n).toString('base64')}`;
const REG = 'https://registry.npmjs.org/';
const prod = {dev: false, registries: [REG]};
const linux = [{os: 'linux', cpu: 'x64'}];

/** A pnpm 9 lockfile: a workspace, a duplicate, an alias, a scoped package, peers, per-OS optionals. */
const V9 = `lockfileVersion: '9.0'

settings:
  autoInstallPeers: true
  excludeLinksFromLockfile: false

importers:

  .:
    dependencies:
      '@acme/util':
        specifier: 1.2.0
        version: 1.2.0
      aliased:
        specifier: npm:real-name@3.0.0
        version: real-name@3.0.0
      has-native:
        specifier: 1.0.0
        version: 1.0.0
      left-pad:
        specifier: 2.0.0
        version: 2.0.0
      member:
        specifier: workspace:*
        version: link:packages/member
      react-dom:
        specifier: 18.2.0
        version: 18.2.0(react@18.2.0)
    devDependencies:
      devonly:
        specifier: 1.0.0
        version: 1.0.0

  packages/member:
    dependencies:
      left-pad:
        specifier: 1.0.0
        version: 1.0.0

packages:

  '@acme/util@1.2.0':
    resolution: {integrity: ${sha(1)}}

  devonly@1.0.0:
    resolution: {integrity: ${sha(2)}}

  has-native@1.0.0:
    resolution: {integrity: ${sha(3)}}

  left-pad@1.0.0:
    resolution: {integrity: ${sha(4)}}

  left-pad@2.0.0:
    resolution: {integrity: ${sha(5)}, tarball: https://registry.npmjs.org/left-pad/-/left-pad-2.0.0.tgz}

  native-darwin@1.0.0:
    resolution: {integrity: ${sha(6)}}
    os: [darwin]

  native-linux@1.0.0:
    resolution: {integrity: ${sha(7)}}
    os: [linux]

  react@18.2.0:
    resolution: {integrity: ${sha(8)}}

  react-dom@18.2.0:
    resolution: {integrity: ${sha(9)}}
    peerDependencies:
      react: ^18.2.0

  real-name@3.0.0:
    resolution: {integrity: ${sha(10)}}

snapshots:

  '@acme/util@1.2.0': {}

  devonly@1.0.0: {}

  has-native@1.0.0:
    optionalDependencies:
      native-darwin: 1.0.0
      native-linux: 1.0.0

  left-pad@1.0.0: {}

  left-pad@2.0.0: {}

  native-darwin@1.0.0:
    optional: true

  native-linux@1.0.0:
    optional: true

  react-dom@18.2.0(react@18.2.0):
    dependencies:
      react: 18.2.0

  react@18.2.0: {}

  real-name@3.0.0: {}
`;

/** The same app as pnpm 8 writes it (lockfile 6.0): keys start with "/", the graph is in packages. */
const V6 = `lockfileVersion: '6.0'

importers:

  .:
    dependencies:
      aliased:
        specifier: npm:real-name@3.0.0
        version: /real-name@3.0.0
      has-native:
        specifier: 1.0.0
        version: 1.0.0
      react-dom:
        specifier: 18.2.0
        version: 18.2.0(react@18.2.0)
    devDependencies:
      devonly:
        specifier: 1.0.0
        version: 1.0.0

  packages/member:
    dependencies:
      '@acme/util':
        specifier: 1.2.0
        version: 1.2.0

packages:

  /@acme/util@1.2.0:
    resolution: {integrity: ${sha(1)}}
    dev: false

  /devonly@1.0.0:
    resolution: {integrity: ${sha(2)}}
    dev: true

  /has-native@1.0.0:
    resolution: {integrity: ${sha(3)}}
    optionalDependencies:
      native-darwin: 1.0.0
    dev: false

  /native-darwin@1.0.0:
    resolution: {integrity: ${sha(6)}}
    os: [darwin]
    requiresBuild: true
    dev: false
    optional: true

  /react-dom@18.2.0(react@18.2.0):
    resolution: {integrity: ${sha(9)}}
    peerDependencies:
      react: ^18.2.0
    dependencies:
      react: 18.2.0
    dev: false

  /react@18.2.0:
    resolution: {integrity: ${sha(8)}}
    dev: false

  /real-name@3.0.0:
    resolution: {integrity: ${sha(10)}}
    dev: false
`;

const ids = (lock: ReturnType<typeof parsePnpmLock>) =>
  lock.requirements.map(r => `${r.name}@${r.version}`).sort();

test('lockfile 9: one need per tarball, from every project, prod only, for the platform', t => {
  const lock = parsePnpmLock(V9, 'pnpm-lock.yaml', prod, linux);
  t.is(lock.major, 9);
  t.deepEqual(ids(lock), [
    '@acme/util@1.2.0',
    'has-native@1.0.0',
    'left-pad@1.0.0',
    'left-pad@2.0.0',
    'native-linux@1.0.0',
    'react-dom@18.2.0',
    'react@18.2.0',
    'real-name@3.0.0',
  ]);
  t.deepEqual(lock.importers, ['.', 'packages/member']);
  const reactDom = lock.requirements.find(r => r.name === 'react-dom');
  t.deepEqual(reactDom?.keys, ['react-dom@18.2.0(react@18.2.0)']);
  t.is(reactDom?.resolved, `${REG}react-dom/-/react-dom-18.2.0.tgz`);
  t.is(reactDom?.integrity, sha(9));
  const scoped = lock.requirements.find(r => r.name === '@acme/util');
  t.is(scoped?.resolved, `${REG}@acme/util/-/util-1.2.0.tgz`);
  const aliased = lock.requirements.find(r => r.name === 'real-name');
  t.deepEqual(aliased?.keys, ['real-name@3.0.0']);
});

test('lockfile 9: dev dependencies with dev, and the other platform’s optional package', t => {
  const lock = parsePnpmLock(V9, 'pnpm-lock.yaml', {...prod, dev: true}, [
    {os: 'darwin', cpu: 'arm64'},
  ]);
  const got = ids(lock);
  t.true(got.includes('devonly@1.0.0'));
  t.true(got.includes('native-darwin@1.0.0'));
  t.false(got.includes('native-linux@1.0.0'));
});

test('lockfile 6: the same shapes read, with "/" keys and the graph in packages', t => {
  const lock = parsePnpmLock(V6, 'pnpm-lock.yaml', prod, linux);
  t.is(lock.major, 6);
  t.deepEqual(ids(lock), [
    '@acme/util@1.2.0',
    'has-native@1.0.0',
    'react-dom@18.2.0',
    'react@18.2.0',
    'real-name@3.0.0',
  ]);
  t.is(
    lock.requirements.find(r => r.name === '@acme/util')?.resolved,
    `${REG}@acme/util/-/util-1.2.0.tgz`,
  );
  const withDev = parsePnpmLock(V6, 'pnpm-lock.yaml', {...prod, dev: true}, linux);
  t.true(ids(withDev).includes('devonly@1.0.0'));
});

test('a git source, a missing integrity, a sha1 and a foreign registry are refused, all named [R23]', t => {
  const text = `lockfileVersion: '9.0'
importers:
  .:
    dependencies:
      from-git:
        specifier: github:acme/from-git
        version: https://codeload.github.com/acme/from-git/tar.gz/0123456789abcdef
      git-repo:
        specifier: git+https://example.com/r.git
        version: git+https://example.com/r.git#0123456789abcdef
      no-hash:
        specifier: 1.0.0
        version: 1.0.0
      weak:
        specifier: 1.0.0
        version: 1.0.0
      elsewhere:
        specifier: 1.0.0
        version: 1.0.0
      local:
        specifier: file:vendor/local
        version: file:vendor/local
packages:
  from-git@https://codeload.github.com/acme/from-git/tar.gz/0123456789abcdef:
    resolution: {tarball: https://codeload.github.com/acme/from-git/tar.gz/0123456789abcdef}
    version: 1.0.0
  git-repo@git+https://example.com/r.git#0123456789abcdef:
    resolution: {type: git, repo: https://example.com/r.git, commit: 0123456789abcdef}
    version: 1.0.0
  no-hash@1.0.0:
    resolution: {}
  weak@1.0.0:
    resolution: {integrity: sha1-${Buffer.alloc(20, 1).toString('base64')}}
  elsewhere@1.0.0:
    resolution: {integrity: ${sha(3)}, tarball: https://evil.example/elsewhere-1.0.0.tgz}
  local@file:vendor/local:
    resolution: {directory: vendor/local, type: directory}
snapshots:
  local@file:vendor/local: {}
`;
  const error = t.throws(() => parsePnpmLock(text, 'pnpm-lock.yaml', prod, linux), {
    instanceOf: IntegrityError,
  });
  const message = error.message;
  t.regex(message, /5 npm artifact problems/);
  t.regex(message, /from-git@https:\/\/codeload[^\n]*not an allowed registry/);
  t.regex(message, /git-repo@[^\n]*a git source/);
  t.regex(message, /"no-hash@1\.0\.0"[^\n]*no resolution\.integrity/);
  t.regex(message, /"weak@1\.0\.0"[^\n]*sha1 alone/);
  t.regex(message, /"elsewhere@1\.0\.0"[^\n]*evil\.example[^\n]*not an allowed registry/);
  t.notRegex(message, /local/);
});

test('other lockfile versions and pnpm 12 are refused with what to do', t => {
  t.throws(() => parsePnpmLock("lockfileVersion: '5.4'\n", 'pnpm-lock.yaml', prod), {
    instanceOf: ConfigError,
    message: /lockfileVersion 5\.4/,
  });
  t.throws(() => parsePnpmLock('[1, 2]\n', 'pnpm-lock.yaml', prod), {instanceOf: ConfigError});
  t.regex(
    pnpmReleaseProblem({version: '12.1.0', field: 'pnpm@12.1.0'})?.message ?? '',
    /per-platform binaries/,
  );
  t.is(pnpmReleaseProblem({version: '10.34.9', field: 'pnpm@10.34.9'}), undefined);
});

test("link: and file: paths that leave the app are refused, the app's own folders are not", t => {
  const text = `lockfileVersion: '9.0'
importers:
  .:
    dependencies:
      member:
        specifier: workspace:*
        version: link:packages/member
      escape:
        specifier: link:../../etc
        version: link:../../etc
      outside:
        specifier: file:../outside
        version: file:../outside
  packages/member:
    dependencies:
      sibling:
        specifier: link:../sibling
        version: link:../sibling
packages:
  outside@file:../outside:
    resolution: {directory: ../outside, type: directory}
snapshots:
  outside@file:../outside: {}
`;
  const error = t.throws(() => parsePnpmLock(text, 'pnpm-lock.yaml', prod, linux), {
    instanceOf: IntegrityError,
  });
  t.regex(error.message, /"escape" of project "\.": link:\.\.\/\.\.\/etc is outside the app/);
  t.regex(error.message, /"outside" of project "\.": file:\.\.\/outside is outside the app/);
  t.regex(error.message, /"outside@file:\.\.\/outside": \.\.\/outside is outside the app/);
  t.notRegex(error.message, /member|sibling/);
});

test('patch files are listed, and one outside the app is refused', t => {
  const lock = (file: string) => `lockfileVersion: '9.0'
patchedDependencies:
  left-pad@1.0.0:
    hash: 0123
    path: ${file}
importers:
  .: {}
`;
  t.deepEqual(parsePnpmLock(lock('patches/left-pad@1.0.0.patch'), 'pnpm-lock.yaml', prod).patches, [
    'patches/left-pad@1.0.0.patch',
  ]);
  t.throws(() => parsePnpmLock(lock('../elsewhere.patch'), 'pnpm-lock.yaml', prod), {
    instanceOf: IntegrityError,
    message: /patchedDependencies "left-pad@1\.0\.0": \.\.\/elsewhere\.patch is not a file inside/,
  });
});

/** A lockfile 9 with one root dependency `a` and the given `packages` / `snapshots` sections. */
const hostile = (ref: string, packages: string, snapshots: string) => `lockfileVersion: '9.0'
importers:
  .:
    dependencies:
      a:
        specifier: '*'
        version: ${ref}
packages:
${packages}
snapshots:
${snapshots}
`;

test('a snapshot cannot say what a package is: pnpm takes resolution and name from "packages"', t => {
  const text = hostile(
    '1.0.0',
    `  a@1.0.0:\n    resolution: {type: git, repo: 'git://evil.example/x.git', commit: abc}\n`,
    `  a@1.0.0:\n    resolution: {integrity: ${sha(1)}}\n    name: lodash\n    version: 4.17.21\n`,
  );
  const error = t.throws(() => parsePnpmLock(text, 'pnpm-lock.yaml', prod, linux), {
    instanceOf: IntegrityError,
  });
  t.regex(error.message, /a git source/);
  t.regex(error.message, /snapshot "a@1\.0\.0" carries resolution, name, version/);
});

test('every "packages" entry is checked, not only those a walk reaches: a key pnpm picks is never unchecked', t => {
  // `a: b@1.0.0` is pnpm's alias form: the key is b@1.0.0. A benign a@b@1.0.0 beside it must not
  // stand in for the git b@1.0.0 pnpm would fetch.
  const text = hostile(
    'b@1.0.0',
    `  a@b@1.0.0:\n    resolution: {integrity: ${sha(1)}}\n  b@1.0.0:\n    resolution: {type: git, repo: 'git://evil.example/x.git', commit: abc}\n`,
    `  a@b@1.0.0: {}\n  b@1.0.0: {}\n`,
  );
  const error = t.throws(() => parsePnpmLock(text, 'pnpm-lock.yaml', prod, linux), {
    instanceOf: IntegrityError,
  });
  t.regex(error.message, /"b@1\.0\.0" in pnpm-lock\.yaml: a git source/);
  // An unreached entry with no integrity is refused too.
  const unreached = hostile(
    '1.0.0',
    `  a@1.0.0:\n    resolution: {integrity: ${sha(1)}}\n  x@1.0.0:\n    resolution: {tarball: 'http://127.0.0.1:6379/x.tgz'}\n`,
    `  a@1.0.0: {}\n`,
  );
  t.throws(() => parsePnpmLock(unreached, 'pnpm-lock.yaml', prod, linux), {
    instanceOf: IntegrityError,
    message: /x@1\.0\.0/,
  });
});

test('workspace projects outside the app, and package links leaving it, are refused', t => {
  const outside = `lockfileVersion: '9.0'
importers:
  .: {}
  ../../../../srv/other:
    dependencies:
      a: {specifier: '1.0.0', version: 1.0.0}
  /etc:
    dependencies:
      a: {specifier: '1.0.0', version: 1.0.0}
packages:
  a@1.0.0:
    resolution: {integrity: ${sha(1)}}
snapshots:
  a@1.0.0:
    dependencies:
      x: link:../../../../etc
`;
  const error = t.throws(() => parsePnpmLock(outside, 'pnpm-lock.yaml', prod, linux), {
    instanceOf: IntegrityError,
  });
  t.regex(error.message, /project "\.\.\/\.\.\/\.\.\/\.\.\/srv\/other" is outside the app/);
  t.regex(error.message, /project "\/etc" is outside the app/);
  t.regex(error.message, /links "x" to \.\.\/\.\.\/\.\.\/\.\.\/etc, outside the app/);
});

test('a lockfile of the wrong shapes is a config error, not a crash', t => {
  for (const deps of ['{a: null}', '{a: {version: 5}}', '[1, 2]']) {
    const text = `lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies: ${deps}\n`;
    t.throws(() => parsePnpmLock(text, 'pnpm-lock.yaml', prod, linux), {
      instanceOf: ConfigError,
      message: /is not a lockfile pnpm writes/,
    });
  }
});
