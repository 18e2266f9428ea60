import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test, {type ExecutionContext} from 'ava';
import git, {Errors} from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import {createGitFs, type GitFs} from '../lib/git/isomorphic-hooks.js';
import {startGitHttpServer} from './helpers/git-http-server.js';
import {FixtureRepo} from './helpers/repos.js';
import {tempDir} from './helpers/tmp.js';

/**
 * The contract between lib/git and isomorphic-git: one test per behaviour of isomorphic-git that
 * lib/git/isomorphic-hooks.ts names in its header (A1 to A7). Each test watches isomorphic-git
 * through a recording file system, so an upgrade that changes the behaviour fails here, by name.
 */

type Call = {method: string; args: unknown[]; error?: NodeJS.ErrnoException};

/** `fs` wrapped so that every method isomorphic-git asks for, and every call, is recorded. */
function recording(fs: GitFs) {
  const calls: Call[] = [];
  const asked = new Set<string>();
  const statProps = new Set<string>();
  const wrapped = new Proxy(fs, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string') return value;
      asked.add(prop);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const call: Call = {method: prop, args};
        calls.push(call);
        try {
          const result: unknown = await (value as (...a: unknown[]) => Promise<unknown>)(...args);
          return prop === 'stat' ? watchedStat(result as object, statProps) : result;
        } catch (error) {
          call.error = error as NodeJS.ErrnoException;
          throw error;
        }
      };
    },
  });
  return {fs: wrapped, calls, asked, statProps};
}

/** A stat whose property reads are recorded (A5 says which ones isomorphic-git makes). */
function watchedStat(stat: object, props: Set<string>): object {
  return new Proxy(stat, {
    get(target, prop) {
      if (typeof prop === 'string' && prop !== 'then') props.add(prop);
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}

/** A work tree with two commits, every object in one pack and none loose. */
async function packedRepo(t: ExecutionContext) {
  const repo = await FixtureRepo.init(path.join(await tempDir(t), 'app'));
  await repo.write({'a.txt': 'first\n'});
  await repo.commit('first');
  await repo.write({'a.txt': 'second\n', 'b.txt': 'another\n'});
  const head = await repo.commit('second');
  await repo.git('repack', '-adq');
  const blob = await repo.git('rev-parse', 'HEAD:a.txt');
  return {repo, gitdir: path.join(repo.dir, '.git'), head, blob};
}

const isPackFile = (file: unknown) =>
  typeof file === 'string' && /[/\\]objects[/\\]pack[/\\]pack-[0-9a-f]{40}\.pack$/.test(file);

test('A1: isomorphic-git probes the file system with readFile() and no path', async t => {
  const {gitdir, head} = await packedRepo(t);
  const {fs, calls} = recording(createGitFs());
  t.is(await git.resolveRef({fs, gitdir, ref: 'HEAD'}), head, 'it took the fs for a promise one');
  const probe = calls.find(call => call.method === 'readFile' && call.args[0] === undefined);
  t.truthy(probe, 'readFile() was called with no path');
  t.true(probe?.error instanceof TypeError, 'answered without the disk');
});

test('A2: a loose object is looked for first, and ENOENT means "look in the packs"', async t => {
  const {gitdir, blob} = await packedRepo(t);
  const {fs, calls} = recording(createGitFs());
  const {blob: data} = await git.readBlob({fs, gitdir, oid: blob});
  t.is(Buffer.from(data).toString(), 'second\n');
  const loose = path.join(gitdir, 'objects', blob.slice(0, 2), blob.slice(2));
  const asked = calls.findIndex(call => call.method === 'readFile' && call.args[0] === loose);
  t.true(asked >= 0, `it asked for the loose file ${loose}`);
  t.is(calls[asked]?.error?.code, 'ENOENT');
  const packRead = calls.findIndex(call => call.method === 'readFile' && isPackFile(call.args[0]));
  t.true(packRead > asked, 'then it read the pack');
});

test('A3: the packs are found by readdir(objects/pack) with no options', async t => {
  const {gitdir, blob} = await packedRepo(t);
  const {fs, calls} = recording(createGitFs());
  await git.readBlob({fs, gitdir, oid: blob});
  const packDir = path.join(gitdir, 'objects', 'pack');
  const listings = calls.filter(call => call.method === 'readdir' && call.args[0] === packDir);
  t.true(listings.length > 0, 'it listed objects/pack');
  t.true(
    listings.every(call => call.args[1] === undefined),
    'always without options (names, not dirents)',
  );
});

test('A4: isomorphic-git writes only through the methods that drop the listings', async t => {
  const {gitdir, blob} = await packedRepo(t);
  const {fs, calls, asked} = recording(createGitFs());
  // A read first, so that the listings of objects/ and objects/pack are cached.
  await git.readBlob({fs, gitdir, oid: blob});
  const oid = await git.writeBlob({fs, gitdir, blob: Buffer.from('written now\n')});
  const {blob: back} = await git.readBlob({fs, gitdir, oid});
  t.is(Buffer.from(back).toString(), 'written now\n', 'its own loose write is seen at once');
  const tree = await git.writeTree({
    fs,
    gitdir,
    tree: [{mode: '100644', path: 'n', oid, type: 'blob'}],
  });
  const commit = await git.commit({
    fs,
    gitdir,
    tree,
    message: 'm',
    author: {name: 'a', email: 'a@example.com', timestamp: 1_700_000_000, timezoneOffset: 0},
    noUpdateBranch: true,
  });
  await git.writeRef({fs, gitdir, ref: 'refs/heads/contract', value: commit});
  await git.deleteRef({fs, gitdir, ref: 'refs/heads/contract'});
  const known = new Set(Object.keys(createGitFs()));
  // bindFs looks for these optional methods and does without them when they are absent.
  for (const optional of ['cp']) known.add(optional);
  // Names with an underscore are isomorphic-git's own markers (is this already its wrapper?).
  const lacking = [...asked].filter(name => !known.has(name) && !name.startsWith('_'));
  t.deepEqual(lacking, [], 'no method this fs lacks');
  const dropping = new Set(['writeFile', 'mkdir', 'rmdir', 'rm', 'unlink', 'rename', 'symlink']);
  const reading = new Set(['readFile', 'readdir', 'stat', 'lstat', 'readlink']);
  const other = calls.filter(call => !dropping.has(call.method) && !reading.has(call.method));
  t.deepEqual(other, [], 'every change went through a method that drops the listings');
});

test('A5: the gitdir is stat-ed on every command, only to tell a directory from a file', async t => {
  const {gitdir, blob} = await packedRepo(t);
  const {fs, calls, statProps} = recording(createGitFs());
  await git.readBlob({fs, gitdir, oid: blob});
  await git.resolveRef({fs, gitdir, ref: 'HEAD'});
  const ofGitdir = calls.filter(call => call.method === 'stat' && call.args[0] === gitdir);
  t.true(ofGitdir.length >= 2, `stat(gitdir) per command (${ofGitdir.length})`);
  t.true(gitdir.endsWith('.git'), 'the path the stat cache recognises');
  statProps.delete('isDirectory');
  statProps.delete('isFile');
  t.deepEqual([...statProps], [], 'nothing but isDirectory() and isFile() is read from a stat');
});

test('A6: clone stores the received pack with one writeFile, before it reads or indexes it', async t => {
  const {repo} = await packedRepo(t);
  const served = path.join(await tempDir(t), 'served');
  await fsp.mkdir(served);
  await repo.git('clone', '-q', '--bare', repo.dir, path.join(served, 'app.git'));
  const server = await startGitHttpServer({projectRoot: served});
  t.teardown(() => server.close());
  const {fs, calls} = recording(createGitFs());
  const dir = path.join(await tempDir(t), 'clone');
  await git.clone({fs, http, dir, url: server.repoUrl('app.git'), singleBranch: true});
  const writes = calls.filter(call => call.method === 'writeFile' && isPackFile(call.args[0]));
  t.is(writes.length, 1, 'one writeFile of the pack');
  const write = writes[0];
  t.true(write?.args[1] instanceof Uint8Array, 'of its bytes, not a string');
  const at = write ? calls.indexOf(write) : -1;
  const packFile = write?.args[0];
  const touched = calls.findIndex(call => call.method !== 'writeFile' && call.args[0] === packFile);
  t.true(touched === -1 || touched > at, 'nothing read the pack before it was written');
  const idx = calls.findIndex(
    call =>
      call.method === 'writeFile' &&
      call.args[0] === (packFile as string).replace(/\.pack$/, '.idx'),
  );
  t.true(idx > at, 'its index was written after it');
});

test('A7: reading past a shallow boundary is a NotFoundError (lib/git/closure.ts)', async t => {
  const {repo, head} = await packedRepo(t);
  const shallow = path.join(await tempDir(t), 'shallow');
  await repo.git('clone', '-q', '--bare', '--depth', '1', `file://${repo.dir}`, shallow);
  const fs = createGitFs();
  const {commit} = await git.readCommit({fs, gitdir: shallow, oid: head});
  const parent = commit.parent[0] ?? '';
  t.regex(parent, /^[0-9a-f]{40}$/, 'the shallow commit still names its parent');
  await t.throwsAsync(git.readCommit({fs, gitdir: shallow, oid: parent}), {
    instanceOf: Errors.NotFoundError,
  });
});
