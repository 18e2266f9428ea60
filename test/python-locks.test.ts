// uv.lock and poetry.lock apps: the locks read into hashed requirements (markers, dev groups,
// refusals), and real apps vendored with vendor-sync from a local PEP 503 index, then deployed
// with the index dead, their virtualenvs equal to what pip installs online from the same pins.
import {createHash} from 'node:crypto';
import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {PassThrough} from 'node:stream';
import {promisify} from 'node:util';
import test, {type ExecutionContext} from 'ava';
import {createHttpClient} from '../lib/http/client.js';
import {currentPlatform} from '../lib/pins/npm-lockfile.js';
import {parsePoetryLock} from '../lib/pins/poetry-lock.js';
import {requirementsText, type LockRequirement} from '../lib/pins/python-lock.js';
import {parseUvLock} from '../lib/pins/uv-lock.js';
import {readVendorManifest} from '../lib/pins/vendor-manifest.js';
import {IntegrityError} from '../lib/support/errors.js';
import {silentReporter, streamReporter} from '../lib/support/reporter.js';
import {Http} from '../vendor-sync/http.js';
import {vendorSync} from '../vendor-sync/sync.js';
import {startPypiIndex, type PypiIndex} from './helpers/pypi-index.js';
import {tempDir} from './helpers/tmp.js';
import {
  makeWorld,
  pinVendor,
  runDeploy,
  runDeployBin,
  testDeps,
  type World,
} from './helpers/world.js';
import {check} from '../lib/check/check.js';

const exec = promisify(execFile);
type T = ExecutionContext;

/** Wheels of the test apps: name, version, platform tag, requirements. */
const WHEELS: Array<[string, string, string, string[]]> = [
  ['dep-mod', '2.0', 'any', []],
  ['hello-mod', '1.0', 'any', ['dep-mod==2.0']],
  ['winonly-mod', '1.0', 'win_amd64', []],
  ['devtool-mod', '0.5', 'any', []],
];

/** A real wheel (module, METADATA, WHEEL, RECORD), built reproducibly by python3. */
const WHEEL_SCRIPT = `
import base64, hashlib, json, sys, zipfile
out, name, version, plat, requires = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
mod = name.replace('-', '_')
stem = f'{mod}-{version}'
meta = [f'Metadata-Version: 2.1', f'Name: {name}', f'Version: {version}'] + [f'Requires-Dist: {r}' for r in requires]
files = {
  f'{mod}/__init__.py': f'VERSION = "{version}"\\n'.encode(),
  f'{stem}.dist-info/METADATA': ('\\n'.join(meta) + '\\n').encode(),
  f'{stem}.dist-info/WHEEL': f'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-{plat}\\n'.encode(),
}
def h(d): return 'sha256=' + base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()
record = ''.join(f'{n},{h(d)},{len(d)}\\n' for n, d in files.items()) + f'{stem}.dist-info/RECORD,,\\n'
files[f'{stem}.dist-info/RECORD'] = record.encode()
with zipfile.ZipFile(f'{out}/{stem}-py3-none-{plat}.whl', 'w') as z:
    for n, d in files.items(): z.writestr(zipfile.ZipInfo(n, (2020, 1, 1, 0, 0, 0)), d)
`;

type Built = {file: string; sha256: string; size: number};

async function buildWheels(dir: string): Promise<Map<string, Built>> {
  await fsp.mkdir(dir, {recursive: true});
  const out = new Map<string, Built>();
  for (const [name, version, plat, requires] of WHEELS) {
    await exec('python3', ['-c', WHEEL_SCRIPT, dir, name, version, plat, JSON.stringify(requires)]);
    const file = `${name.replace(/-/g, '_')}-${version}-py3-none-${plat}.whl`;
    const bytes = await fsp.readFile(path.join(dir, file));
    out.set(name, {
      file,
      size: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
  }
  return out;
}

const HEX = (c: string) => c.repeat(64);
const PYPI = 'https://pypi.org/simple';

/** A uv.lock in uv's own layout (version 1, revision 3), over `wheels` on `index`. */
function uvLock(index: string, wheels: Map<string, Built>): string {
  const registry = index.replace(/\/$/, '');
  const pkg = (name: string, deps: string[] = []) => {
    const w = wheels.get(name);
    if (!w) throw new Error(name);
    const version = WHEELS.find(x => x[0] === name)?.[1] ?? '';
    const dependencies =
      deps.length > 0 ? `dependencies = [\n${deps.map(d => `    ${d},\n`).join('')}]\n` : '';
    return `[[package]]\nname = "${name}"\nversion = "${version}"\nsource = { registry = "${registry}" }\n${dependencies}wheels = [\n    { url = "${registry}/../files/${w.file}", hash = "sha256:${w.sha256}", size = ${w.size}, upload-time = "2026-11-28T10:00:00.000Z" },\n]\n`;
  };
  return [
    'version = 1\nrevision = 3\nrequires-python = ">=3.9"\n',
    pkg('dep-mod'),
    pkg('devtool-mod'),
    `[[package]]
name = "hello-app"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "hello-mod" },
    { name = "winonly-mod", marker = "sys_platform == 'win32'" },
]

[package.dev-dependencies]
dev = [
    { name = "devtool-mod" },
]

[package.metadata]
requires-dist = [
    { name = "hello-mod", specifier = "==1.0" },
    { name = "winonly-mod", marker = "sys_platform == 'win32'", specifier = ">=1.0" },
]

[package.metadata.requires-dev]
dev = [{ name = "devtool-mod", specifier = ">=0.5" }]
`,
    pkg('hello-mod', ['{ name = "dep-mod" }']),
    pkg('winonly-mod'),
  ].join('\n');
}

/** A poetry.lock as Poetry 2 writes it (lock-version 2.1: groups and markers per package). */
function poetry2Lock(index: string, wheels: Map<string, Built>): string {
  const url = index.replace(/\/$/, '');
  const pkg = (name: string, extra: string) => {
    const w = wheels.get(name);
    const version = WHEELS.find(x => x[0] === name)?.[1] ?? '';
    return `[[package]]
name = "${name}"
version = "${version}"
description = ""
optional = false
python-versions = "*"
${extra}files = [
    {file = "${w?.file ?? ''}", hash = "sha256:${w?.sha256 ?? ''}"},
]

[package.source]
type = "legacy"
url = "${url}"
reference = "local"
`;
  };
  return [
    '# This file is automatically @generated by Poetry 2.1.3 and should not be changed by hand.\n',
    pkg('dep-mod', 'groups = ["main"]\n'),
    pkg('devtool-mod', 'groups = ["dev"]\n'),
    pkg('hello-mod', 'groups = ["main"]\n').replace(
      '\n[package.source]',
      '\n[package.dependencies]\ndep-mod = "2.0"\n\n[package.source]',
    ),
    pkg('winonly-mod', 'groups = ["main"]\nmarkers = "sys_platform == \\"win32\\""\n'),
    '[metadata]\nlock-version = "2.1"\npython-versions = ">=3.9"\ncontent-hash = "' +
      HEX('a') +
      '"\n',
  ].join('\n');
}

const pins = (reqs: LockRequirement[]) =>
  reqs.map(r => `${r.name}==${r.version}${r.marker ? ` ; ${r.marker}` : ''} ${r.hashes.length}`);

test('uv.lock: the project package is walked, markers carried, dev groups only with dev', async t => {
  const wheels = await buildWheels(path.join(await tempDir(t), 'w'));
  const lock = uvLock(`${PYPI}/`, wheels);
  const options = {file: 'uv.lock', dev: false, indexes: [PYPI]};
  const reqs = parseUvLock(lock, options);
  t.deepEqual(pins(reqs), [
    'dep-mod==2.0 1',
    'hello-mod==1.0 1',
    "winonly-mod==1.0 ; sys_platform == 'win32' 1",
  ]);
  t.deepEqual(pins(parseUvLock(lock, {...options, dev: true})), [
    'dep-mod==2.0 1',
    'devtool-mod==0.5 1',
    'hello-mod==1.0 1',
    "winonly-mod==1.0 ; sys_platform == 'win32' 1",
  ]);
  t.regex(
    requirementsText(reqs, 'uv.lock', ''),
    /^winonly-mod==1\.0 ; sys_platform == 'win32' --hash=sha256:[0-9a-f]{64}$/m,
  );
});

test('uv.lock: markers along a path are and-ed, alternatives or-ed, an unconditional path wins', t => {
  const lock = `version = 1
revision = 2

[[package]]
name = "app"
version = "0.1.0"
source = { virtual = "." }
dependencies = [
    { name = "a", marker = "sys_platform == 'linux'" },
    { name = "b", extra = ["fast"], marker = "python_version >= '3.10'" },
    { name = "c", marker = "sys_platform == 'darwin'" },
]

[[package]]
name = "a"
version = "1"
source = { registry = "${PYPI}" }
dependencies = [{ name = "c", marker = "platform_machine == 'x86_64'" }]
wheels = [{ url = "${PYPI}/../a-1-py3-none-any.whl", hash = "sha256:${HEX('1')}" }]

[[package]]
name = "b"
version = "1"
source = { registry = "${PYPI}" }
sdist = { url = "${PYPI}/../b-1.tar.gz", hash = "sha256:${HEX('2')}" }
wheels = [{ url = "${PYPI}/../b-1-py3-none-any.whl", hash = "sha256:${HEX('3')}" }]

[package.optional-dependencies]
fast = [{ name = "d" }]

[[package]]
name = "c"
version = "1"
source = { registry = "${PYPI}" }
wheels = [{ url = "${PYPI}/../c-1-py3-none-any.whl", hash = "sha256:${HEX('4')}" }]

[[package]]
name = "d"
version = "1"
source = { registry = "${PYPI}" }
dependencies = [{ name = "a" }]
wheels = [{ url = "${PYPI}/../d-1-py3-none-any.whl", hash = "sha256:${HEX('5')}" }]
`;
  const reqs = parseUvLock(lock, {file: 'uv.lock', dev: false, indexes: [`${PYPI}/`]});
  t.deepEqual(pins(reqs), [
    "a==1 ; (sys_platform == 'linux') or (python_version >= '3.10') 1",
    "b==1 ; python_version >= '3.10' 2",
    "c==1 ; (sys_platform == 'darwin') or ((platform_machine == 'x86_64') and (sys_platform == 'linux')) or ((platform_machine == 'x86_64') and (python_version >= '3.10')) 1",
    "d==1 ; python_version >= '3.10' 1",
  ]);
});

/** parseUvLock of one [[package]] the project depends on, written as `body`. */
function uvOne(body: string, head = 'version = 1\nrevision = 3') {
  return () =>
    parseUvLock(
      `${head}\n\n[[package]]\nname = "app"\nversion = "0.1.0"\nsource = { editable = "." }\ndependencies = [{ name = "x" }]\n\n[[package]]\nname = "x"\nversion = "1.0"\n${body}\n`,
      {file: 'uv.lock', dev: false, indexes: [PYPI]},
    );
}

test('uv.lock: a package with no hash, a git, path or URL source, another index, an unknown version are refused', t => {
  const wheel = `wheels = [{ url = "${PYPI}/../x-1.0-py3-none-any.whl", hash = "sha256:${HEX('1')}" }]`;
  const cases: Array<[() => unknown, RegExp]> = [
    [
      uvOne(
        `source = { registry = "${PYPI}" }\nwheels = [{ url = "${PYPI}/../x-1.0-py3-none-any.whl" }]`,
      ),
      /x==1\.0 has a file with no sha256 hash/,
    ],
    [uvOne(`source = { registry = "${PYPI}" }`), /x==1\.0 has no file in the lock/],
    [
      uvOne(`source = { git = "https://github.com/o/x?rev=main#${'a'.repeat(40)}" }`),
      /x==1\.0 comes from a git source/,
    ],
    [uvOne(`source = { path = "../x-1.0.tar.gz" }\n${wheel}`), /x==1\.0 comes from a path source/],
    [uvOne(`source = { directory = "../x" }`), /x==1\.0 comes from a directory source/],
    [
      uvOne(`source = { url = "https://example.com/x-1.0.tar.gz" }`),
      /x==1\.0 comes from a url source/,
    ],
    [uvOne(`source = { editable = "../x" }`), /x==1\.0 comes from a editable source/],
    [
      uvOne(`source = { registry = "https://evil.example/simple" }\n${wheel}`),
      /x==1\.0 comes from the index https:\/\/evil\.example\/simple, which deploy\.json install\.indexes does not allow/,
    ],
    [
      uvOne(`source = { registry = "${PYPI}" }\n${wheel}`, 'version = 2\nrevision = 1'),
      /uv\.lock of version 2 revision 1, which this deployer does not know/,
    ],
    [
      uvOne(`source = { registry = "${PYPI}" }\n${wheel}`, 'version = 1\nrevision = 9'),
      /does not know/,
    ],
    [uvOne('', 'version = 1\nrevision = 3\nbroken = ['), /is not valid TOML/],
  ];
  for (const [run, message] of cases) {
    t.throws(run, {instanceOf: IntegrityError, message});
  }
  t.notThrows(uvOne(`source = { registry = "${PYPI}" }\n${wheel}`));
});

test('uv.lock: a marker that would carry an option to pip is refused', t => {
  const lock = `version = 1\nrevision = 3\n\n[[package]]\nname = "app"\nversion = "0.1.0"\nsource = { virtual = "." }\ndependencies = [{ name = "x", marker = "python_version >= '3' --index-url http://evil.example/" }]\n\n[[package]]\nname = "x"\nversion = "1.0"\nsource = { registry = "${PYPI}" }\nwheels = [{ url = "${PYPI}/x.whl", hash = "sha256:${HEX('1')}" }]\n`;
  const reqs = parseUvLock(lock, {file: 'uv.lock', dev: false, indexes: [PYPI]});
  t.throws(() => requirementsText(reqs, 'uv.lock', ''), {
    instanceOf: IntegrityError,
    message: /--index-url is not allowed/,
  });
});

test('poetry.lock 2.1: groups choose the packages, markers (one, or per group) are carried', async t => {
  const wheels = await buildWheels(path.join(await tempDir(t), 'w'));
  const lock = poetry2Lock(PYPI, wheels);
  const options = {file: 'poetry.lock', dev: false, indexes: [PYPI]};
  t.deepEqual(pins(parsePoetryLock(lock, options)), [
    'dep-mod==2.0 1',
    'hello-mod==1.0 1',
    'winonly-mod==1.0 ; sys_platform == "win32" 1',
  ]);
  t.deepEqual(
    pins(parsePoetryLock(lock, {...options, dev: true})).map(p => p.split(' ')[0]),
    ['dep-mod==2.0', 'devtool-mod==0.5', 'hello-mod==1.0', 'winonly-mod==1.0'],
  );
  const perGroup = lock.replace(
    'groups = ["dev"]\n',
    'groups = ["main", "dev"]\nmarkers = {main = "sys_platform == \\"linux\\"", dev = "python_version >= \\"3.10\\""}\n',
  );
  t.true(
    pins(parsePoetryLock(perGroup, options)).includes(
      'devtool-mod==0.5 ; sys_platform == "linux" 1',
    ),
  );
  t.true(
    pins(parsePoetryLock(perGroup, {...options, dev: true})).includes(
      'devtool-mod==0.5 ; (sys_platform == "linux") or (python_version >= "3.10") 1',
    ),
  );
});

test('poetry.lock: no hash, a git or directory source, another index, an unknown lock-version are refused', async t => {
  const wheels = await buildWheels(path.join(await tempDir(t), 'w'));
  const lock = poetry2Lock(PYPI, wheels);
  const options = {file: 'poetry.lock', dev: false, indexes: [PYPI]};
  const dep = wheels.get('dep-mod')?.sha256 ?? '';
  const cases: Array<[string, RegExp]> = [
    [lock.replace(`, hash = "sha256:${dep}"`, ''), /dep-mod==2\.0 has a file with no sha256 hash/],
    [
      lock.replace(
        `type = "legacy"\nurl = "${PYPI}"`,
        `type = "git"\nurl = "https://github.com/o/dep-mod.git"\nresolved_reference = "${'b'.repeat(40)}"`,
      ),
      /dep-mod==2\.0 comes from a git source \(https:\/\/github\.com\/o\/dep-mod\.git\)/,
    ],
    [
      lock.replace(`type = "legacy"\nurl = "${PYPI}"`, 'type = "directory"\nurl = "../dep"'),
      /dep-mod==2\.0 comes from a directory source/,
    ],
    [
      lock.replaceAll(`url = "${PYPI}"`, 'url = "https://evil.example/simple"'),
      /which deploy\.json install\.indexes does not allow/,
    ],
    [
      lock.replace('lock-version = "2.1"', 'lock-version = "3.0"'),
      /lock-version "3\.0", which this deployer does not know/,
    ],
    [lock.replace('groups = ["main"]\n', ''), /has neither "groups" nor "category"/],
  ];
  for (const [text, message] of cases) {
    t.throws(() => parsePoetryLock(text, options), {instanceOf: IntegrityError, message});
  }
  // Without a source table a package comes from PyPI, which must be allowed.
  const fromPypi = lock.replaceAll(
    /\n\[package\.source\]\ntype = "legacy"\nurl = "[^"]*"\nreference = "local"\n/g,
    '\n',
  );
  t.is(parsePoetryLock(fromPypi, options).length, 3);
  t.throws(() => parsePoetryLock(fromPypi, {...options, indexes: ['http://127.0.0.1:1/simple']}), {
    message: /comes from the index https:\/\/pypi\.org\/simple/,
  });
});

/** The installed set of a virtualenv, as pip lists it. */
async function pipList(venv: string): Promise<unknown> {
  const {stdout} = await exec(
    path.join(venv, 'bin', 'python'),
    ['-m', 'pip', 'list', '--format', 'json'],
    {
      env: {
        PATH: process.env.PATH,
        PIP_CONFIG_FILE: '/dev/null',
        PIP_DISABLE_PIP_VERSION_CHECK: '1',
      },
    },
  );
  return JSON.parse(stdout);
}

/** A venv's packages but the installers' own (pip, setuptools, wheel differ by who made it). */
function withoutTools(list: unknown): unknown {
  return (list as Array<{name: string}>).filter(
    p => !['pip', 'setuptools', 'wheel'].includes(p.name.toLowerCase()),
  );
}

/** `poetry install` online of a copy of the app, without dev dependencies: its venv's packages. */
async function poetryInstallOnline(appDir: string): Promise<unknown> {
  const copy = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-poetry-online-'));
  try {
    for (const name of ['pyproject.toml', 'poetry.lock']) {
      await fsp.copyFile(path.join(appDir, name), path.join(copy, name));
    }
    const home = path.join(copy, 'home');
    await exec('poetry', ['install', '--only', 'main', '--no-root', '--no-interaction'], {
      cwd: copy,
      env: {
        PATH: process.env.PATH,
        HOME: home,
        POETRY_CACHE_DIR: path.join(home, 'cache'),
        POETRY_VIRTUALENVS_IN_PROJECT: 'true',
      },
    });
    return withoutTools(await pipList(path.join(copy, '.venv')));
  } finally {
    await fsp.rm(copy, {recursive: true, force: true});
  }
}

/** pip online, from the index, with the requirements the lock pins: what the deploy must equal. */
async function onlineInstall(
  dir: string,
  index: PypiIndex,
  reqs: LockRequirement[],
): Promise<unknown> {
  const venv = path.join(dir, 'online-venv');
  const file = path.join(dir, 'online-requirements.txt');
  await fsp.writeFile(file, requirementsText(reqs, 'lock', ''));
  await exec('python3', ['-m', 'venv', venv]);
  const env = {
    PATH: process.env.PATH,
    PIP_CONFIG_FILE: '/dev/null',
    PIP_DISABLE_PIP_VERSION_CHECK: '1',
  };
  await exec(
    path.join(venv, 'bin', 'python'),
    [
      '-m',
      'pip',
      'install',
      '--no-cache-dir',
      '--index-url',
      index.url,
      '--require-hashes',
      '-r',
      file,
    ],
    {env},
  );
  return pipList(venv);
}

function recorder() {
  const lines: string[] = [];
  const stream = new PassThrough();
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)));
  return {lines, reporter: streamReporter(stream, {verbosity: 'verbose'})};
}

async function sync(world: World, index: PypiIndex) {
  return vendorSync(
    {
      app: world.app.dir,
      // The committed app, read from git as in CI: the lock (and pyproject.toml) fetched by path.
      rev: 'main',
      vendor: world.vendor.dir,
      keepUnused: false,
      dryRun: false,
      push: false,
      updatePin: false,
      pr: undefined,
      platforms: [currentPlatform()],
      concurrency: 4,
    },
    {
      http: new Http({backoffMs: 10}),
      gitHttp: createHttpClient(),
      gitCredentials: undefined,
      upstreams: {
        npm: {registry: undefined, scopes: new Map()},
        pypiIndex: index.url,
        pypiTarget: {platforms: ['linux-x64'], version: '3.11'},
        github: () => {
          throw new Error('no GitHub in this test');
        },
        githubToken: undefined,
      },
      reporter: silentReporter,
      progressStream: process.stderr,
      cwd: world.dir,
      clock: () => new Date('2026-11-28T10:00:00Z'),
      author: {name: 'Vendor Bot', email: 'bot@example.invalid'},
    },
  );
}

/** The node's environment: the python3 the test's online pip used is the one the deploy finds. */
const env = {PATH: process.env.PATH};

type LockedApp = {
  kind: 'uv' | 'poetry';
  /** The app's files (its lock), given the index URL; or made in the app work tree. */
  files: (
    index: PypiIndex,
    wheels: Map<string, Built>,
    appDir: string,
  ) => Promise<Record<string, string>>;
  read: (text: string, index: PypiIndex) => LockRequirement[];
  /** The manager's own online install of the app (its venv's packages), while the index is up. */
  native?: (appDir: string) => Promise<unknown>;
  /** Also make a bundle of the changeset and deploy it on a node without git. */
  bundle?: boolean;
};

/** `deploy bundle`, then `deploy --bundle` on another node root: the same installed set. */
async function bundleDeploys(t: T, world: World, online: unknown): Promise<void> {
  const out = path.join(world.dir, 'dist', 'app.tar.gz');
  const made = await runDeployBin([
    'bundle',
    '--rev',
    'main',
    '--repo',
    world.appUrl,
    '--out',
    out,
  ]);
  t.is(made.code, 0, made.stderr);
  const root = path.join(world.dir, 'bundle-node');
  const run = await runDeployBin([
    '--bundle',
    out,
    '--sha256-file',
    `${out}.sha256`,
    '--root',
    root,
  ]);
  t.is(run.code, 0, run.stderr);
  t.deepEqual(await pipList(path.join(root, 'current', 'venv')), online);
}

/**
 * vendor-sync of a locked app, then its deploy with the index closed, compared with pip online;
 * a second deploy reuses the venv; a flipped byte in a vendored wheel is refused before pip runs.
 */
async function deploysOffline(t: T, app: LockedApp): Promise<void> {
  const world = await makeWorld(t);
  const wheels = await buildWheels(path.join(world.dir, 'wheels'));
  const index = await startPypiIndex(path.join(world.dir, 'wheels'));
  let open = true;
  t.teardown(() => (open ? index.close() : undefined));
  await world.vendor.write({'README.md': 'vendor repository\n'});
  await world.vendor.commit('start');
  const files = await app.files(index, wheels, world.app.dir);
  const install = {type: app.kind, indexes: [index.url]};
  await world.app.write({
    ...files,
    'deploy.json': JSON.stringify({vendor: {url: '../vendor.git'}, install}),
  });
  await world.app.commit('app');
  await sync(world, index);
  const lockfile = app.kind === 'uv' ? 'uv.lock' : 'poetry.lock';
  const lockText = await fsp.readFile(path.join(world.app.dir, lockfile), 'utf8');
  const reqs = app.read(lockText, index);
  const manifest = await readVendorManifest(world.vendor.dir);
  t.deepEqual(
    manifest.artifacts.map(a => a.path).sort(),
    ['pypi/dep_mod-2.0-py3-none-any.whl', 'pypi/hello_mod-1.0-py3-none-any.whl'],
    'exactly the files the lock pins for the nodes (no dev tool, no Windows-only wheel)',
  );
  const online = await onlineInstall(world.dir, index, reqs);
  const native = await app.native?.(world.app.dir);
  await index.close();
  open = false;

  await pinVendor(world, {config: {install}});
  const first = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl}, {env});
  t.deepEqual(await pipList(path.join(first.releaseDir, 'venv')), online);
  if (native !== undefined) {
    t.deepEqual(
      withoutTools(await pipList(path.join(first.releaseDir, 'venv'))),
      native,
      'the packages the manager itself installs online from the same lock',
    );
  }
  t.deepEqual(
    (online as Array<{name: string}>)
      .map(p => p.name)
      .filter(n => n.endsWith('-mod'))
      .sort(),
    ['dep-mod', 'hello-mod'],
  );
  const log = await fsp.readFile(path.join(first.releaseDir, '.repodeploy', 'install.log'), 'utf8');
  t.regex(log, /--no-index/);
  t.regex(log, /--require-hashes/);
  await fsp.access(path.join(first.releaseDir, lockfile));
  const lost = await fsp.readdir(first.releaseDir);
  t.false(
    lost.some(n => n.startsWith('requirements')),
    'no derived file in the release',
  );

  const report = await check({rev: 'main', repo: world.appUrl, install: true}, testDeps({env}));
  t.true(report.deployable, JSON.stringify(report.checks));
  t.regex(
    report.checks.find(c => c.id === 'lockfile')?.message ?? '',
    new RegExp(
      `^${lockfile.replace('.', '\\.')}: ${reqs.length} packages the app needs, each from an allowed index`,
    ),
  );
  t.is(report.checks.find(c => c.id === 'install')?.status, 'pass');
  if (app.bundle) await bundleDeploys(t, world, online);

  await world.app.write({'change.txt': '2\n'});
  await world.app.commit('change');
  await world.publish();
  const {lines, reporter} = recorder();
  const second = await runDeploy({root: world.root, rev: 'main'}, {reporter, env});
  t.true(
    lines.some(l => /copied \d+ files of venv from/.test(l)),
    lines.join('\n'),
  );
  t.deepEqual(await pipList(path.join(second.releaseDir, 'venv')), online);

  const wheel = path.join(world.vendor.dir, 'pypi', 'hello_mod-1.0-py3-none-any.whl');
  const bytes = await fsp.readFile(wheel);
  bytes[10] = (bytes[10] ?? 0) ^ 0x40;
  await fsp.writeFile(wheel, bytes);
  await pinVendor(world, {config: {install}});
  const before = new Set(await fsp.readdir(path.join(world.root, 'releases')));
  const error = await t.throwsAsync(runDeploy({root: world.root, rev: 'main'}, {env}), {
    instanceOf: IntegrityError,
  });
  t.regex(error.message, /hello-mod@1\.0.*do not match the pinned hash/);
  const failed = (await fsp.readdir(path.join(world.root, 'releases'))).filter(
    id => !before.has(id),
  );
  for (const id of failed) {
    await t.throwsAsync(
      fsp.access(path.join(world.root, 'releases', id, 'venv')),
      undefined,
      'no venv made',
    );
  }
}

test('uv app: vendored by vendor-sync, deployed with the index dead (from git and from a bundle), equal to pip online; reused; a flipped byte refused', async t => {
  await deploysOffline(t, {
    kind: 'uv',
    bundle: true,
    files: (index, wheels) => Promise.resolve({'uv.lock': uvLock(index.url, wheels)}),
    read: (text, index) => parseUvLock(text, {file: 'uv.lock', dev: false, indexes: [index.url]}),
  });
});

test('poetry 2 app (lock-version 2.1): vendored, deployed with the index dead, equal to pip online', async t => {
  await deploysOffline(t, {
    kind: 'poetry',
    files: (index, wheels) => Promise.resolve({'poetry.lock': poetry2Lock(index.url, wheels)}),
    read: (text, index) =>
      parsePoetryLock(text, {file: 'poetry.lock', dev: false, indexes: [index.url]}),
  });
});

/** pyproject.toml of a Poetry 1 app on the local index, with a dev group. */
function pyproject(index: string): string {
  return `[tool.poetry]
name = "hello-app"
version = "0.1.0"
description = ""
authors = ["Tester <tester@example.invalid>"]

[tool.poetry.dependencies]
python = "^3.9"
hello-mod = "1.0"

[tool.poetry.group.dev.dependencies]
devtool-mod = "0.5"

[[tool.poetry.source]]
name = "local"
url = "${index}"
default = true

[build-system]
requires = ["poetry-core"]
build-backend = "poetry.core.masonry.api"
`;
}

test('poetry app locked by the real `poetry lock`: vendored, deployed with the index dead, equal to pip and to `poetry install` online', async t => {
  await deploysOffline(t, {
    kind: 'poetry',
    async files(index, _wheels, appDir) {
      await fsp.writeFile(path.join(appDir, 'pyproject.toml'), pyproject(index.url));
      const home = path.join(appDir, '..', 'poetry-home');
      await exec('poetry', ['lock', '--no-interaction'], {
        cwd: appDir,
        env: {PATH: process.env.PATH, HOME: home, POETRY_CACHE_DIR: path.join(home, 'cache')},
      });
      const lock = await fsp.readFile(path.join(appDir, 'poetry.lock'), 'utf8');
      t.regex(lock, /^category = "dev"$/m, 'Poetry 1 writes categories');
      return {'pyproject.toml': pyproject(index.url), 'poetry.lock': lock};
    },
    read: (text, index) =>
      parsePoetryLock(text, {file: 'poetry.lock', dev: false, indexes: [index.url]}),
    native: poetryInstallOnline,
  });
});

test('poetry.lock of Poetry 1.5 to 1.8 (no groups, no category): walked from pyproject.toml, markers carried', async t => {
  const wheels = await buildWheels(path.join(await tempDir(t), 'w'));
  const lock = poetry2Lock(PYPI, wheels)
    .replace(/^groups = .*\n/gm, '')
    .replace(/^markers = .*\n/gm, '')
    .replace('lock-version = "2.1"', 'lock-version = "2.0"')
    .replace(
      'dep-mod = "2.0"\n',
      'dep-mod = "2.0"\ntyping-extensions = {version = ">=4", markers = "python_version < \\"3.8\\""}\n',
    );
  const project = `[tool.poetry]
name = "hello-app"
version = "0.1.0"

[tool.poetry.dependencies]
python = "^3.9"
hello-mod = "1.0"
winonly-mod = {version = "1.0", markers = "sys_platform == 'win32'"}

[tool.poetry.group.dev.dependencies]
devtool-mod = "0.5"
`;
  const options = {file: 'poetry.lock', dev: false, indexes: [PYPI], pyproject: project};
  t.deepEqual(pins(parsePoetryLock(lock, options)), [
    'dep-mod==2.0 1',
    'hello-mod==1.0 1',
    "winonly-mod==1.0 ; sys_platform == 'win32' 1",
  ]);
  t.deepEqual(
    pins(parsePoetryLock(lock, {...options, dev: true})).map(p => p.split(' ')[0]),
    ['dep-mod==2.0', 'devtool-mod==0.5', 'hello-mod==1.0', 'winonly-mod==1.0'],
  );
  t.throws(() => parsePoetryLock(lock, {...options, pyproject: undefined}), {
    instanceOf: IntegrityError,
    message:
      /neither "groups" nor "category" \(Poetry 1\.5 to 1\.8\), and there is no pyproject\.toml/,
  });
  t.throws(
    () =>
      parsePoetryLock(lock, {
        ...options,
        pyproject: project.replace('hello-mod = "1.0"\n', 'hello-mod = "1.0"\ngone-mod = "1.0"\n'),
      }),
    {
      message:
        /gone-mod is a dependency in pyproject\.toml, but the lock has no package of that name/,
    },
  );
});
