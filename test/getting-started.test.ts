// docs/getting-started.md, followed literally: every ```sh block, in order, run by bash in an
// empty directory, against a local npm registry and a local PEP 503 index that serve the
// packages the doc names. A doc step that stops working fails this test.
import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import test from 'ava';
import {shellBlocks} from './helpers/doc-shell.js';
import {startRegistry} from './helpers/npm-registry.js';
import {startPypiIndex} from './helpers/pypi-index.js';
import {tempDir} from './helpers/tmp.js';
import {packageRoot} from './helpers/world.js';

const exec = promisify(execFile);

/** A pure-Python wheel of six 1.17.0 (a zip with the module and its dist-info), built by pip's Python. */
async function buildSixWheel(dir: string): Promise<void> {
  const script = `
import base64, hashlib, sys, zipfile
out = sys.argv[1] + '/six-1.17.0-py2.py3-none-any.whl'
files = {
  'six.py': b'__version__ = "1.17.0"\\n',
  'six-1.17.0.dist-info/METADATA': b'Metadata-Version: 2.1\\nName: six\\nVersion: 1.17.0\\n',
  'six-1.17.0.dist-info/WHEEL': b'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py2-none-any\\nTag: py3-none-any\\n',
}
def h(d): return 'sha256=' + base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()
record = ''.join(f'{n},{h(d)},{len(d)}\\n' for n, d in files.items()) + 'six-1.17.0.dist-info/RECORD,,\\n'
with zipfile.ZipFile(out, 'w') as z:
    for n, d in files.items(): z.writestr(zipfile.ZipInfo(n, (2020, 1, 1, 0, 0, 0)), d)
    z.writestr(zipfile.ZipInfo('six-1.17.0.dist-info/RECORD', (2020, 1, 1, 0, 0, 0)), record)
`;
  await exec('python3', ['-c', script, dir]);
}

test('docs/getting-started.md runs as written: npm app first and second deploy, pip app first deploy', async t => {
  const dir = await tempDir(t);
  const registry = await startRegistry(path.join(dir, 'registry'));
  t.teardown(() => registry.close());
  await registry.publish({
    name: 'ms',
    version: '2.1.3',
    files: {'index.js': "module.exports = s => (s === '2h' ? 7200000 : NaN);\n"},
  });
  await registry.publish({
    name: 'left-pad',
    version: '1.3.0',
    files: {'index.js': "module.exports = (s, n) => String(s).padStart(n, ' ');\n"},
  });
  const wheels = path.join(dir, 'wheels');
  await fsp.mkdir(wheels);
  await buildSixWheel(wheels);
  const index = await startPypiIndex(wheels);
  t.teardown(() => index.close());

  // The user's machine: repodeploy's bins on PATH, npm set to the registry, pip to the index.
  const bin = path.join(dir, 'bin');
  await fsp.mkdir(bin);
  for (const name of ['deploy', 'vendor-sync']) {
    await fsp.symlink(path.join(packageRoot, 'bin', `${name}.js`), path.join(bin, name));
  }
  const npmrc = path.join(dir, 'npmrc');
  await fsp.writeFile(npmrc, `registry=${registry.url}\nomit-lockfile-registry-resolved=false\n`);
  const home = path.join(dir, 'home');
  const work = path.join(dir, 'empty');
  await fsp.mkdir(home);
  await fsp.mkdir(work);

  const doc = await fsp.readFile(path.join(packageRoot, 'docs', 'getting-started.md'), 'utf8');
  const blocks = shellBlocks(doc);
  t.true(blocks.length >= 6, `${blocks.length} blocks`);
  const script = `set -euo pipefail\n${blocks.join('\n')}`;
  const run = await exec('bash', ['-c', script], {
    cwd: work,
    env: {
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      HOME: home,
      LANG: 'C.UTF-8',
      NPM_CONFIG_USERCONFIG: npmrc,
      npm_config_cache: path.join(dir, 'npm-cache'),
      PIP_CONFIG_FILE: '/dev/null',
      PIP_INDEX_URL: index.url,
      GIT_AUTHOR_NAME: 'Ada Ops',
      GIT_AUTHOR_EMAIL: 'ada@example.org',
      GIT_COMMITTER_NAME: 'Ada Ops',
      GIT_COMMITTER_EMAIL: 'ada@example.org',
    },
    maxBuffer: 16 * 1024 * 1024,
  }).catch((error: unknown) => {
    const e = error as {stdout?: string; stderr?: string; message: string};
    t.fail(`the doc's commands failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
    return {stdout: '', stderr: ''};
  });
  t.regex(run.stdout, /^myapp v1 7200000$/m, run.stderr);
  t.regex(run.stdout, /^myapp v2 7200000 {3}x$/m, run.stderr);
  t.regex(run.stdout, /^pyapp v1 1\.17\.0$/m, run.stderr);
  const releases = await fsp.readdir(path.join(work, 'nodes', 'myapp', 'releases'));
  t.is(releases.length, 2);
  // The vendor repository holds both tarballs the lockfile pins, and nothing else.
  const manifest = JSON.parse(
    await fsp.readFile(path.join(work, 'work', 'myapp-vendor', 'vendor-manifest.json'), 'utf8'),
  ) as {artifacts: Array<{name: string}>};
  t.deepEqual(manifest.artifacts.map(a => a.name).sort(), ['left-pad', 'ms']);
});
