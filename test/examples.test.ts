import {execFile, spawn} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {promisify} from 'node:util';
import test, {type ExecutionContext} from 'ava';
import {tempDir} from './helpers/tmp.js';
import {requireTool} from './helpers/tools.js';
import {packageRoot} from './helpers/world.js';

const exec = promisify(execFile);
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

/**
 * Start nginx (master and worker) in a process group of its own, and stop the whole group when the
 * test ends: killing only the master leaves its worker running after the suite.
 */
async function startNginx(t: ExecutionContext, nginx: string, args: string[]): Promise<void> {
  const child = spawn(nginx, args, {stdio: 'ignore', detached: true});
  const exited = new Promise<void>(resolve =>
    child.once('exit', () => {
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  t.teardown(async () => {
    const group = child.pid ?? 0;
    try {
      process.kill(-group, 'SIGTERM');
    } catch {
      return; // the group is gone already
    }
    const stopped = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>(resolve =>
        setTimeout(() => {
          resolve(false);
        }, 5000),
      ),
    ]);
    if (!stopped) process.kill(-group, 'SIGKILL');
  });
}

test('the nginx maintenance snippet passes nginx -t and really answers 503 with the backoff while the flag exists', async t => {
  const nginx = await requireTool('nginx', 'nginx-light');
  const dir = await tempDir(t);
  const root = path.join(dir, 'srv-app');
  await fsp.mkdir(root);
  // nginx workers run as an unprivileged user: they must be able to look for the flag file.
  await fsp.chmod(dir, 0o755);
  const snippet = (
    await fsp.readFile(path.join(examples, 'nginx', 'maintenance.conf'), 'utf8')
  ).replaceAll('/srv/app', root);
  await fsp.writeFile(path.join(dir, 'maintenance.conf'), snippet);
  const port = await freePort();
  await fsp.writeFile(
    path.join(dir, 'nginx.conf'),
    `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events {}
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    include ${dir}/maintenance.conf;
    location / { return 200 'app\\n'; }
  }
}
`,
  );
  const conf = ['-c', path.join(dir, 'nginx.conf'), '-p', dir];
  const checked = await exec(nginx, ['-t', ...conf]);
  t.regex(checked.stderr, /test is successful/);

  await startNginx(t, nginx, conf);
  const get = async () => {
    for (let i = 0; i < 50; i++) {
      try {
        return await fetch(`http://127.0.0.1:${port}/some/page`);
      } catch {
        await new Promise(resolve => setTimeout(resolve, 100));
      }
    }
    throw new Error('nginx did not start');
  };
  t.is((await get()).status, 200);
  await fsp.writeFile(path.join(root, 'maintenance'), '{}');
  const res = await get();
  t.is(res.status, 503);
  t.is(res.headers.get('retry-after'), '300');
  t.is(res.headers.get('x-weave-backoff'), '300');
  t.deepEqual(await res.json(), {status: 'maintenance', retry_after: 300});
  await fsp.rm(path.join(root, 'maintenance'));
  t.is((await get()).status, 200);
});

test('the systemd unit passes systemd-analyze verify (which does reject a broken one)', async t => {
  const analyze = await requireTool('systemd-analyze', 'systemd');
  const unit = path.join(examples, 'systemd', 'sample-app.service');
  const ok = await exec(analyze, ['verify', unit]).then(
    () => 0,
    (error: unknown) => (error as {code?: number}).code ?? 1,
  );
  t.is(ok, 0);
  const dir = await tempDir(t);
  const broken = path.join(dir, 'broken.service');
  // A unit whose program does not exist must not pass: the check is real.
  await fsp.writeFile(
    broken,
    (await fsp.readFile(unit, 'utf8')).replace(
      'ExecStart=/usr/bin/node',
      'ExecStart=/nonexistent/node',
    ),
  );
  const bad = await exec(analyze, ['verify', broken]).then(
    () => ({code: 0, stderr: ''}),
    (error: unknown) => error as {code: number; stderr: string},
  );
  t.not(bad.code, 0);
});
