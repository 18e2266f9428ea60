/**
 * `npm run demo`: a real deploy of the sample app onto a temporary node.
 *
 * 1. Builds the sample app repo and its vendor repo from examples/ (with git, on the developer
 *    side; the node itself needs no git binary).
 * 2. Serves both over git smart HTTP on 127.0.0.1 (`git http-backend` behind node:http).
 * 3. Runs the real `deploy` command: v1.0.0 first, then the next changeset, then `deploy status`.
 *
 * `--keep` leaves the temporary directory in place to look around.
 */
import {spawn} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {startGitHttpServer} from '../test/helpers/git-http-server.js';
import {FixtureRepo} from '../test/helpers/repos.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const packageRoot = path.resolve(here, '../..');
const examples = path.join(packageRoot, 'examples');
const deployBin = path.join(packageRoot, 'bin', 'deploy.js');

async function copyInto(repo: FixtureRepo, from: string): Promise<void> {
  await fsp.cp(from, repo.dir, {recursive: true, verbatimSymlinks: true});
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  console.log(`\n$ deploy ${args.join(' ')}`);
  return new Promise(resolve => {
    const child = spawn(process.execPath, [deployBin, ...args], {
      stdio: 'inherit',
      env: {...process.env, ...env},
    });
    child.on('close', code => {
      resolve(code ?? 1);
    });
  });
}

async function main(): Promise<number> {
  const keep = process.argv.includes('--keep');
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-demo-'));
  const served = path.join(work, 'served');
  const root = path.join(work, 'node');
  const server = await startGitHttpServer({projectRoot: served});
  try {
    console.log(`demo workspace: ${work}`);
    const vendor = await FixtureRepo.init(path.join(work, 'src', 'vendor'));
    await copyInto(vendor, path.join(examples, 'vendor'));
    const vendorSha = await vendor.commit('Vendor repository for the sample app');
    await vendor.publish(path.join(served, 'vendor.git'));

    const app = await FixtureRepo.init(path.join(work, 'src', 'app'));
    await copyInto(app, path.join(examples, 'node-app'));
    await app.write({
      'deploy.json': `${JSON.stringify({vendor: {url: '../vendor.git', rev: vendorSha}, install: 'npm'}, null, 2)}\n`,
    });
    await app.commit('Sample app 1.0.0');
    await app.tag('v1.0.0', {annotated: true});
    const pkg = JSON.parse(await fsp.readFile(path.join(app.dir, 'package.json'), 'utf8')) as {
      version: string;
    };
    pkg.version = '1.1.0';
    await app.write({'package.json': `${JSON.stringify(pkg, null, 2)}\n`});
    const next = await app.commit('Sample app 1.1.0');
    await app.publish(path.join(served, 'app.git'));
    console.log(`serving app.git and vendor.git at ${server.url} (git http-backend)`);

    const env = {DEPLOY_ROOT: root};
    const steps: string[][] = [
      ['--rev', 'v1.0.0', '--repo', server.repoUrl('app.git')],
      ['--rev', next.slice(0, 10)],
      ['status'],
    ];
    for (const args of steps) {
      const code = await run(args, env);
      if (code !== 0) {
        console.error(`demo: "deploy ${args.join(' ')}" exited ${code}`);
        return code;
      }
    }
    console.log(
      '\nstarting the app from current/ (its dependencies came from the vendor repo only):',
    );
    console.log(`  ${await askTheApp(path.join(root, 'current'))}`);
    console.log(`node layout under ${root}:`);
    for (const name of (await fsp.readdir(root)).sort()) console.log(`  ${name}`);
    return 0;
  } finally {
    await server.close();
    if (keep) console.log(`kept ${work}`);
    else await fsp.rm(work, {recursive: true, force: true});
  }
}

/** Start current/bin/start on a free port, ask it one question, stop it. */
async function askTheApp(current: string): Promise<string> {
  const probe = net.createServer();
  await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', resolve));
  const {port} = probe.address() as net.AddressInfo;
  await new Promise<void>(resolve =>
    probe.close(() => {
      resolve();
    }),
  );
  const child = spawn(path.join(current, 'bin', 'start'), {
    env: {...process.env, PORT: String(port)},
    stdio: 'ignore',
  });
  try {
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/hello?who=<ops>`);
        return `GET /hello?who=<ops> -> ${res.status} ${await res.text()}`;
      } catch {
        await new Promise(resolve => setTimeout(resolve, 100));
      }
    }
    return 'the app did not answer';
  } finally {
    child.kill();
  }
}

process.exitCode = await main();
