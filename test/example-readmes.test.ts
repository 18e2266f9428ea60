// examples/node-app/README.md and examples/python-app/README.md, followed literally: every ```sh
// block, in order, run by bash in an empty directory with EXAMPLE naming the example. npm's
// registry is a local Verdaccio serving the very tarballs the example's lockfile pins; the Python
// README serves its own local index. A README step that stops working fails its test.
import {promises as fsp} from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import test from 'ava';
import {runShellBlocks, shellBlocks} from './helpers/doc-shell.js';
import {startRegistry} from './helpers/npm-registry.js';
import {tempDir} from './helpers/tmp.js';
import {packageRoot} from './helpers/world.js';

const examples = path.join(packageRoot, 'examples');

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const {port} = server.address() as net.AddressInfo;
  await new Promise<void>(resolve =>
    server.close(() => {
      resolve();
    }),
  );
  return port;
}

/** A user's machine: repodeploy's bins on PATH, git identity, an empty HOME and work directory. */
async function userMachine(dir: string) {
  const bin = path.join(dir, 'bin');
  await fsp.mkdir(bin);
  for (const name of ['deploy', 'vendor-sync']) {
    await fsp.symlink(path.join(packageRoot, 'bin', `${name}.js`), path.join(bin, name));
  }
  const home = path.join(dir, 'home');
  const work = path.join(dir, 'empty');
  await fsp.mkdir(home);
  await fsp.mkdir(work);
  const env: NodeJS.ProcessEnv = {
    PATH: `${bin}:${process.env.PATH ?? ''}`,
    HOME: home,
    LANG: 'C.UTF-8',
    npm_config_cache: path.join(dir, 'npm-cache'),
    PIP_CONFIG_FILE: '/dev/null',
    GIT_AUTHOR_NAME: 'Ada Ops',
    GIT_AUTHOR_EMAIL: 'ada@example.org',
    GIT_COMMITTER_NAME: 'Ada Ops',
    GIT_COMMITTER_EMAIL: 'ada@example.org',
  };
  return {work, env};
}

/** The README's blocks with each fixed port it names replaced by a free one. */
async function readmeBlocks(example: string, ports: string[]): Promise<string[]> {
  const readme = await fsp.readFile(path.join(examples, example, 'README.md'), 'utf8');
  let blocks = shellBlocks(readme);
  for (const port of ports) {
    const free = String(await freePort());
    blocks = blocks.map(b =>
      b
        .replaceAll(`:${port}`, `:${free}`)
        .replaceAll(` ${port} `, ` ${free} `)
        .replaceAll(`PORT=${port}`, `PORT=${free}`),
    );
  }
  return blocks;
}

test('examples/node-app/README.md runs as written: vendored from the registry, deployed, answering', async t => {
  const dir = await tempDir(t);
  const registry = await startRegistry(path.join(dir, 'registry'));
  t.teardown(() => registry.close());
  const tarballs = path.join(examples, 'vendor', 'npm');
  for (const name of ['debug', 'escape-html', 'ms']) {
    const [file] = await fsp.readdir(path.join(tarballs, name));
    const version = /-(\d+\.\d+\.\d+)\.tgz$/.exec(file ?? '')?.[1] ?? '';
    await registry.publishTarball(
      name,
      version,
      await fsp.readFile(path.join(tarballs, name, file ?? '')),
    );
  }
  const {work, env} = await userMachine(dir);
  const npmrc = path.join(dir, 'npmrc');
  await fsp.writeFile(npmrc, `registry=${registry.url}\n`);
  const blocks = await readmeBlocks('node-app', ['8080']);
  t.true(blocks.length >= 4, `${blocks.length} blocks`);

  const run = await runShellBlocks(blocks, {
    cwd: work,
    env: {...env, EXAMPLE: path.join(examples, 'node-app'), NPM_CONFIG_USERCONFIG: npmrc},
  });
  t.is(run.error, undefined, `${run.stdout}\n${run.stderr}`);
  t.regex(run.stdout, /^\{"app":"sample","version":"1\.0\.0","path":"\/hello"\}$/m, run.stderr);
  // The tarballs came from the local registry, not from the lockfile's registry.npmjs.org.
  for (const name of ['debug', 'escape-html', 'ms']) {
    t.true(
      registry.seen.some(r => r.path.startsWith(`/${name}/-/`)),
      `${name} was not downloaded from the local registry`,
    );
  }
  const manifest = JSON.parse(
    await fsp.readFile(path.join(work, 'work', 'node-app-vendor', 'vendor-manifest.json'), 'utf8'),
  ) as {artifacts: Array<{name: string}>};
  t.deepEqual(manifest.artifacts.map(a => a.name).sort(), ['debug', 'escape-html', 'ms']);
});

test('examples/python-app/README.md runs as written: a local index, vendored wheels, a deployed venv answering', async t => {
  const dir = await tempDir(t);
  const {work, env} = await userMachine(dir);
  const blocks = await readmeBlocks('python-app', ['8000', '8081']);
  t.true(blocks.length >= 5, `${blocks.length} blocks`);

  const run = await runShellBlocks(blocks, {
    cwd: work,
    env: {...env, EXAMPLE: path.join(examples, 'python-app')},
  });
  t.is(run.error, undefined, `${run.stdout}\n${run.stderr}`);
  t.regex(run.stdout, /"greeting": "\*\* hello sync node \*\*"/, run.stderr);
  t.regex(run.stdout, /"backoff": 300/);
  const vendored = await fsp.readdir(path.join(work, 'work', 'python-app-vendor', 'pypi'));
  t.deepEqual(vendored.sort(), ['dep_mod-2.0-py3-none-any.whl', 'hello_mod-1.0-py3-none-any.whl']);
});
