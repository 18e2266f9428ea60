import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {pathToFileURL} from 'node:url';
import test from 'ava';
import {FixtureRepo} from './helpers/repos.js';
import {tempDir} from './helpers/tmp.js';
import {packageRoot} from './helpers/world.js';

type WorkTreeState = Map<string, string>;
type WorkTreeModule = {
  workTreeState: (cwd: string) => WorkTreeState | undefined;
  changedFiles: (before: WorkTreeState, after: WorkTreeState) => string[];
};

async function workTreeModule(): Promise<WorkTreeModule> {
  const file = path.join(packageRoot, 'scripts', 'work-tree-state.mjs');
  return (await import(pathToFileURL(file).href)) as WorkTreeModule;
}

test('the test runner sees what a run changed in the work tree, and only that', async t => {
  const {workTreeState, changedFiles} = await workTreeModule();
  const dir = await tempDir(t);
  const repo = await FixtureRepo.init(path.join(dir, 'repo'));
  await repo.write({'docs/table.md': 'v1\n', 'kept.txt': 'same\n', 'edited.txt': 'a\n'});
  await repo.commit('first');
  // A developer's own uncommitted edit, present before the run: not the run's doing.
  await fsp.writeFile(path.join(repo.dir, 'edited.txt'), 'mine\n');
  const before = workTreeState(repo.dir);
  if (!before) throw new Error('a git work tree has a state');
  t.deepEqual(changedFiles(before, before), []);

  await fsp.writeFile(path.join(repo.dir, 'docs', 'table.md'), 'v2\n');
  await fsp.writeFile(path.join(repo.dir, 'left-behind.log.txt'), 'x\n');
  const after = workTreeState(repo.dir);
  if (!after) throw new Error('a git work tree has a state');
  t.deepEqual(changedFiles(before, after), [' M docs/table.md', '?? left-behind.log.txt']);

  // The same file edited again during the run is reported.
  await fsp.writeFile(path.join(repo.dir, 'edited.txt'), 'changed by the run\n');
  const later = workTreeState(repo.dir);
  if (!later) throw new Error('a git work tree has a state');
  t.true(changedFiles(before, later).includes(' M edited.txt'));
  t.is(workTreeState(dir), undefined, 'outside a work tree there is nothing to compare');
});

test('npm test stops at once, naming the Debian packages, when programs the tests run are missing and cannot be installed', async t => {
  const dir = await tempDir(t);
  // A PATH with node alone: no git, ansible-playbook, systemd-analyze, python3, nor apt-get.
  const bin = path.join(dir, 'bin');
  await fsp.mkdir(bin);
  await fsp.symlink(process.execPath, path.join(bin, 'node'));
  const started = Date.now();
  const {code, stderr} = await new Promise<{code: number; stderr: string}>(resolve => {
    execFile(
      path.join(bin, 'node'),
      [path.join(packageRoot, 'scripts', 'test-prereqs.mjs')],
      {env: {PATH: bin, HOME: dir}, encoding: 'utf8'},
      (error, _stdout, err) => {
        resolve({code: error ? Number(error.code ?? 1) : 0, stderr: err});
      },
    );
  });
  t.is(code, 1);
  for (const pkg of ['git', 'ansible-core', 'systemd', 'python3-venv']) {
    t.regex(stderr, new RegExp(`\\(Debian package ${pkg}\\)`));
  }
  t.regex(stderr, /sudo apt-get install [^\n]*ansible-core/);
  t.notRegex(stderr, /installing/, 'nothing to install with: no apt-get on this PATH');
  t.true(Date.now() - started < 30_000);
});
