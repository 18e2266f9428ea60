import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test from 'ava';
import {startGitHttpServer} from './helpers/git-http-server.js';
import {FixtureRepo} from './helpers/repos.js';
import {tempDir} from './helpers/tmp.js';
import {packageRoot} from './helpers/world.js';

type Run = {code: number; stdout: string; stderr: string};

function run(command: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<Run> {
  return new Promise(resolve => {
    execFile(
      command,
      args,
      {env, cwd, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024},
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({code, stdout, stderr: error && !stderr ? error.message : stderr});
      },
    );
  });
}

/**
 * `npm pack`, then `npm install -g` of that tarball into a fresh prefix with an empty npm cache,
 * `--offline` and a registry nothing listens on: it works only if the package needs nothing
 * but itself.
 */
async function installPacked(
  dir: string,
): Promise<{prefix: string; install: Run; files: string[]}> {
  const env = {PATH: process.env.PATH, HOME: dir};
  // The suite runs on a fresh build: packing must not rebuild dist/ under the other test files.
  const packed = await run(
    'npm',
    ['pack', '--ignore-scripts', '--json', '--pack-destination', dir],
    env,
    packageRoot,
  );
  if (packed.code !== 0) throw new Error(`npm pack failed: ${packed.stderr}`);
  const [tarball] = JSON.parse(packed.stdout) as [{filename: string; files: {path: string}[]}];
  const prefix = path.join(dir, 'prefix');
  const install = await run(
    'npm',
    [
      'install',
      '--global',
      '--prefix',
      prefix,
      '--offline',
      '--cache',
      path.join(dir, 'npm-cache'),
      '--registry',
      'http://127.0.0.1:9/',
      path.join(dir, tarball.filename),
    ],
    env,
    dir,
  );
  return {prefix, install, files: tarball.files.map(f => f.path)};
}

/** The sample app (examples/node-app, tagged v1.0.0) and its vendor repo, served over git HTTP. */
async function serveSampleApp(t: Parameters<typeof tempDir>[0], dir: string): Promise<string> {
  const examples = path.join(packageRoot, 'examples');
  const served = path.join(dir, 'served');
  const server = await startGitHttpServer({projectRoot: served});
  t.teardown(() => server.close());
  const vendor = await FixtureRepo.init(path.join(dir, 'src', 'vendor'));
  await fsp.cp(path.join(examples, 'vendor'), vendor.dir, {
    recursive: true,
    verbatimSymlinks: true,
  });
  const vendorSha = await vendor.commit('Vendor repository for the sample app');
  await vendor.publish(path.join(served, 'vendor.git'));
  const app = await FixtureRepo.init(path.join(dir, 'src', 'app'));
  await fsp.cp(path.join(examples, 'node-app'), app.dir, {recursive: true, verbatimSymlinks: true});
  await app.write({
    'deploy.json': JSON.stringify({vendor: {url: '../vendor.git', rev: vendorSha}, install: 'npm'}),
  });
  await app.commit('Sample app 1.0.0');
  await app.tag('v1.0.0', {annotated: true});
  await app.publish(path.join(served, 'app.git'));
  return server.repoUrl('app.git');
}

test('the packed package installs globally offline without warnings; its bins print the version, help, and deploy the sample app', async t => {
  const dir = await tempDir(t);
  const {prefix, install, files} = await installPacked(dir);
  t.is(install.code, 0, install.stderr);
  t.notRegex(install.stdout + install.stderr, /EBADENGINE/);
  t.notRegex(install.stdout + install.stderr, /npm warn/i, 'npm warned about the package');
  t.true(files.includes('LICENSE'), 'the license is in the package');
  const license = await fsp.readFile(
    path.join(prefix, 'lib', 'node_modules', 'repodeploy', 'LICENSE'),
    'utf8',
  );
  t.regex(license, /^Mozilla Public License Version 2\.0\n/);

  const {version} = JSON.parse(
    await fsp.readFile(path.join(packageRoot, 'package.json'), 'utf8'),
  ) as {version: string};
  // Run from a directory with no package.json above it, as an installed command is.
  const cwd = path.join(dir, 'elsewhere');
  await fsp.mkdir(cwd);
  const env = {PATH: `${path.join(prefix, 'bin')}:${process.env.PATH ?? ''}`, HOME: dir};
  for (const bin of ['deploy', 'vendor-sync']) {
    const shown = await run(bin, ['--version'], env, cwd);
    t.is(shown.code, 0, shown.stderr);
    t.is(shown.stdout.trim(), version, `${bin} --version`);
    const help = await run(bin, ['--help'], env, cwd);
    t.is(help.code, 0, help.stderr);
    t.regex(help.stdout, new RegExp(`^${bin}\\b[\\s\\S]*--version`));
  }

  const appUrl = await serveSampleApp(t, dir);
  const root = path.join(dir, 'node');
  const deployed = await run(
    'deploy',
    ['--rev', 'v1.0.0', '--repo', appUrl],
    {...env, DEPLOY_ROOT: root},
    cwd,
  );
  t.is(deployed.code, 0, deployed.stderr);
  t.regex(deployed.stdout, /^deployed \d{8}T\d{6}Z-[0-9a-f]{7}/m);
  const log = await fsp.readFile(path.join(root, 'current', '.repodeploy', 'install.log'), 'utf8');
  // The bundle carries its own cacache: the fast route into npm's cache is still taken.
  t.regex(log, /copied into place/);
  await fsp.access(path.join(root, 'current', 'node_modules'));
  const status = await run('deploy', ['status', '--json'], {...env, DEPLOY_ROOT: root}, cwd);
  t.is(status.code, 0, status.stderr);
  const {current} = JSON.parse(status.stdout) as {
    current: {id: string; state: string; requestedRev: string} | null;
  };
  t.is(current?.state, 'live');
  t.is(current?.requestedRev, 'v1.0.0');
  t.true(deployed.stdout.includes(`deployed ${current?.id ?? '?'}`));
});
