import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import http from 'node:http';
import {PassThrough} from 'node:stream';
import path from 'node:path';
import {promisify} from 'node:util';
import test from 'ava';
import {listenLocal} from './helpers/http.js';
import {IntegrityError} from '../lib/support/errors.js';
import {tempDir} from './helpers/tmp.js';
import {makeWorld, packageRoot, pinVendor, runDeploy, type World} from './helpers/world.js';
import {streamReporter, type Reporter} from '../lib/support/reporter.js';
import type {TreeFile} from '../lib/git/export.js';
import {pipInputs} from '../lib/install/pip.js';

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

/** The pip world with a console-script wheel (test/helpers/cli-wheel.py), and its other build. */
async function cliWorld(t: Parameters<typeof makeWorld>[0]) {
  const variant = path.join(await tempDir(t), 'greet_cli-variant.whl');
  let rebuilt: {integrity: string; size: number} | undefined;
  const world = await pipWorld(t, async (vendorDir, appDir) => {
    const {stdout} = await exec('python3', [
      path.join(packageRoot, 'test', 'helpers', 'cli-wheel.py'),
      vendorDir,
      path.join(appDir, 'requirements.txt'),
      variant,
    ]);
    rebuilt = JSON.parse(stdout) as {integrity: string; size: number};
  });
  /** Vendor the other build of greet-cli (the requirements allow both) and pin it. */
  const swapWheel = async () => {
    const rel = 'pypi/greet_cli-1.0-py3-none-any.whl';
    await fsp.copyFile(variant, path.join(world.vendor.dir, rel));
    const manifestFile = path.join(world.vendor.dir, 'vendor-manifest.json');
    const manifest = JSON.parse(await fsp.readFile(manifestFile, 'utf8')) as {
      artifacts: Array<{path: string; integrity: string; size: number}>;
    };
    for (const a of manifest.artifacts) if (a.path === rel) Object.assign(a, rebuilt);
    await fsp.writeFile(manifestFile, JSON.stringify(manifest, null, 2));
    await pinVendor(world, {config: {install: 'pip'}, vendorMessage: 'rebuilt', appMessage: 'pin'});
  };
  return {world, swapWheel};
}

/** A reporter that keeps every line it prints with --verbose, to read what the install step said. */
function recorder(): {lines: string[]; reporter: Reporter} {
  const lines: string[] = [];
  const stream = new PassThrough();
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)));
  return {lines, reporter: streamReporter(stream, {verbosity: 'verbose'})};
}

/** Commit one more app change (requirements untouched unless given) and deploy it. */
async function deployChange(world: World, n: number, files: Record<string, string> = {}) {
  await world.app.write({[`change-${n}.txt`]: `${n}\n`, ...files});
  await world.app.commit(`change ${n}`);
  await world.publish();
  const {lines, reporter} = recorder();
  const result = await runDeploy({root: world.root, rev: 'main'}, {reporter});
  return {...result, lines};
}

/** Whether pip ran for a release (its install log shows the venv being made). */
async function ranPip(releaseDir: string): Promise<boolean> {
  const log = await fsp
    .readFile(path.join(releaseDir, '.repodeploy', 'install.log'), 'utf8')
    .catch(() => '');
  return /^\$ .*-m venv /m.test(log);
}

/** What the venv of `releaseDir` says from there: its console script and its sys.prefix. */
async function venvSays(releaseDir: string): Promise<{script: string; prefix: string}> {
  const env = {PATH: '/usr/bin:/bin'};
  const bin = path.join(releaseDir, 'venv', 'bin');
  const {stdout: script} = await exec(path.join(bin, 'greet-cli'), [], {cwd: releaseDir, env});
  const {stdout: prefix} = await exec(
    path.join(bin, 'python'),
    ['-c', 'import sys; print(sys.prefix)'],
    {cwd: releaseDir, env},
  );
  return {script: script.trim(), prefix: prefix.trim()};
}

/** Every text file of bin/ and pyvenv.cfg that names `dir`. */
async function naming(venv: string, dir: string): Promise<string[]> {
  const files = [
    ...(await fsp.readdir(path.join(venv, 'bin'))).map(n => path.join('bin', n)),
    'pyvenv.cfg',
  ];
  const found: string[] = [];
  for (const file of files) {
    const full = path.join(venv, file);
    if (!(await fsp.lstat(full)).isFile()) continue;
    if ((await fsp.readFile(full, 'utf8')).includes(dir)) found.push(file);
  }
  return found;
}

test('pip: a release with the same requirements, wheels and Python copies the virtualenv, which works from its new path alone', async t => {
  const {world} = await cliWorld(t);
  const {lines: firstLines, reporter} = recorder();
  const first = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl}, {reporter});
  t.true(await ranPip(first.releaseDir));
  t.true(
    firstLines.some(l => l.includes('(the rest of the release written meanwhile)')),
    'pip started before the whole release was written',
  );
  const second = await deployChange(world, 2);
  t.false(await ranPip(second.releaseDir), second.lines.join('\n'));
  t.true(
    second.lines.some(l =>
      /copied \d+ files of venv from \S+ \(requirements, wheels, Python, pip and install settings unchanged\)/.test(
        l,
      ),
    ),
    second.lines.join('\n'),
  );
  const newVenv = path.join(second.releaseDir, 'venv');
  const expected = {script: `${newVenv}\n** hello cli **`, prefix: newVenv};
  t.deepEqual(await venvSays(second.releaseDir), expected);
  t.deepEqual(await naming(newVenv, first.releaseDir), [], 'nothing names the old release');
  t.not(
    (await fsp.stat(path.join(newVenv, 'bin', 'greet-cli'))).ino,
    (await fsp.stat(path.join(first.releaseDir, 'venv', 'bin', 'greet-cli'))).ino,
    'a copy, not a hard link shared with the live release',
  );
  await fsp.rm(first.releaseDir, {recursive: true});
  t.deepEqual(await venvSays(second.releaseDir), expected, 'still works with the old one gone');
  // The reused venv is recorded in turn: the next release reuses it again.
  const third = await deployChange(world, 3);
  t.false(await ranPip(third.releaseDir));
  t.deepEqual(await venvSays(third.releaseDir), {
    script: `${path.join(third.releaseDir, 'venv')}\n** hello cli **`,
    prefix: path.join(third.releaseDir, 'venv'),
  });
});

test('pip: changed requirements mean pip runs again', async t => {
  const {world} = await cliWorld(t);
  await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  const requirements = await fsp.readFile(path.join(world.app.dir, 'requirements.txt'), 'utf8');
  const changed = await deployChange(world, 2, {
    'requirements.txt': `${requirements}# a comment: pip reads it the same, the bytes differ\n`,
  });
  t.true(await ranPip(changed.releaseDir));
  t.true(
    changed.lines.some(l =>
      l.includes('skipped: the requirements, wheels, Python, pip and install settings changed'),
    ),
    changed.lines.join('\n'),
  );
});

test("pip: a vendored wheel's new bytes (under a hash the requirements already allow) mean pip runs again", async t => {
  const {world, swapWheel} = await cliWorld(t);
  await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  await swapWheel();
  const {lines, reporter} = recorder();
  const swapped = await runDeploy({root: world.root, rev: 'main'}, {reporter});
  t.true(await ranPip(swapped.releaseDir));
  t.true(
    lines.some(l =>
      l.includes('skipped: the requirements, wheels, Python, pip and install settings changed'),
    ),
    lines.join('\n'),
  );
});

test('pip: a virtualenv edited since its install (a file added to site-packages) is not carried forward', async t => {
  const {world} = await cliWorld(t);
  const first = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  const [lib] = await fsp.readdir(path.join(first.releaseDir, 'venv', 'lib'));
  const added = path.join('venv', 'lib', lib ?? '', 'site-packages', 'hotfix.py');
  await fsp.writeFile(path.join(first.releaseDir, added), 'PATCHED = True\n');
  const second = await deployChange(world, 2);
  t.true(await ranPip(second.releaseDir), 'installed afresh');
  t.true(
    second.lines.some(l => l.includes('skipped: venv of the previous release changed since')),
    second.lines.join('\n'),
  );
  await t.throwsAsync(fsp.access(path.join(second.releaseDir, added)));
  t.deepEqual(await venvSays(second.releaseDir), {
    script: `${path.join(second.releaseDir, 'venv')}\n** hello cli **`,
    prefix: path.join(second.releaseDir, 'venv'),
  });
});

test('pipInputs: the requirements file, the directories above it and .python-version; nothing early when the app commits something where the venv goes', t => {
  const tree = (paths: Array<[string, TreeFile['kind']]>): TreeFile[] =>
    paths.map(([p, kind]) => ({path: p, oid: '0'.repeat(40), kind}));
  const settings = {
    type: 'pip' as const,
    requirements: 'deps/requirements.txt',
    python: 'python3',
    venv: 'venv',
    reuse: true,
  };
  const app = tree([
    ['app.py', 'file'],
    ['.python-version', 'file'],
    ['deps', 'dir'],
    ['deps/requirements.txt', 'file'],
    ['deps/other.txt', 'file'],
    ['src', 'dir'],
    ['src/x.py', 'file'],
  ]);
  t.deepEqual([...(pipInputs(app, settings) ?? [])].sort(), [
    '.python-version',
    'deps',
    'deps/requirements.txt',
  ]);
  t.is(pipInputs([...app, ...tree([['venv', 'dir']])], settings), undefined);
  t.is(pipInputs([...app, ...tree([['venv/pip.conf', 'file']])], settings), undefined);
  t.deepEqual(
    [...(pipInputs(app, {...settings, venv: 'src/venv'}) ?? [])].sort(),
    ['.python-version', 'deps', 'deps/requirements.txt', 'src'],
    'the directory the venv is made in',
  );
  t.is(pipInputs([...app, ...tree([['env', 'symlink']])], {...settings, venv: 'env/v'}), undefined);
});
