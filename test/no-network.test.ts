import {execFile, execFileSync} from 'node:child_process';
import {promises as fsp, readlinkSync} from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {promisify} from 'node:util';
import test from 'ava';
import {InstallError} from '../lib/support/errors.js';
import {networkWall} from '../lib/install/no-network.js';
import {pipInstaller} from '../lib/install/pip.js';
import {runLogged, runningRecord} from '../lib/node/run-logged.js';
import {silentReporter} from '../lib/support/reporter.js';
import {listenLocal} from './helpers/http.js';
import {startPypiIndex} from './helpers/pypi-index.js';
import {tempDir} from './helpers/tmp.js';
import {packageRoot} from './helpers/world.js';

const exec = promisify(execFile);

/** Whether this node can make a network namespace at all: then the installers must use one. */
function canUnshare(): boolean {
  try {
    execFileSync('unshare', ['-n', '--', 'true'], {stdio: 'ignore'});
    return true;
  } catch {
    return false;
  }
}

/** A server on the host's 127.0.0.1 that counts every connection made to it. */
async function trapServer(t: Parameters<typeof tempDir>[0]) {
  const trap = {hits: 0, url: ''};
  const server = http.createServer((_req, res) => res.writeHead(500).end());
  server.on('connection', () => trap.hits++);
  trap.url = await listenLocal(t, server);
  return trap;
}

const connect = (url: string) =>
  ['import sys, urllib.request', `urllib.request.urlopen(${JSON.stringify(url)}, timeout=5)`].join(
    '\n',
  );

test('a walled command reaches no server on the host 127.0.0.1, runs as the recorded pid itself, and stops when that pid is signalled [R36]', async t => {
  const dir = await tempDir(t);
  const trap = await trapServer(t);
  const env = {PATH: process.env.PATH ?? ''};
  const python = (await exec('python3', ['-c', 'import sys; print(sys.executable)'])).stdout.trim();
  const wall = await networkWall(env);
  t.is(wall.kind, canUnshare() ? 'namespace' : 'settings');
  t.is(wall.kind, 'namespace', 'this node can unshare -n: the installers must use it');
  const logFile = path.join(dir, 'install.log');
  const run = (command: string, args: string[]) =>
    runLogged(command, args, {cwd: dir, env: {...env, ...wall.env}, logFile, label: 'probe'});

  // The same request outside the wall (without the proxy settings) reaches the server.
  await runLogged(python, ['-c', connect(trap.url)], {
    cwd: dir,
    env,
    logFile,
    label: 'open',
  }).catch(() => undefined);
  t.is(trap.hits, 1, 'the server is reachable from the host');
  const [command, args] = wall.wrap(python, ['-c', connect(trap.url)]);
  await t.throwsAsync(run(command, args), {instanceOf: InstallError});
  t.is(trap.hits, 1, 'nothing reached the server from behind the wall');
  t.regex(await fsp.readFile(logFile, 'utf8'), /Network is unreachable|Connection refused/);

  // The pid runLogged records (and signals) is the installer itself, in another network namespace.
  const [sleeper, sleepArgs] = wall.wrap(python, ['-c', 'import time; time.sleep(60)']);
  const started = Date.now();
  let seen: {cmdline: string; netns: string} | undefined;
  const stopped = await t.throwsAsync(
    runLogged(sleeper, sleepArgs, {
      cwd: dir,
      env,
      logFile,
      label: 'sleeper',
      alongside: async () => {
        const record = runningRecord(logFile);
        for (let i = 0; i < 500 && !seen; i++) {
          await new Promise(resolve => setTimeout(resolve, 20));
          const text = await fsp.readFile(record, 'utf8').catch(() => '');
          if (!text) continue;
          const {pid} = JSON.parse(text) as {pid: number};
          const cmdline = (await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8'))
            .split('\0')
            .join(' ');
          if (cmdline.includes('time.sleep')) {
            seen = {cmdline, netns: readlinkSync(`/proc/${pid}/ns/net`)};
          }
        }
        throw new Error('stop it');
      },
    }),
  );
  t.is(stopped.message, 'stop it');
  t.truthy(seen, 'the recorded pid became the installer');
  t.true(seen?.cmdline.startsWith(`${python} -c import time`), seen?.cmdline);
  t.not(seen?.netns, readlinkSync('/proc/self/ns/net'));
  t.true(
    Date.now() - started < 30_000,
    'the signal sent to the recorded pid stopped the installer',
  );
});

/** Wheels of the example app (built offline) on a local PEP 503 index, and a python to run. */
async function indexWithWheels(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t);
  const vendor = path.join(dir, 'vendor');
  const requirements = path.join(dir, 'requirements.txt');
  await exec('python3', [
    path.join(packageRoot, 'examples', 'python-app', 'build_vendor.py'),
    vendor,
    requirements,
  ]);
  const index = await startPypiIndex(path.join(vendor, 'pypi'));
  t.teardown(() => index.close());
  const {stdout} = await exec('python3', ['-c', 'import sys; print(sys.executable)']);
  return {
    dir,
    index,
    requirements: await fsp.readFile(requirements, 'utf8'),
    python: stdout.trim(),
  };
}

for (const wall of ['namespace', 'settings'] as const) {
  test(`pip behind the ${wall} wall fetches nothing from the find-links a requirements file names [R36]`, async t => {
    const {dir, index, requirements, python} = await indexWithWheels(t);
    const releaseDir = path.join(dir, 'release');
    await fsp.mkdir(releaseDir);
    // What the check refuses, handed to the installer as if it had slipped through: the
    // wheelhouse is empty, and the packages are only on the index.
    const base = index.url;
    await fsp.writeFile(
      path.join(releaseDir, 'requirements.txt'),
      `--find-links ${base}hello-mod/\n--find-links ${base}dep-mod/\n${requirements}`,
    );
    // Without unshare on PATH the installer falls back to settings alone.
    const noUnshare = path.join(dir, 'bin');
    await fsp.mkdir(noUnshare);
    const env = {PATH: wall === 'namespace' ? (process.env.PATH ?? '') : noUnshare};
    const logFile = path.join(releaseDir, '.repodeploy', 'install.log');
    const installer = pipInstaller({
      type: 'pip',
      requirements: 'requirements.txt',
      python,
      venv: 'venv',
      reuse: false,
    });
    await t.throwsAsync(
      installer.install(
        {
          releaseDir,
          vendorDir: undefined,
          manifest: undefined,
          logFile,
          env,
          reporter: silentReporter,
          timeoutMs: 240_000,
          scratchDir: path.join(dir, 'scratch'),
        },
        [],
      ),
      {instanceOf: InstallError, message: /pip install failed/},
    );
    t.deepEqual(index.requests, [], 'no request reached the index');
    const log = await fsp.readFile(logFile, 'utf8');
    t.regex(
      log,
      wall === 'namespace' ? /network: none \(.*unshare -n/ : /network: blocked by settings only/,
    );
  });
}
