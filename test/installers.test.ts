import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test from 'ava';
import {parseDeployConfig} from '../lib/pins/deploy-config.js';
import {ConfigError, InstallError, IntegrityError} from '../lib/support/errors.js';
import {readLockfile} from '../lib/pins/npm-lockfile.js';
import {parseRequirements} from '../lib/install/pip.js';
import {runLogged} from '../lib/install/run.js';
import {tempDir} from './helpers/tmp.js';

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

const hash = (c: string) => `sha256:${c.repeat(64)}`;

test('parseRequirements reads pinned, hashed lines with continuations, extras and markers', t => {
  const reqs = parseRequirements(
    [
      '# comment',
      `Flask[async]==3.0.0 \\`,
      `    --hash=${hash('a')} \\`,
      `    --hash=${hash('b')}`,
      `zope.interface==6.1 --hash=${hash('c')}  # trailing comment`,
      `tomli==2.0.1 ; python_version < "3.11" --hash=${hash('d')}`,
      '--require-hashes',
      '',
    ].join('\n'),
    'requirements.txt',
  );
  t.is(reqs.length, 3);
  t.like(reqs[0], {name: 'Flask', version: '3.0.0', line: 2});
  t.is(reqs[0]?.integrity.split(' ').length, 2);
  t.like(reqs[1], {name: 'zope.interface', version: '6.1', marker: undefined});
  t.like(reqs[2], {name: 'tomli', version: '2.0.1', marker: 'python_version < "3.11"'});
});

test('parseRequirements refuses unpinned, unhashed and option lines, with line numbers [R24]', t => {
  const error = t.throws(
    () =>
      parseRequirements(
        [
          `requests>=2 --hash=${hash('a')}`,
          'idna==3.4',
          '--index-url https://pypi.example/simple',
          `-e git+https://h/x.git#egg=x`,
          `six==1.16.0 --hash=md5:${'a'.repeat(32)}`,
        ].join('\n'),
        'requirements.txt',
      ),
    {instanceOf: IntegrityError},
  );
  t.regex(error.message, /requirements\.txt:1: "requests>=2" is not pinned/);
  t.regex(error.message, /requirements\.txt:2: idna==3\.4 has no --hash/);
  t.regex(error.message, /requirements\.txt:3: option --index-url is not allowed/);
  t.regex(error.message, /requirements\.txt:4: option -e \(--editable\) is not allowed/);
  t.regex(error.message, /requirements\.txt:5: bad hash/);
});

test('deploy.json install forms and their defaults', t => {
  t.like(parseDeployConfig('{"install": "npm"}', 'd').install, {
    type: 'npm',
    scripts: true,
    dev: false,
    directory: '.',
  });
  t.like(parseDeployConfig('{"install": "pip"}', 'd').install, {
    type: 'pip',
    requirements: 'requirements.txt',
    python: 'python3',
    venv: 'venv',
  });
  t.like(parseDeployConfig('{"install": {"command": ["make", "install"]}}', 'd').install, {
    type: 'command',
    command: ['make', 'install'],
  });
  t.throws(() => parseDeployConfig('{"install": {"type": "npm", "scripts": "no"}}', 'd'), {
    message: /"install\.scripts"/,
  });
  t.throws(() => parseDeployConfig('{"install": {"type": "pip", "venv": "../../etc"}}', 'd'), {
    message: /"install\.venv": must be a relative path/,
  });
  t.throws(() => parseDeployConfig('{"install": "yarn"}', 'd'), {message: /"install\.type"/});
  t.throws(() => parseDeployConfig('{"install": {"type": "npm", "registry": "x"}}', 'd'), {
    message: /unknown key "install\.registry"/,
  });
});

test('runLogged: work done alongside the command that fails stops the command and is the error; a command that fails waits for that work', async t => {
  const dir = await tempDir(t);
  const logFile = path.join(dir, 'install.log');
  const pidFile = path.join(dir, 'pid');
  const started = Date.now();
  const error = await t.throwsAsync(
    runLogged('sh', ['-c', `echo $$ > "${pidFile}"; exec sleep 60`], {
      cwd: dir,
      env: {PATH: process.env.PATH ?? ''},
      logFile,
      label: 'slow',
      alongside: async () => {
        // Wait until the command runs, then fail.
        for (
          let i = 0;
          i < 200 &&
          !(await fsp.access(pidFile).then(
            () => true,
            () => false,
          ));
          i++
        )
          await new Promise(resolve => setTimeout(resolve, 10));
        throw new Error('the write failed');
      },
    }),
  );
  t.is(error.message, 'the write failed');
  t.true(Date.now() - started < 30_000, 'the command did not run to its end');
  const pid = Number((await fsp.readFile(pidFile, 'utf8')).trim());
  t.throws(() => process.kill(pid, 0), {code: 'ESRCH'}, 'the command is gone');

  let finished = false;
  const failed = await t.throwsAsync(
    runLogged('sh', ['-c', 'exit 3'], {
      cwd: dir,
      env: {PATH: process.env.PATH ?? ''},
      logFile,
      label: 'quick',
      alongside: async () => {
        await new Promise(resolve => setTimeout(resolve, 300));
        finished = true;
      },
    }),
    {instanceOf: InstallError},
  );
  t.regex(failed.message, /quick failed \(exit code 3\)/);
  t.true(finished, 'the work alongside finished before the failure was thrown');
});
