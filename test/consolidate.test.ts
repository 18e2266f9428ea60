import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import test from 'ava';
import git from 'isomorphic-git';
import {CONSOLIDATE_AT_PACKS, consolidatePacks} from '../lib/git/pack/merge.js';
import {createGitFs} from '../lib/git/isomorphic-hooks.js';
import {PackReader} from '../lib/git/pack/reader.js';
import {makeWorld, runDeploy} from './helpers/world.js';

const exec = promisify(execFile);

async function packs(gitdir: string): Promise<string[]> {
  const names = await fsp.readdir(path.join(gitdir, 'objects', 'pack'));
  return names.filter(name => name.endsWith('.pack')).sort();
}

/** Every object the store holds, with its type and size, as native git lists them. */
async function objectList(gitdir: string): Promise<string> {
  const {stdout} = await exec(
    'git',
    ['-C', gitdir, 'cat-file', '--batch-all-objects', '--batch-check'],
    {maxBuffer: 64 * 1024 * 1024},
  );
  return stdout;
}

test("a node's store, one pack per deploy, is merged into one pack that holds every object, reads the same and keeps taking fetches", async t => {
  const world = await makeWorld(t);
  // Files that change a little each commit, so packs hold deltas (ofs and, in fetched packs, ref).
  const body = (n: number) =>
    Array.from({length: 200}, (_, i) => `line ${i} ${i % 7 === n % 7 ? n : ''}\n`).join('');
  for (let n = 1; n <= 5; n++) {
    await world.app.write({
      'app.js': body(n),
      [`docs/page${n}.md`]: `# page ${n}\n${body(n)}`,
      'deploy.json': JSON.stringify({}),
    });
    await world.app.commit(`change ${n}`);
    await world.publish();
    await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  }
  const gitdir = path.join(world.root, 'repos', 'app.git');
  const before = await packs(gitdir);
  t.is(before.length, 5, 'one pack per deploy');
  const objectsBefore = await objectList(gitdir);
  const contentBefore = new Map<string, string>();
  for (const line of objectsBefore.trim().split('\n')) {
    const [oid = '', type = ''] = line.split(' ');
    const {stdout} = await exec('git', ['-C', gitdir, 'cat-file', type, oid], {encoding: 'buffer'});
    contentBefore.set(oid, stdout.toString('base64'));
  }

  t.is(await consolidatePacks(gitdir, 6), undefined, 'below the threshold nothing changes');
  t.deepEqual(await packs(gitdir), before);
  const merged = await consolidatePacks(gitdir, 2);
  t.deepEqual(merged, {packs: 5, objects: contentBefore.size});

  const after = await packs(gitdir);
  t.is(after.length, 1);
  const pack = path.join(gitdir, 'objects', 'pack', after[0] ?? '');
  const verify = await exec('git', ['verify-pack', '-v', pack.replace(/\.pack$/, '.idx')], {
    maxBuffer: 64 * 1024 * 1024,
  });
  t.regex(verify.stdout, /chain length = 1: /, 'deltas are kept as deltas');
  await exec('git', ['-C', gitdir, 'fsck', '--full', '--strict']);
  t.is(await objectList(gitdir), objectsBefore, 'the same objects');
  const reader = PackReader.open(gitdir);
  const gitFs = createGitFs();
  try {
    for (const [oid, content] of contentBefore) {
      t.is(reader.readObject(oid)?.data.toString('base64'), content, oid);
      // eslint-disable-next-line @typescript-eslint/no-deprecated -- any object, any type
      const read = await git.readObject({fs: gitFs, gitdir, oid, format: 'content', cache: {}});
      t.is(
        Buffer.from(read.object as Uint8Array).toString('base64'),
        content,
        `isomorphic-git ${oid}`,
      );
    }
  } finally {
    reader.close();
  }

  // The next deploys fetch on top of the merged pack.
  await world.app.write({'app.js': body(99)});
  await world.app.commit('after the merge');
  await world.publish();
  const next = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  t.is(await fsp.readFile(path.join(next.releaseDir, 'app.js'), 'utf8'), body(99));
  t.is((await packs(gitdir)).length, 2);
  // A deploy that brings the store to CONSOLIDATE_AT_PACKS packs merges them.
  for (let n = 3; n < CONSOLIDATE_AT_PACKS; n++) {
    await world.app.write({[`more/${n}.txt`]: `${n}\n`});
    await world.app.commit(`more ${n}`);
    await world.publish();
    await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
    t.is((await packs(gitdir)).length, n);
  }
  await world.app.write({'last.txt': 'last\n'});
  await world.app.commit('last');
  await world.publish();
  const last = await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  t.is((await packs(gitdir)).length, 1, 'merged by the deploy');
  t.is(await fsp.readFile(path.join(last.releaseDir, 'last.txt'), 'utf8'), 'last\n');
  await exec('git', ['-C', gitdir, 'fsck', '--full', '--strict']);
});

test('a merge killed before it finished leaves the store as it was, and the next one clears what it left', async t => {
  const world = await makeWorld(t);
  for (let n = 1; n <= 3; n++) {
    await world.app.write({'a.txt': `${n}\n`, 'deploy.json': JSON.stringify({})});
    await world.app.commit(`c${n}`);
    await world.publish();
    await runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
  }
  const gitdir = path.join(world.root, 'repos', 'app.git');
  const packDir = path.join(gitdir, 'objects', 'pack');
  // What a run killed mid-merge leaves: a half-written temp pack beside the real ones.
  await fsp.writeFile(path.join(packDir, 'tmp-consolidate-999.pack'), 'PACK half');
  const objects = await objectList(gitdir);
  await exec('git', ['-C', gitdir, 'fsck', '--full']);
  t.truthy(await consolidatePacks(gitdir, 2));
  t.false((await fsp.readdir(packDir)).some(name => name.startsWith('tmp-')));
  t.is(await objectList(gitdir), objects);
});
