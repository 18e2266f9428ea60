import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import test from 'ava';
import {status} from '../lib/node/status.js';
import {tempDir} from './helpers/tmp.js';
import {requireTool} from './helpers/tools.js';
import {fingerprint} from './helpers/tree.js';
import {deployBin, makeWorld, packageRoot, runDeployBin, type World} from './helpers/world.js';

const exec = promisify(execFile);

const playbooks = path.join(packageRoot, 'examples', 'ansible');
const nodes = ['node1', 'node2', 'node3'] as const;

type Run = {code: number; stdout: string; stderr: string};

/** Run the real ansible-playbook on the example playbooks, three nodes on this machine (local connection). */
async function ansible(world: World, playbook: string, args: string[]): Promise<Run> {
  const program = await requireTool('ansible-playbook', 'ansible-core');
  const inventory = path.join(world.dir, 'inventory.ini');
  return new Promise((resolve, reject) => {
    execFile(
      program,
      // An absolute path is a playbook of the test's own.
      ['-i', inventory, path.resolve(playbooks, playbook), ...args],
      {
        env: {
          PATH: process.env.PATH,
          HOME: world.dir,
          ANSIBLE_NOCOLOR: '1',
          ANSIBLE_LOCAL_TEMP: path.join(world.dir, 'ansible-tmp'),
          ANSIBLE_REMOTE_TEMP: path.join(world.dir, 'ansible-tmp'),
          ANSIBLE_ROLES_PATH: path.join(playbooks, 'roles'),
          ANSIBLE_RETRY_FILES_ENABLED: 'false',
        },
        encoding: 'utf8',
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        // A string code (ENOENT, EACCES) means it did not run at all: not an exit status.
        if (error && typeof error.code === 'string')
          reject(new Error(error.message, {cause: error}));
        else resolve({code: error ? Number(error.code ?? 1) : 0, stdout, stderr});
      },
    );
  });
}

async function fleetWorld(
  t: Parameters<typeof makeWorld>[0],
  serverOptions: Parameters<typeof makeWorld>[1] = {},
) {
  const world = await makeWorld(t, serverOptions);
  const roots = Object.fromEntries(nodes.map(n => [n, path.join(world.dir, 'fleet', n)])) as Record<
    (typeof nodes)[number],
    string
  >;
  const lines = [
    '[app_nodes]',
    ...nodes.map(n => `${n} ansible_connection=local deploy_root=${roots[n]}`),
    '',
    '[app_nodes:vars]',
  ];
  lines.push(
    `deploy_bin=${deployBin}`,
    `app_repo=${world.appUrl}`,
    'ansible_python_interpreter=/usr/bin/python3',
  );
  await fsp.writeFile(path.join(world.dir, 'inventory.ini'), `${lines.join('\n')}\n`);
  const commit = async (n: number) => {
    await world.app.write({
      'version.txt': `${n}\n`,
      // Each node's health check fails while <root>/fail-health exists.
      'deploy.json': JSON.stringify({
        healthcheck: {
          command: ['sh', '-c', 'test ! -f "$RELEASE_DIR/../../fail-health"'],
          timeout: 5,
        },
      }),
    });
    const sha = await world.app.commit(`version ${n}`);
    await world.publish();
    return sha;
  };
  return {world, roots, commit};
}

test('ansible rolls a release across three nodes with one release id; a failed health check on node 2 stops the roll-out', async t => {
  const {world, roots, commit} = await fleetWorld(t);
  const v1 = await commit(1);
  const first = await ansible(world, 'deploy.yml', ['-e', `app_rev=${v1}`]);
  t.is(first.code, 0, first.stdout + first.stderr);
  const ids = await Promise.all(nodes.map(async n => (await status({root: roots[n]})).current?.id));
  t.is(new Set(ids).size, 1, `one release id on every node: ${ids.join(', ')}`);
  const v1Release = ids[0] ?? '';
  t.regex(v1Release, new RegExp(`^\\d{8}T\\d{6}Z-${v1.slice(0, 12)}$`));

  const v2 = await commit(2);
  await fsp.writeFile(path.join(roots.node2, 'fail-health'), '');
  const second = await ansible(world, 'deploy.yml', ['-e', `app_rev=${v2}`]);
  t.not(second.code, 0, 'the play fails');
  t.regex(second.stdout, /node2/);
  const s1 = await status({root: roots.node1});
  const s2 = await status({root: roots.node2});
  const s3 = await status({root: roots.node3});
  t.is(
    s1.current?.appSha,
    v2,
    'node 1 went first and is on the new release (as the playbook documents)',
  );
  t.is(s2.current?.id, v1Release, 'node 2 switched itself back to the old release');
  t.is(s2.releases.find(r => r.appSha === v2)?.state, 'bad');
  t.is(s3.current?.id, v1Release, 'node 3 was not touched');
  t.false(
    s3.releases.some(r => r.appSha === v2),
    'no v2 release was even built on node 3',
  );

  const back = await ansible(world, 'rollback.yml', [
    '--limit',
    'node1',
    '-e',
    "rollback_reason='fleet roll-out failed on node2'",
  ]);
  t.is(back.code, 0, back.stdout + back.stderr);
  const after = await status({root: roots.node1});
  t.is(after.current?.id, v1Release);
  t.is(after.releases.find(r => r.appSha === v2)?.state, 'bad');
});

test('[R43] ansible rolls out a bundle pinned to the sha256 published with it; a re-packed one is refused on the first node', async t => {
  const {world, roots, commit} = await fleetWorld(t);
  const v1 = await commit(1);
  const bundle = path.join(world.dir, 'dist', 'app-v1.tar.gz');
  const made = await runDeployBin(['bundle', '--rev', v1, '--repo', world.appUrl, '--out', bundle]);
  t.is(made.code, 0, made.stderr);
  const bundleDir = path.join(world.dir, 'incoming');
  await fsp.mkdir(bundleDir);
  await world.server.close();
  const vars = ['-e', `app_rev=${v1}`, '-e', `deploy_bundle_dir=${bundleDir}`];
  const first = await ansible(world, 'deploy.yml', [...vars, '-e', `app_bundle=${bundle}`]);
  t.is(first.code, 0, first.stdout + first.stderr);
  for (const n of nodes) t.is((await status({root: roots[n]})).current?.appSha, v1, n);

  // The same name, other bytes; the published checksum file is the old one.
  const published = await fsp.readFile(`${bundle}.sha256`, 'utf8');
  const work = path.join(world.dir, 'repack');
  await fsp.mkdir(work);
  await exec('tar', ['-xzf', bundle, '-C', work]);
  await fsp.appendFile(path.join(work, 'tree', 'version.txt'), 'tampered\n');
  await exec('tar', ['-czf', bundle, '-C', work, '.']);
  await fsp.writeFile(`${bundle}.sha256`, published);
  const before = await Promise.all(nodes.map(n => fingerprint(path.join(roots[n], 'releases'))));
  const second = await ansible(world, 'deploy.yml', [
    ...vars,
    '-e',
    `app_bundle=${bundle}`,
    '-e',
    'release_id=tampered',
  ]);
  t.not(second.code, 0, 'the play fails');
  t.regex(second.stdout, /its sha256 is [0-9a-f]{64}, not [0-9a-f]{64} as --sha256 says/);
  const after = await Promise.all(nodes.map(n => fingerprint(path.join(roots[n], 'releases'))));
  t.deepEqual(after, before, 'no node wrote a release');
});

/** `changed=N` of each node in a play recap. */
function changedCounts(stdout: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of stdout.matchAll(/^(node\d)\s+:\s+ok=\d+\s+changed=(\d+)/gm))
    counts[m[1] ?? ''] = Number(m[2]);
  return counts;
}

const allChanged = (n: number) => Object.fromEntries(nodes.map(node => [node, n]));

test('ansible: a re-run of a roll-out is ok on every host (changed=0), resumed with its release id too; --check says what would change', async t => {
  const {world, roots, commit} = await fleetWorld(t);
  const v1 = await commit(1);
  const reloads = path.join(world.dir, 'reloads');
  const reload = JSON.stringify({deploy_reload_command: ['sh', '-c', `echo x >> ${reloads}`]});
  const first = await ansible(world, 'deploy.yml', ['-e', `app_rev=${v1}`, '-e', reload]);
  t.is(first.code, 0, first.stdout + first.stderr);
  t.deepEqual(changedCounts(first.stdout), allChanged(2), 'deployed, then the reload handler');
  t.is((await fsp.readFile(reloads, 'utf8')).split('\n').length - 1, 3);
  const id = (await status({root: roots.node1})).current?.id ?? '';

  const second = await ansible(world, 'deploy.yml', ['-e', `app_rev=${v1}`, '-e', reload]);
  t.is(second.code, 0, second.stdout + second.stderr);
  t.deepEqual(changedCounts(second.stdout), allChanged(0), second.stdout);
  t.regex(second.stdout, new RegExp(`node3: already live: ${id} app ${v1}`));
  t.is((await fsp.readFile(reloads, 'utf8')).split('\n').length - 1, 3, 'no reload');
  const resumed = await ansible(world, 'deploy.yml', [
    '-e',
    `app_rev=${v1}`,
    '-e',
    `release_id=${id}`,
  ]);
  t.is(resumed.code, 0, resumed.stdout + resumed.stderr);
  t.deepEqual(changedCounts(resumed.stdout), allChanged(0), resumed.stdout);
  for (const n of nodes) t.is((await status({root: roots[n]})).releases.length, 1, n);

  const v2 = await commit(2);
  const before = await Promise.all(nodes.map(n => fingerprint(roots[n])));
  const check = await ansible(world, 'deploy.yml', ['-e', `app_rev=${v2}`, '--check']);
  t.is(check.code, 0, check.stdout + check.stderr);
  t.deepEqual(changedCounts(check.stdout), allChanged(1), check.stdout);
  t.regex(check.stdout, /node2: would deploy \d{8}T\d{6}Z-/);
  const checkLive = await ansible(world, 'deploy.yml', ['-e', `app_rev=${v1}`, '--check']);
  t.is(checkLive.code, 0, checkLive.stdout + checkLive.stderr);
  t.deepEqual(changedCounts(checkLive.stdout), allChanged(0), checkLive.stdout);
  t.deepEqual(
    await Promise.all(nodes.map(n => fingerprint(roots[n]))),
    before,
    '--check changed nothing',
  );

  const fleet = await ansible(world, 'status.yml', []);
  t.is(fleet.code, 0, fleet.stdout + fleet.stderr);
  t.regex(fleet.stdout, new RegExp(`node2: ${id} app ${v1} \\(live\\)`));
  t.regex(fleet.stdout, new RegExp(`1 app commit\\(s\\) live across 3 host\\(s\\): ${v1}`));
});

test('ansible: a missing app_rev is a clear error, from the playbook and from the role itself', async t => {
  const {world} = await fleetWorld(t);
  const bare = await ansible(world, 'deploy.yml', []);
  t.not(bare.code, 0);
  t.regex(bare.stdout, /app_rev is required/);
  const play = path.join(world.dir, 'role-only.yml');
  await fsp.writeFile(play, '- hosts: node1\n  gather_facts: false\n  roles: [repodeploy]\n');
  const role = await ansible(world, play, []);
  t.not(role.code, 0);
  t.regex(role.stdout, /missing required arguments: app_rev/);
});

test('ansible: deploy_git_token reaches deploy in its environment and is logged nowhere (-v)', async t => {
  const token = 'tok-ansible-5c81e2a9';
  const {world, roots, commit} = await fleetWorld(t, {
    auth: {username: 'deployer', password: token},
  });
  const v1 = await commit(1);
  // -v shows every task's result (what no_log hides); -vvv would also show Ansible's own
  // connection commands, which carry the task's environment (docs/fleet.md says so).
  const vars = ['-e', `app_rev=${v1}`, '-e', 'deploy_git_username=deployer', '-v'];
  const denied = await ansible(world, 'deploy.yml', [...vars, '--limit', 'localhost,node1']);
  t.not(denied.code, 0);
  t.regex(denied.stdout, /node1: deploy exited 5: .*(refused access|authentication required)/);
  const run = await ansible(world, 'deploy.yml', [...vars, '-e', `deploy_git_token=${token}`]);
  t.is(run.code, 0, run.stdout + run.stderr);
  for (const n of nodes) t.is((await status({root: roots[n]})).current?.appSha, v1, n);
  const leaks = (run.stdout + run.stderr).split('\n').filter(line => line.includes(token));
  t.deepEqual(leaks, [], 'the token is not logged');
});

/** ansible-lint on the given playbooks and roles of a directory; its exit code and report. */
async function ansibleLint(dir: string, targets: string[]): Promise<Run> {
  const program = await requireTool('ansible-lint', 'ansible-lint');
  try {
    const {stdout, stderr} = await exec(
      program,
      ['--offline', '--profile', 'production', '--nocolor', ...targets],
      {cwd: dir, env: {...process.env, NO_COLOR: '1', HOME: dir}},
    );
    return {code: 0, stdout, stderr};
  } catch (error) {
    const failed = error as {code?: number; stdout?: string; stderr?: string};
    return {code: failed.code ?? 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? ''};
  }
}

test('the example playbooks and role pass ansible-lint with the production profile', async t => {
  const targets = ['deploy.yml', 'rollback.yml', 'status.yml', 'roles/repodeploy'];
  const copy = path.join(await tempDir(t), 'ansible');
  await fsp.cp(playbooks, copy, {recursive: true});
  const clean = await ansibleLint(copy, targets);
  t.is(clean.code, 0, clean.stdout + clean.stderr);
  t.regex(clean.stdout + clean.stderr, /Passed with production profile: 0 failure/);
  // The same lint sees a fault when there is one: a task named against the rules.
  const rollback = path.join(copy, 'rollback.yml');
  const text = await fsp.readFile(rollback, 'utf8');
  await fsp.writeFile(
    rollback,
    text.replace('- name: Roll this node back', '- name: roll this node back'),
  );
  const faulty = await ansibleLint(copy, targets);
  t.not(faulty.code, 0);
  t.regex(faulty.stdout + faulty.stderr, /name\[casing\]/);
});
