import {createHash} from 'node:crypto';
import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {promisify} from 'node:util';
import http from 'node:http';
import anyTest, {type ExecutionContext, type TestFn} from 'ava';
import {ExitCode, SourceError} from '../lib/support/errors.js';
import {createHttpClient} from '../lib/http/client.js';
import {currentPlatform} from '../lib/pins/npm-lockfile.js';
import {silentReporter} from '../lib/support/reporter.js';
import {readVendorManifest} from '../lib/pins/vendor-manifest.js';
import {Http} from '../vendor-sync/http.js';
import {listProjectFiles} from '../vendor-sync/sources/pypi.js';
import {vendorSync} from '../vendor-sync/sync.js';
import type {PythonTarget} from '../vendor-sync/sources/wheel-tags.js';
import {startPypiIndex, type FileMeta, type PypiIndexOptions} from './helpers/pypi-index.js';
import {listenLocal} from './helpers/http.js';
import {git} from './helpers/repos.js';
import {makeWorld, packageRoot, runVendorSyncBin, type World} from './helpers/world.js';

const exec = promisify(execFile);

type Shared = {dir: string; wheels: string; vendorBuilt: string; sha256: Map<string, string>};
const test = anyTest as TestFn<Shared>;
type T = ExecutionContext<Shared>;

const HELLO_VERSIONS = ['1.0', '1.1', '1.2', '1.3', '1.4'];

/**
 * What the index says of hello-mod's releases. Links alternate between PyPI's template (1.0,
 * 1.2, 1.4) and single-quoted, numeric-entity HTML (1.1, 1.3); see test/helpers/pypi-index.ts.
 */
const META: Record<string, FileMeta> = {
  'hello_mod-1.2-py3-none-any.whl': {requiresPython: '>=3.12'},
  'hello_mod-1.3-py3-none-any.whl': {yanked: true},
  'hello_mod-1.4-py3-none-any.whl': {yanked: 'broken "RECORD" & <metadata>'},
};

test.before(async t => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-pypi-'));
  const vendorBuilt = path.join(dir, 'vendor-built');
  await exec('python3', [
    path.join(packageRoot, 'examples/python-app/build_vendor.py'),
    vendorBuilt,
    path.join(dir, 'requirements.txt'),
  ]);
  const wheels = path.join(dir, 'wheels');
  await fsp.cp(path.join(vendorBuilt, 'pypi'), wheels, {recursive: true});
  // Real wheels of the other releases, built the way the example builds its own.
  const script = [
    'import sys',
    'sys.path.insert(0, sys.argv[1])',
    'from build_vendor import build_wheel',
    'for v in sys.argv[3:]: build_wheel("hello-mod", v, "hello_mod", ["dep-mod==2.0"], sys.argv[2])',
  ].join('\n');
  await exec('python3', [
    '-c',
    script,
    path.join(packageRoot, 'examples/python-app'),
    wheels,
    ...HELLO_VERSIONS.slice(1),
  ]);
  const sha256 = new Map<string, string>();
  for (const name of await fsp.readdir(wheels)) {
    const bytes = await fsp.readFile(path.join(wheels, name));
    sha256.set(name, createHash('sha256').update(bytes).digest('hex'));
  }
  t.context = {dir, wheels, vendorBuilt, sha256};
});

test.after.always(async t => {
  await fsp.rm(t.context.dir, {recursive: true, force: true});
});

async function index(t: T, format: PypiIndexOptions['format']) {
  const started = await startPypiIndex(t.context.wheels, {format, meta: META});
  t.teardown(() => started.close());
  return started;
}

test('HTML and PEP 691 JSON pages read the same: quotes, entities, hashes, data-yanked, data-requires-python', async t => {
  const html = await index(t, 'html');
  const json = await index(t, 'both');
  const http = new Http({backoffMs: 10});
  const fromHtml = await listProjectFiles(http, html.url, 'Hello.Mod');
  const fromJson = await listProjectFiles(http, json.url, 'Hello.Mod');
  t.is(json.pages.at(-1)?.answered, 'application/vnd.pypi.simple.v1+json');
  t.is(html.pages.at(-1)?.answered, 'text/html');
  t.regex(html.pages.at(-1)?.accept ?? '', /^application\/vnd\.pypi\.simple\.v1\+json, /);
  t.true(
    html.requests.every(p => p === '/simple/hello-mod/'),
    'the name is normalised (PEP 503)',
  );

  const wanted = HELLO_VERSIONS.map(version => {
    const filename = `hello_mod-${version}-py3-none-any.whl`;
    const sha = t.context.sha256.get(filename);
    return {
      filename,
      url: `${html.url.replace(/simple\/$/, '')}files/${filename}?dl=1&src=simple`,
      version,
      sha256: sha,
      hashes: {sha256: sha},
      requiresPython: META[filename]?.requiresPython,
      yanked: META[filename]?.yanked ?? false,
    };
  });
  t.deepEqual(fromHtml, wanted);
  const jsonOrigin = json.url.replace(/simple\/$/, '');
  t.deepEqual(
    fromJson,
    wanted.map(f => ({...f, url: f.url.replace(/^.*\/files\//, `${jsonOrigin}files/`)})),
  );
});

test('a JSON answer this version cannot read is a clear error, not an empty project', async t => {
  const answers: Record<string, {type: string; body: string}> = {
    '/simple/v2/': {
      type: 'application/vnd.pypi.simple.v2+json',
      body: '{"meta":{"api-version":"2.0"}}',
    },
    '/simple/broken/': {
      type: 'application/vnd.pypi.simple.v1+json',
      body: '{"meta":{"api-version":"1.0"}}',
    },
    '/simple/cut/': {type: 'application/vnd.pypi.simple.v1+json', body: '{"meta":'},
  };
  const server = http.createServer((req, res) => {
    const answer = answers[req.url ?? ''];
    if (!answer) res.writeHead(404).end();
    else res.writeHead(200, {'content-type': answer.type}).end(answer.body);
  });
  const base = `${await listenLocal(t, server)}/simple/`;
  const http1 = new Http({backoffMs: 10});
  const v2 = await t.throwsAsync(listProjectFiles(http1, base, 'v2'), {instanceOf: SourceError});
  t.regex(
    v2.message,
    /answered application\/vnd\.pypi\.simple\.v2\+json, a form of the simple API this version does not read/,
  );
  const broken = await t.throwsAsync(listProjectFiles(http1, base, 'broken'), {
    instanceOf: SourceError,
  });
  t.regex(broken.message, /simple\/broken\/ is not a valid PEP 691 project page: .*files/);
  t.notRegex(broken.message, /\n/);
  await t.throwsAsync(listProjectFiles(http1, base, 'cut'), {
    instanceOf: SourceError,
    message: /its JSON does not parse/,
  });
});

/** A vendor work tree holding hello-mod 1.0 (named as its author spells it), dep-mod 2.0, ghost-mod. */
async function vendorTree(t: T, withGhost: boolean): Promise<string> {
  const dir = path.join(t.context.dir, `vendor-${Math.random().toString(36).slice(2)}`);
  await fsp.cp(t.context.vendorBuilt, dir, {recursive: true});
  const manifestPath = path.join(dir, 'vendor-manifest.json');
  const manifest = JSON.parse(await fsp.readFile(manifestPath, 'utf8')) as {
    artifacts: Array<Record<string, unknown>>;
  };
  for (const a of manifest.artifacts) if (a.name === 'hello-mod') a.name = 'Hello_Mod';
  if (withGhost) {
    const hello = manifest.artifacts.find(a => a.name === 'Hello_Mod') ?? {};
    const ghost = 'pypi/ghost_mod-0.1-py3-none-any.whl';
    await fsp.copyFile(path.join(dir, String(hello.path)), path.join(dir, ghost));
    manifest.artifacts.push({...hello, name: 'ghost-mod', version: '0.1', path: ghost});
  }
  await fsp.writeFile(manifestPath, JSON.stringify(manifest, null, 2));
  await git(dir, ['init', '-q']);
  t.teardown(() => fsp.rm(dir, {recursive: true, force: true}));
  return dir;
}

async function outdatedBin(vendor: string, indexUrl: string, extra: string[] = []) {
  return exec(
    process.execPath,
    [
      path.join(packageRoot, 'bin', 'vendor-sync.js'),
      'outdated',
      '--vendor',
      vendor,
      '--pypi-index',
      indexUrl,
      ...extra,
    ],
    {env: {PATH: process.env.PATH}},
  ).then(
    r => ({code: 0, ...r}),
    (error: unknown) => error as {code: number; stdout: string; stderr: string},
  );
}

type OutdatedJson = {
  ok: boolean;
  artifacts: Array<{name: string; latest: string | null; outdated: boolean; unknown: string}>;
  error?: {exitCode: number; message: string};
};

for (const format of ['html', 'json'] as const) {
  test(`outdated (${format} index): yanked releases are never latest; --python-version honours Requires-Python`, async t => {
    const {url} = await index(t, format);
    const vendor = await vendorTree(t, false);
    const run = await outdatedBin(vendor, url, ['--json']);
    t.is(run.code, 1, `Hello_Mod is outdated: ${run.stderr}`);
    const rows = (JSON.parse(run.stdout) as OutdatedJson).artifacts;
    // 1.3 and 1.4 are yanked; 1.2 needs Python 3.12.
    t.like(
      rows.find(r => r.name === 'Hello_Mod'),
      {latest: '1.2', outdated: true, unknown: null},
    );
    t.like(
      rows.find(r => r.name === 'dep-mod'),
      {latest: '2.0', outdated: false},
    );
    for (const [python, latest] of [
      ['3.11', '1.1'],
      ['3.12', '1.2'],
    ] as const) {
      const pinned = await outdatedBin(vendor, url, ['--json', '--python-version', python]);
      t.is(pinned.code, 1, pinned.stderr);
      const row = (JSON.parse(pinned.stdout) as OutdatedJson).artifacts.find(
        r => r.name === 'Hello_Mod',
      );
      t.is(row?.latest, latest, `Python ${python}`);
    }
    const bad = await outdatedBin(vendor, url, ['--python-version', 'three']);
    t.is(bad.code, ExitCode.usage);
  });

  test(`outdated (${format} index): a package the index does not have is a row marked unknown, with why; exit 5`, async t => {
    const {url} = await index(t, format);
    const vendor = await vendorTree(t, true);
    const human = await outdatedBin(vendor, url);
    t.is(human.code, ExitCode.source, human.stderr);
    t.regex(human.stdout, /^ {2}ecosystem name/);
    t.regex(human.stdout, /^! pypi +Hello_Mod +1\.0 +1\.2$/m);
    t.regex(human.stdout, /^ {2}pypi +dep-mod +2\.0 +2\.0$/m);
    t.regex(human.stdout, /^\? pypi +ghost-mod +0\.1 +unknown$/m);
    t.regex(
      human.stderr,
      /^warning: pypi ghost-mod: unknown: GET http:\/\/127\.0\.0\.1:\d+\/simple\/ghost-mod\/ failed: HTTP 404\.$/m,
    );
    t.regex(
      human.stderr,
      /^error: 1 of 3 artifacts could not be looked up upstream: ghost-mod\.$/m,
    );

    const json = await outdatedBin(vendor, url, ['--json']);
    t.is(json.code, ExitCode.source);
    const parsed = JSON.parse(json.stdout) as OutdatedJson;
    t.false(parsed.ok);
    t.is(parsed.error?.exitCode, ExitCode.source);
    t.is(parsed.artifacts.length, 3);
    t.like(
      parsed.artifacts.find(r => r.name === 'ghost-mod'),
      {latest: null, outdated: false},
    );
    t.regex(parsed.artifacts.find(r => r.name === 'ghost-mod')?.unknown ?? '', /HTTP 404/);
    t.like(
      parsed.artifacts.find(r => r.name === 'Hello_Mod'),
      {latest: '1.2', unknown: null},
    );

    // A project whose every file is yanked has no "latest" either, and says so.
    const withdrawn = await startPypiIndex(t.context.wheels, {
      format,
      meta: {...META, 'dep_mod-2.0-py3-none-any.whl': {yanked: 'withdrawn'}},
    });
    t.teardown(() => withdrawn.close());
    const yanked = await outdatedBin(await vendorTree(t, false), withdrawn.url);
    t.is(yanked.code, ExitCode.source);
    t.regex(yanked.stdout, /^\? pypi +dep-mod +2\.0 +unknown$/m);
    t.regex(
      yanked.stderr,
      /^warning: pypi dep-mod: unknown: no release of dep-mod on .* that is not yanked$/m,
    );
  });

  test(`sync (${format} index): a version pinned exactly is vendored even when yanked`, async t => {
    const {url, requests} = await index(t, format);
    const world = await makeWorld(t);
    await world.vendor.write({'README.md': 'vendor repository\n'});
    const vendorSha = await world.vendor.commit('start');
    const pins = ['hello_mod-1.3-py3-none-any.whl', 'dep_mod-2.0-py3-none-any.whl'];
    const [hello, dep] = pins.map(f => t.context.sha256.get(f) ?? '');
    await world.app.write({
      'requirements.txt': `Hello.Mod==1.3 --hash=sha256:${hello}\ndep-mod==2.0 --hash=sha256:${dep}\n`,
      'deploy.json': JSON.stringify({
        vendor: {url: '../vendor.git', rev: vendorSha},
        install: 'pip',
      }),
    });
    await world.app.commit('app');
    const result = await vendorSync(
      {
        app: world.app.dir,
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
          pypiIndex: url,
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
    t.is(result.downloads, 2);
    const manifest = await readVendorManifest(world.vendor.dir);
    t.deepEqual(manifest.artifacts.map(a => a.path).sort(), pins.map(f => `pypi/${f}`).sort());
    for (const file of pins) {
      const bytes = await fsp.readFile(path.join(world.vendor.dir, 'pypi', file));
      t.is(createHash('sha256').update(bytes).digest('hex'), t.context.sha256.get(file) ?? '');
    }
    t.deepEqual(
      requests.filter(p => p.startsWith('/files/')).sort(),
      pins.map(f => `/files/${f}`).sort(),
    );
  });
}

const NATIVE_FILES = [
  'native_mod-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl',
  'native_mod-1.0-cp311-cp311-musllinux_1_1_x86_64.whl',
  'native_mod-1.0-cp311-cp311-win_amd64.whl',
  'native_mod-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl',
  'native_mod-1.0.tar.gz',
];

/** An app with one requirement hashed for every file of `names`, served by a local index. */
async function nativeApp(t: T, names: string[]) {
  const world = await makeWorld(t);
  const files = path.join(world.dir, 'native');
  await fsp.mkdir(files);
  const hashes: string[] = [];
  for (const name of names) {
    // vendor-sync only downloads and checks these: any bytes, each file its own.
    const bytes = Buffer.from(`the file ${name}\n`);
    await fsp.writeFile(path.join(files, name), bytes);
    hashes.push(`--hash=sha256:${createHash('sha256').update(bytes).digest('hex')}`);
  }
  const {url} = await startPypiIndex(files).then(started => {
    t.teardown(() => started.close());
    return started;
  });
  await world.app.write({
    'requirements.txt': `native-mod==1.0 ${hashes.join(' ')}\n`,
    'deploy.json': JSON.stringify({vendor: {url: '../vendor.git'}, install: 'pip'}),
  });
  await world.app.commit('app');
  return {world, url};
}

/** The files vendored, as the manifest lists them (and as they are on disk). */
async function vendoredFiles(t: T, world: World): Promise<string[]> {
  const manifest = await readVendorManifest(world.vendor.dir);
  const vendored = manifest.artifacts.map(a => a.path.replace(/^pypi\//, '')).sort();
  t.deepEqual((await fsp.readdir(path.join(world.vendor.dir, 'pypi'))).sort(), vendored);
  return vendored;
}

/** vendor-sync of one requirement hashed for every file of NATIVE_FILES, for `target`. */
async function syncNative(
  t: T,
  target: PythonTarget | undefined,
  names = NATIVE_FILES,
): Promise<string[]> {
  const {world, url} = await nativeApp(t, names);
  await vendorSync(
    {
      app: world.app.dir,
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
        pypiIndex: url,
        pypiTarget: target,
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
  return vendoredFiles(t, world);
}

test('sync without a Python target vendors every file a hash allows: each platform and the sdist', async t => {
  t.deepEqual(await syncNative(t, undefined), [...NATIVE_FILES].sort());
});

test('sync for linux-x64 and Python 3.11 vendors only the wheel those nodes install', async t => {
  t.deepEqual(await syncNative(t, {platforms: ['linux-x64'], version: '3.11'}), [
    'native_mod-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl',
  ]);
});

test('sync for a platform no wheel fits vendors the sdist for it, the fitting wheel for the other', async t => {
  t.deepEqual(
    await syncNative(t, {platforms: ['linux-x64-musl', 'linux-arm64'], version: '3.11'}),
    ['native_mod-1.0-cp311-cp311-musllinux_1_1_x86_64.whl', 'native_mod-1.0.tar.gz'],
  );
});

test('sync for a target no hashed file fits, with no sdist, stops and names the files', async t => {
  const wheels = NATIVE_FILES.filter(f => f.endsWith('.whl'));
  await t.throwsAsync(syncNative(t, {platforms: ['darwin-arm64'], version: '3.11'}, wheels), {
    instanceOf: SourceError,
    message:
      /^pypi native-mod==1\.0: of its hashed files \(native_mod-1\.0-cp311-cp311-manylinux.*\) none installs on darwin-arm64 with Python 3\.11, and there is no sdist\.$/,
  });
});

test('vendor-sync --platform and --python-version vendor only the wheels those nodes install', async t => {
  const {world, url} = await nativeApp(t, NATIVE_FILES);
  const args = ['--app', world.app.dir, '--vendor', world.vendor.dir, '--pypi-index', url];
  const bad = await runVendorSyncBin([...args, '--python-version', 'three'], world.dir);
  t.is(bad.code, ExitCode.usage, bad.stderr);
  t.regex(bad.stderr, /--python-version must be a Python version such as 3\.11/);
  const run = await runVendorSyncBin(
    [
      ...args,
      '--platform',
      'linux-x64',
      '--platform',
      'linux-x64-musl',
      '--python-version',
      '3.11',
    ],
    world.dir,
  );
  t.is(run.code, 0, run.stderr);
  t.deepEqual(await vendoredFiles(t, world), [
    'native_mod-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl',
    'native_mod-1.0-cp311-cp311-musllinux_1_1_x86_64.whl',
  ]);
});
