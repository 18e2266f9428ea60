import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test from 'ava';
import {parseDeployConfig} from '../../lib/pins/deploy-config.js';
import {ConfigError, ReleasePathError} from '../../lib/support/errors.js';
import {checkReleasePaths, namedPath, namedPaths} from '../../lib/node/release-path.js';
import {tempDir} from '../helpers/tmp.js';

test('[R34] namedPath refuses .repodeploy, "..", absolute paths and the release itself', t => {
  for (const [declared, why] of [
    ['.repodeploy/', /names \.repodeploy, the release's own metadata/],
    ['./.repodeploy/release.json', /names \.repodeploy/],
    ['.REPODEPLOY', /names \.repodeploy/],
    ['a/../../b', /leaves the release/],
    ['/etc/app.ini', /must be a relative path/],
    ['a\\..\\b', /must be a relative path/],
    ['./', /names the release directory itself/],
  ] as const) {
    const error = t.throws(() => namedPath('shared[2]', declared), {
      instanceOf: ReleasePathError,
    });
    t.true(error instanceof ConfigError, 'exit 3, as every deploy.json error');
    t.regex(error.message, /^deploy\.json "shared\[2\]": /);
    t.regex(error.message, why, declared);
  }
  t.deepEqual(namedPath('shared[0]', './var//uploads/').parts, ['var', 'uploads']);
  t.deepEqual(namedPath('install.directory', '.', true).parts, []);
});

test('[R34] namedPaths lists every path deploy.json names, under its key', t => {
  const npm = parseDeployConfig(
    JSON.stringify({shared: ['a.ini', 'up/'], install: {type: 'npm', directory: 'web'}}),
    'deploy.json',
  );
  t.deepEqual(
    namedPaths(npm).map(n => [n.key, n.parts.join('/')]),
    [
      ['shared[0]', 'a.ini'],
      ['shared[1]', 'up'],
      ['install.directory', 'web'],
      ['install.directory', 'web/node_modules'],
    ],
  );
  const pip = parseDeployConfig(JSON.stringify({install: 'pip'}), 'deploy.json');
  t.deepEqual(
    namedPaths(pip).map(n => [n.key, n.parts.join('/')]),
    [
      ['install.requirements', 'requirements.txt'],
      ['install.venv', 'venv'],
    ],
  );
});

test('[R34] checkReleasePaths refuses a symlink anywhere on the way, naming it and its target', async t => {
  const dir = await tempDir(t);
  await fsp.mkdir(path.join(dir, 'real/sub'), {recursive: true});
  await fsp.writeFile(path.join(dir, 'real/file.ini'), 'x');
  await fsp.symlink('/etc', path.join(dir, 'etc-link'));
  await fsp.symlink('sub', path.join(dir, 'real/inner'));
  await fsp.symlink('..', path.join(dir, 'up'));
  await fsp.symlink('/tmp\n\u001b[2Jok', path.join(dir, 'noisy'));
  const config = (value: unknown) => parseDeployConfig(JSON.stringify(value), 'deploy.json');

  for (const [value, message] of [
    [
      {shared: ['etc-link/app/']},
      /"shared\[0\]": "etc-link\/app\/" goes through etc-link, a symlink to \/etc in the release/,
    ],
    [
      {shared: ['ok/', 'real/inner/x.ini']},
      /"shared\[1\]": .* goes through real\/inner, a symlink to sub/,
    ],
    [{shared: ['up/r1/']}, /goes through up, a symlink to \.\./],
    [{shared: ['etc-link']}, /goes through etc-link, a symlink to \/etc/],
    [{shared: ['noisy/x/']}, /goes through noisy, a symlink to "\/tmp\\n\\u001b\[2Jok" in/],
    [{shared: ['real/file.ini/x']}, /goes through real\/file\.ini, a file in the release/],
    [{install: {type: 'npm', directory: 'etc-link'}}, /"install\.directory"/],
    [{install: {type: 'npm', directory: 'real/inner/web'}}, /"install\.directory"/],
    [{install: {type: 'pip', venv: 'up/venv'}}, /"install\.venv"/],
    [{install: {type: 'pip', requirements: 'etc-link/req.txt'}}, /"install\.requirements"/],
  ] as const) {
    const error = await t.throwsAsync(checkReleasePaths(dir, config(value)), {
      instanceOf: ReleasePathError,
    });
    t.regex(error.message, message, JSON.stringify(value));
  }
  // A virtualenv is written all over: a link anywhere inside a committed one is refused too.
  await fsp.mkdir(path.join(dir, 'env/lib/python3'), {recursive: true});
  await fsp.symlink('/usr/local/bin', path.join(dir, 'env/lib/python3/bin'));
  await t.throwsAsync(checkReleasePaths(dir, config({install: {type: 'pip', venv: 'env'}})), {
    message:
      /"install\.venv": "env" has env\/lib\/python3\/bin in it, a symlink to \/usr\/local\/bin in the release/,
  });
  await t.notThrowsAsync(
    checkReleasePaths(dir, config({install: {type: 'pip', venv: 'pyenv'}, shared: ['env/']})),
    'a shared directory beside the venv',
  );
  // A venv inside a shared directory would be written into the live one: deploy-config refuses.
  t.throws(() => config({install: {type: 'pip', venv: 'env/new'}, shared: ['env/']}), {
    message: /"shared" entry "env\/" overlaps env\/new, which the install writes/,
  });
  // Real directories, paths still to be created, and the release root as npm's directory pass.
  await fsp.symlink('sub', path.join(dir, 'real/node_modules'));
  for (const value of [
    {shared: ['real/sub/uploads/', 'real/file.ini', 'new/dir/'], install: 'npm'},
    {install: {type: 'npm', directory: 'real/sub'}},
    {install: 'pip'},
  ]) {
    await t.notThrowsAsync(checkReleasePaths(dir, config(value)), JSON.stringify(value));
  }
  await t.throwsAsync(checkReleasePaths(dir, config({install: {type: 'npm', directory: 'real'}})), {
    message:
      /"install\.directory": "real" \(real\/node_modules\) goes through real\/node_modules, a symlink to sub/,
  });
});
