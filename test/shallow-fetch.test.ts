import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test from 'ava';
import {git} from './helpers/repos.js';
import {makeWorld, runDeploy, writeSampleApp, type World} from './helpers/world.js';

/**
 * A node fetches only the trees at the commits it deploys, never the app's history: the first
 * deploy of a long-lived app must not download every version of every file.
 */

/** An app with `commits` versions of a large file: history far larger than the tree. */
async function longLivedApp(world: World, commits: number) {
  await writeSampleApp(world.app);
  const shas: string[] = [];
  for (let i = 0; i < commits; i++) {
    await world.app.write({
      'bundle.js': `// build ${i}\n${`const x${i} = ${i};\n`.repeat(2000)}`,
      [`notes/${i % 5}.txt`]: `note ${i}\n`,
    });
    shas.push(await world.app.commit(`build ${i}`));
  }
  await world.publish();
  return shas;
}

const appStore = (world: World) => path.join(world.root, 'repos', 'app.git');

/** Objects in a store, counted by native git (a shallow store included). */
async function objectCount(store: string): Promise<number> {
  const out = await git(store, ['count-objects', '-v']);
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(out)?.[1]);
  return field('count') + field('in-pack');
}

test('a first deploy fetches the tree at the commit, not the history, and git reads the store', async t => {
  const world = await makeWorld(t);
  const shas = await longLivedApp(world, 30);
  const tip = shas.at(-1) as string;
  const result = await runDeploy({root: world.root, rev: tip, repo: world.appUrl});
  const tree = (await git(world.app.dir, ['ls-tree', '-r', '-t', tip])).split('\n').length;
  // The commit, its tree and subtrees, its blobs: nothing of the 29 commits before it.
  t.is(result.app.fetch.objects, tree + 2, 'the commit, the root tree and the entries');
  t.is((await fsp.readFile(path.join(appStore(world), 'shallow'), 'utf8')).trim(), tip);
  // Native git accepts the store as the shallow repository it is.
  await git(appStore(world), ['fsck', '--no-dangling']);
  t.is(await objectCount(appStore(world)), result.app.fetch.objects);
});

test('a later deploy fetches only what is new, even a file version older than the store', async t => {
  const world = await makeWorld(t);
  const shas = await longLivedApp(world, 10);
  const before = shas.at(-1) as string;
  await runDeploy({root: world.root, rev: before, repo: world.appUrl});
  // A revert: the new commit holds a bundle the store never had (it is only in older history),
  // which must come with the new objects although the store holds a descendant of its commit.
  const old = await git(world.app.dir, ['show', `${shas[2]}:bundle.js`]);
  await world.app.write({'bundle.js': `${old}\n`, 'notes/new.txt': 'new\n'});
  const next = await world.app.commit('revert the bundle');
  await world.publish();
  const result = await runDeploy({root: world.root, rev: next, repo: world.appUrl});
  t.is(await fsp.readFile(path.join(world.root, 'current', 'bundle.js'), 'utf8'), `${old}\n`);
  // The commit, the root and notes trees, the two new blobs.
  t.is(result.app.fetch.objects, 5);
  await git(appStore(world), ['fsck', '--no-dangling']);
});

test('an abbreviated sha of an older commit fetches the history it needs, and the store is whole', async t => {
  const world = await makeWorld(t);
  const shas = await longLivedApp(world, 8);
  await runDeploy({root: world.root, rev: shas.at(-1) as string, repo: world.appUrl});
  const older = shas[1] as string;
  const result = await runDeploy({root: world.root, rev: older.slice(0, 10), repo: world.appUrl});
  t.is(result.app.sha, older);
  t.regex(await fsp.readFile(path.join(world.root, 'current', 'bundle.js'), 'utf8'), /build 1\n/);
  // The whole history came in, so the store stopped being shallow. (A server not told which
  // commits the store is shallow at takes their history for held, and sends none of it.)
  await t.throwsAsync(fsp.access(path.join(appStore(world), 'shallow')));
  await git(appStore(world), ['fsck', '--no-dangling']);
  const all = (await git(world.app.dir, ['rev-list', '--objects', '--all'])).split('\n').length;
  t.true((await objectCount(appStore(world))) >= all);
});
