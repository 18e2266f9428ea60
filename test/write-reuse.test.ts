import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import {FILES_MANIFEST, META_DIR} from '../lib/node/layout.js';
import type {FilesManifest} from '../lib/deploy/previous-files.js';
import type {Reporter} from '../lib/support/reporter.js';
import {gitArchive} from './helpers/repos.js';
import {tempDir} from './helpers/tmp.js';
import {snapshotTree} from './helpers/tree.js';
import {makeWorld, pinVendor, runDeploy, type World} from './helpers/world.js';

/** A deploy whose reporter lines are kept, with its release directory. */
async function deployRev(world: World, rev: string) {
  const lines: string[] = [];
  const reporter: Reporter = {
    info: line => lines.push(line),
    detail: line => lines.push(line),
    warn: line => lines.push(`warning: ${line}`),
    phase: (_name, work) => work(() => undefined),
    skipped: (name, reason) => lines.push(`${name}: skipped: ${reason}`),
  };
  const result = await runDeploy({root: world.root, rev, repo: world.appUrl}, {reporter});
  return {dir: result.releaseDir, sha: result.app.sha, lines};
}

/** An app (the sample one and a vendor pin), deployed once: release A, live. */
async function deployedWorld(t: ExecutionContext) {
  const world = await makeWorld(t);
  await world.vendor.write({
    'npm/a.txt': 'vendor a\n',
    'npm/b.txt': 'vendor b\n',
    'tools/run.sh': {content: '#!/bin/sh\n', mode: 0o755},
  });
  await pinVendor(world, {sample: true, files: {'src/other.js': 'other\n'}});
  const a = await deployRev(world, 'main');
  return {world, a};
}

/** Commit a change of the app's version.txt (one file changed) and deploy it. */
async function deployChange(world: World, n: number) {
  await world.app.write({'version.txt': `${n}\n`});
  await world.app.commit(`version ${n}`);
  await world.publish();
  return deployRev(world, 'main');
}

/** The release equals `git archive` of its app and vendor commits, file for file. */
async function assertEqualsGit(
  t: ExecutionContext,
  world: World,
  release: {dir: string; sha: string},
) {
  const expected = path.join(await tempDir(t), 'expected');
  await gitArchive(world.app.dir, release.sha, expected);
  t.deepEqual(
    await snapshotTree(release.dir, [META_DIR, 'vendor']),
    await snapshotTree(expected, ['vendor']),
  );
  const vendorExpected = path.join(await tempDir(t), 'vendor');
  await gitArchive(world.vendor.dir, 'HEAD', vendorExpected);
  t.deepEqual(
    await snapshotTree(path.join(release.dir, 'vendor')),
    await snapshotTree(vendorExpected),
  );
}

const appLine = (lines: string[]) => lines.find(line => line.startsWith('app: '));
const vendorLine = (lines: string[]) => lines.find(line => line.startsWith('vendor: '));

test('unchanged files are copied from the live release, never shared with it', async t => {
  const {world, a} = await deployedWorld(t);
  t.is(appLine(a.lines), 'app: 6 files, 1 symlink', 'the first deploy writes everything');
  const b = await deployChange(world, 2);
  t.is(appLine(b.lines), 'app: 7 files (6 from the previous release), 1 symlink');
  t.is(vendorLine(b.lines), 'vendor: 3 files (3 from the previous release), 0 symlinks');
  await assertEqualsGit(t, world, b);

  const inB = path.join(b.dir, 'src/server.js');
  const inA = path.join(a.dir, 'src/server.js');
  t.not((await fsp.stat(inB)).ino, (await fsp.stat(inA)).ino, 'a copy, not a hard link');
  t.is((await fsp.stat(inB)).nlink, 1);
  // A hook or a person writing the new release's file in place leaves the old release alone.
  const handle = await fsp.open(inB, 'r+');
  await handle.write('EDITED', 0);
  await handle.close();
  t.is(await fsp.readFile(inA, 'utf8'), "console.log('hello');\n");
  t.is((await fsp.stat(path.join(b.dir, 'bin/start.sh'))).mode & 0o777, 0o755, 'modes kept');
});

test('a live file edited in place is written from git into the next release', async t => {
  const {world, a} = await deployedWorld(t);
  const live = path.join(a.dir, 'src/server.js');
  // The same size, so only the mtime tells; and one of another size in the vendor tree.
  await new Promise(resolve => setTimeout(resolve, 20));
  const handle = await fsp.open(live, 'r+');
  await handle.write('EDITED', 0);
  await handle.close();
  await fsp.appendFile(path.join(a.dir, 'vendor/npm/a.txt'), 'more\n');
  const b = await deployChange(world, 2);
  t.is(appLine(b.lines), 'app: 7 files (5 from the previous release), 1 symlink');
  t.is(vendorLine(b.lines), 'vendor: 3 files (2 from the previous release), 0 symlinks');
  await assertEqualsGit(t, world, b);
  t.is(await fsp.readFile(path.join(b.dir, 'src/server.js'), 'utf8'), "console.log('hello');\n");
  t.regex(await fsp.readFile(live, 'utf8'), /^EDITED/, 'the live file is left as it is');
});

test('a previous file replaced, re-moded or turned into a symlink is written from git', async t => {
  const {world, a} = await deployedWorld(t);
  const outside = path.join(await tempDir(t), 'secret');
  await fsp.writeFile(outside, "console.log('hello');\n");
  // A symlink planted in place of the file, to a file of the same content: not followed.
  await fsp.rm(path.join(a.dir, 'src/server.js'));
  await fsp.symlink(outside, path.join(a.dir, 'src/server.js'));
  await fsp.chmod(path.join(a.dir, 'README.md'), 0o666);
  // Replaced by another file (a new inode) of the same content.
  const other = path.join(a.dir, 'src/other.js');
  await fsp.rm(other);
  await fsp.writeFile(other, 'other\n');
  // Hard-linked from elsewhere: another name could change it.
  await fsp.link(path.join(a.dir, 'src/lib/util.js'), path.join(await tempDir(t), 'util.js'));
  // A directory replaced by a file: what was under it is not there to take.
  await fsp.rm(path.join(a.dir, 'vendor/npm'), {recursive: true});
  await fsp.writeFile(path.join(a.dir, 'vendor/npm'), 'not a directory\n');
  const b = await deployChange(world, 2);
  t.is(appLine(b.lines), 'app: 7 files (2 from the previous release), 1 symlink');
  t.is(vendorLine(b.lines), 'vendor: 3 files (1 from the previous release), 0 symlinks');
  await assertEqualsGit(t, world, b);
  t.false((await fsp.lstat(path.join(b.dir, 'src/server.js'))).isSymbolicLink());
  t.is((await fsp.stat(path.join(b.dir, 'README.md'))).mode & 0o777, 0o644);
});

test('a release without a manifest (an older one) is not taken from; the next one is', async t => {
  const {world, a} = await deployedWorld(t);
  await fsp.rm(path.join(a.dir, META_DIR, FILES_MANIFEST));
  const b = await deployChange(world, 2);
  t.is(appLine(b.lines), 'app: 7 files, 1 symlink');
  t.is(vendorLine(b.lines), 'vendor: 3 files, 0 symlinks');
  const c = await deployChange(world, 3);
  t.is(appLine(c.lines), 'app: 7 files (6 from the previous release), 1 symlink');
  await assertEqualsGit(t, world, c);
});

test('the manifest records the commits and every regular file as written', async t => {
  const {world, a} = await deployedWorld(t);
  const manifest = JSON.parse(
    await fsp.readFile(path.join(a.dir, META_DIR, FILES_MANIFEST), 'utf8'),
  ) as FilesManifest;
  t.is(manifest.app.sha, a.sha);
  t.is(manifest.vendor?.sha, await world.vendor.head());
  const paths = manifest.app.files.map(record => record[0]).sort();
  t.deepEqual(paths, [
    'README.md',
    'bin/start.sh',
    'deploy.json',
    'src/lib/util.js',
    'src/other.js',
    'src/server.js',
  ]);
  const start = manifest.app.files.find(record => record[0] === 'bin/start.sh');
  const stat = await fsp.lstat(path.join(a.dir, 'bin/start.sh'));
  t.deepEqual(start?.slice(2), ['executable', stat.size, stat.mtimeMs, stat.mode, stat.ino]);
  t.deepEqual(manifest.vendor?.files.map(record => record[0]).sort(), [
    'npm/a.txt',
    'npm/b.txt',
    'tools/run.sh',
  ]);
});
