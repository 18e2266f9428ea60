import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {promisify} from 'node:util';
import test from 'ava';
import {listenLocal} from './helpers/http.js';
import {IntegrityError} from '../lib/support/errors.js';
import {makeWorld, packageRoot, pinVendor, runDeploy} from './helpers/world.js';

const exec = promisify(execFile);
const example = path.join(packageRoot, 'examples', 'python-app');

/** The sample WSGI app and a vendor repo of wheels built offline by the example's own script. */
async function pipWorld(
  t: Parameters<typeof makeWorld>[0],
  mutate?: (vendorDir: string, appDir: string) => Promise<void>,
) {
  const world = await makeWorld(t);
  await fsp.cp(path.join(example, 'app.py'), path.join(world.app.dir, 'app.py'));
  await fsp.cp(path.join(example, 'app.ini'), path.join(world.app.dir, 'app.ini'));
  await exec('python3', [
    path.join(example, 'build_vendor.py'),
    world.vendor.dir,
    path.join(world.app.dir, 'requirements.txt'),
  ]);
  await mutate?.(world.vendor.dir, world.app.dir);
  await pinVendor(world, {
    config: {install: 'pip'},
    vendorMessage: 'wheels',
    appMessage: 'python app',
  });
  return world;
}

test('pip: installs into a virtualenv in the release from vendored wheels only; poisoned pip config changes nothing', async t => {
  const world = await pipWorld(t);
  let hits = 0;
  const trap = http.createServer((_req, res) => {
    hits++;
    res.writeHead(500).end();
  });
  const trapBase = await listenLocal(t, trap);
  const trapUrl = `${trapBase}/simple`;

  // If any of this reached pip, the install would fail: hello-mod 9.9 does not exist.
  const home = path.join(world.dir, 'poisoned-home');
  const badConstraints = path.join(world.dir, 'constraints.txt');
  await fsp.writeFile(badConstraints, 'hello-mod==9.9\n');
  await fsp.mkdir(path.join(home, '.config', 'pip'), {recursive: true});
  await fsp.writeFile(
    path.join(home, '.config', 'pip', 'pip.conf'),
    `[global]\nindex-url = ${trapUrl}\nconstraint = ${badConstraints}\n`,
  );
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    PIP_CONSTRAINT: badConstraints,
    PIP_INDEX_URL: trapUrl,
    PIP_FIND_LINKS: '/nonexistent/wheels',
    PIP_NO_INDEX: '0',
    PYTHONPATH: '/nonexistent/site',
    DEPLOY_GIT_TOKEN: 'secret-token-never-passed-on',
  };
  await runDeploy({root: world.root, rev: 'main', repo: world.appUrl}, {env});
  t.is(hits, 0);

  const current = path.join(world.root, 'current');
  const python = path.join(current, 'venv', 'bin', 'python');
  const script = [
    'import json, app',
    'out = []',
    "body = b''.join(app.application({'PATH_INFO': '/info'}, lambda status, headers: out.append(status)))",
    'print(out[0], body.decode())',
  ].join('\n');
  const {stdout} = await exec(python, ['-c', script], {
    cwd: current,
    env: {PATH: process.env.PATH},
  });
  t.is(
    stdout.trim(),
    '200 OK {"greeting": "** hello sync node **", "backoff": 300, "path": "/info"}',
  );
  const {stdout: where} = await exec(
    python,
    ['-c', 'import hello_mod; print(hello_mod.__file__)'],
    {
      env: {PATH: process.env.PATH},
    },
  );
  t.regex(
    where.trim(),
    /\/current\/venv\/lib\/python3\.\d+\/site-packages\/hello_mod\/__init__\.py$/,
  );
  t.true(where.trim().startsWith(world.root), 'imported from the release, not from anywhere else');
  const log = await fsp.readFile(path.join(current, '.repodeploy', 'install.log'), 'utf8');
  t.regex(log, /--no-index/);
  t.regex(log, /Successfully installed dep-mod-2\.0 hello-mod-1\.0/);
  t.false(log.includes('secret-token-never-passed-on'));
});

test('pip: one flipped byte in a vendored wheel is refused before pip runs [R22]', async t => {
  const world = await pipWorld(t, async vendorDir => {
    const wheel = path.join(vendorDir, 'pypi', 'hello_mod-1.0-py3-none-any.whl');
    const bytes = await fsp.readFile(wheel);
    bytes[10] = (bytes[10] ?? 0) ^ 0x40;
    await fsp.writeFile(wheel, bytes);
  });
  const error = await t.throwsAsync(
    runDeploy({root: world.root, rev: 'main', repo: world.appUrl}),
    {
      instanceOf: IntegrityError,
    },
  );
  t.regex(error.message, /hello-mod@1\.0.*do not match the pinned hash/);
  await t.throwsAsync(fsp.access(path.join(world.root, 'current')));
  const [id] = await fsp.readdir(path.join(world.root, 'releases'));
  await t.throwsAsync(
    fsp.access(path.join(world.root, 'releases', id ?? '', 'venv')),
    undefined,
    'no venv made',
  );
});

test('pip: an unhashed requirement is refused [R24]', async t => {
  const world = await pipWorld(t, async (_vendorDir, appDir) => {
    const file = path.join(appDir, 'requirements.txt');
    await fsp.appendFile(file, 'six==1.16.0\n');
  });
  await t.throwsAsync(runDeploy({root: world.root, rev: 'main', repo: world.appUrl}), {
    instanceOf: IntegrityError,
    message: /requirements\.txt:4: six==1\.16\.0 has no --hash/,
  });
});

test('command: runs in the release with RELEASE_DIR and VENDOR_DIR and nothing else of ours', async t => {
  const world = await makeWorld(t);
  await world.vendor.write({'tools/data.txt': 'vendored\n'});
  await pinVendor(world, {
    config: {install: {command: ['./install.sh'], env: {APP_MODE: 'production'}}},
    files: {
      'install.sh': {
        content:
          '#!/bin/sh\nset -e\ncp "$VENDOR_DIR/tools/data.txt" "$RELEASE_DIR/installed.txt"\nenv > "$RELEASE_DIR/env.txt"\n',
        mode: 0o755,
      },
    },
    vendorMessage: 'v',
  });
  const result = await runDeploy(
    {root: world.root, rev: 'main', repo: world.appUrl},
    {env: {PATH: process.env.PATH, DEPLOY_GIT_TOKEN: 'tok-do-not-leak', SECRET_OF_NODE: 'x'}},
  );
  const current = path.join(world.root, 'current');
  t.is(await fsp.readFile(path.join(current, 'installed.txt'), 'utf8'), 'vendored\n');
  const env = await fsp.readFile(path.join(current, 'env.txt'), 'utf8');
  t.regex(env, new RegExp(`^RELEASE_DIR=${result.releaseDir}$`, 'm'));
  t.regex(env, /^APP_MODE=production$/m);
  t.false(env.includes('tok-do-not-leak'));
  t.false(env.includes('SECRET_OF_NODE'));
});
