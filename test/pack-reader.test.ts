import {execFile, spawn} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import test from 'ava';
import {IntegrityError} from '../lib/support/errors.js';
import {BASE_BYTES, indexPackFile} from '../lib/git/pack/indexer.js';
import {parseTree} from '../lib/git/objects.js';
import {PackReader} from '../lib/git/pack/reader.js';
import {FixtureRepo} from './helpers/repos.js';
import {tempDir} from './helpers/tmp.js';

const exec = promisify(execFile);

/** A repository whose blobs are stored as long delta chains (ofs and ref deltas) in one pack. */
async function deltaRepo(dir: string): Promise<{repo: FixtureRepo; blobs: string[]}> {
  const repo = await FixtureRepo.init(dir);
  for (let c = 1; c <= 30; c++) {
    await repo.write({
      'grows.txt': Array.from({length: c}, (_, i) => `line ${i}: ${'x'.repeat(200)}\n`).join(''),
      'empty.txt': '',
      'big.bin': {content: Buffer.concat([Buffer.alloc(70_000), Buffer.alloc(100, c)])},
    });
    await repo.commit(`commit ${c}`);
  }
  await repo.git('repack', '-adf', '--depth=50', '--window=250');
  const all = await repo.git('rev-list', '--objects', '--all');
  const blobs: string[] = [];
  for (const line of all.split('\n')) {
    const oid = line.split(' ')[0] ?? '';
    if (oid && (await repo.git('cat-file', '-t', oid)) === 'blob') blobs.push(oid);
  }
  return {repo, blobs};
}

test('every blob read from a pack (deltas included) is the one git stores', async t => {
  const {repo, blobs} = await deltaRepo(await tempDir(t));
  t.true(blobs.length >= 30);
  const verify = await repo.git('verify-pack', '-v', ...(await packIdx(repo)));
  t.regex(verify, /chain length = \d+: /, 'the pack really holds deltas');
  const reader = PackReader.open(path.join(repo.dir, '.git'));
  t.teardown(() => {
    reader.close();
  });
  for (const oid of blobs) {
    const expected = await gitBlob(repo, oid);
    t.deepEqual(reader.readBlob(oid), expected, oid);
  }
  t.is(reader.readBlob('0'.repeat(40)), undefined, 'an id no pack holds');
});

test('a damaged object in a pack is refused, never returned', async t => {
  const {repo, blobs} = await deltaRepo(await tempDir(t));
  const expected = new Map<string, Buffer>();
  for (const oid of blobs) expected.set(oid, await gitBlob(repo, oid));
  const [idx] = await packIdx(repo);
  const packFile = (idx ?? '').replace(/\.idx$/, '.pack');
  const bytes = await fsp.readFile(packFile);
  const middle = Math.floor(bytes.length / 2);
  bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
  await fsp.writeFile(packFile, bytes);
  const reader = PackReader.open(path.join(repo.dir, '.git'));
  t.teardown(() => {
    reader.close();
  });
  let refused = 0;
  for (const oid of blobs) {
    try {
      // Whatever is returned is exactly what git stored.
      t.deepEqual(reader.readBlob(oid), expected.get(oid), oid);
    } catch (error) {
      t.true(error instanceof IntegrityError, String(error));
      refused++;
    }
  }
  t.true(refused > 0, 'the damage was noticed');
});

async function packIdx(repo: FixtureRepo): Promise<string[]> {
  const dir = path.join(repo.dir, '.git', 'objects', 'pack');
  return (await fsp.readdir(dir)).filter(n => n.endsWith('.idx')).map(n => path.join(dir, n));
}

/** A blob's bytes as git itself reads them. */
async function gitBlob(repo: FixtureRepo, oid: string): Promise<Buffer> {
  const {stdout} = await exec('git', ['-C', repo.dir, 'cat-file', 'blob', oid], {
    encoding: 'buffer',
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** A copy of `pack` in a fresh directory, for the indexer (which may append to it). */
async function packCopy(dir: string, pack: Buffer): Promise<string> {
  const file = path.join(dir, 'incoming.pack');
  await fsp.writeFile(file, pack);
  return file;
}

test('the index built for a received pack is byte for byte the one git index-pack writes', async t => {
  const dir = await tempDir(t);
  const {repo} = await deltaRepo(dir);
  const [idx] = await packIdx(repo);
  const packFile = (idx ?? '').replace(/\.idx$/, '.pack');
  const file = await packCopy(dir, await fsp.readFile(packFile));
  const ours = indexPackFile(file, 'test', () => undefined);
  t.deepEqual(ours.index, await fsp.readFile(idx ?? ''));
  t.deepEqual(await fsp.readFile(file), await fsp.readFile(packFile), 'the pack is left as it is');
});

/** Files that share one base, each then edited a few times: deltas that branch, then chain. */
async function branchingRepo(dir: string): Promise<FixtureRepo> {
  const repo = await FixtureRepo.init(dir);
  const common = Array.from({length: 2000}, (_, i) => `shared line ${i}\n`).join('');
  for (let version = 1; version <= 4; version++) {
    const files: Record<string, string> = {};
    for (let f = 0; f < 6; f++)
      files[`f${f}.txt`] = `${common}file ${f}\n${'edit\n'.repeat(version)}`;
    await repo.write(files);
    await repo.commit(`version ${version}`);
  }
  await repo.git('repack', '-adf', '--depth=50', '--window=250');
  return repo;
}

test('delta bases past the cap are let go and inflated again, to the same index', async t => {
  const dir = await tempDir(t);
  const repo = await branchingRepo(dir);
  const [idx] = await packIdx(repo);
  const file = await packCopy(dir, await fsp.readFile((idx ?? '').replace(/\.idx$/, '.pack')));
  // A cap of one byte: every base below the delta being applied is let go.
  const capped = indexPackFile(file, 'test', () => undefined, 1);
  t.true(capped.reinflated > 0, 'some bases were inflated again');
  t.deepEqual(capped.index, await fsp.readFile(idx ?? ''));
  t.is(indexPackFile(file, 'test', () => undefined).reinflated, 0, 'none under the usual cap');
  t.true(BASE_BYTES >= 64 * 1024 * 1024);
});

test('a thin pack is completed with its bases from the store, as git index-pack --fix-thin does', async t => {
  const dir = await tempDir(t);
  const {repo} = await deltaRepo(dir);
  // What a server sends a node that has commit 29: new objects, deltas against objects it has.
  const revs = `${await repo.git('rev-parse', 'HEAD')}\n^${await repo.git('rev-parse', 'HEAD~1')}\n`;
  const pack = await new Promise<Buffer>((resolve, reject) => {
    const child = spawn('git', ['-C', repo.dir, 'pack-objects', '--thin', '--stdout', '--revs']);
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', () => {
      resolve(Buffer.concat(chunks));
    });
    child.stdin.end(revs);
  });
  const sent = (
    await repo.git('rev-list', '--objects', 'HEAD', `^${await repo.git('rev-parse', 'HEAD~1')}`)
  )
    .split('\n')
    .map(line => line.split(' ')[0] ?? '')
    .filter(Boolean);
  const missing = await packCopy(dir, pack);
  t.throws(() => indexPackFile(missing, 'test', () => undefined), {
    instanceOf: IntegrityError,
    message: /base [0-9a-f]{40} is neither in the pack nor in this store/,
  });
  const reader = PackReader.open(path.join(repo.dir, '.git'));
  t.teardown(() => {
    reader.close();
  });
  const file = await packCopy(dir, pack);
  const {index, objects} = indexPackFile(file, 'test', oid => reader.readObject(oid));
  t.true(objects > sent.length, 'the bases were appended');
  const count = index.readUInt32BE(8 + 255 * 4);
  t.is(count, objects);
  const ids = new Set<string>();
  for (let i = 0; i < count; i++) ids.add(index.toString('hex', 1032 + i * 20, 1052 + i * 20));
  for (const oid of sent) t.true(ids.has(oid), oid);
  // The completed pack stands alone: git indexes it to the same index, with no store to help.
  await fsp.writeFile(file.replace(/\.pack$/, '.idx'), index);
  await exec('git', ['verify-pack', file.replace(/\.pack$/, '.idx')]);
  const alone = path.join(dir, 'alone.idx');
  await exec('git', ['index-pack', '-o', alone, file]);
  t.deepEqual(await fsp.readFile(alone), index);
});

test('trees are parsed as git writes them, and a malformed tree is refused', t => {
  const id = Buffer.alloc(20, 0xab);
  const entry = (mode: string, name: string) =>
    Buffer.concat([Buffer.from(`${mode} ${name}\0`), id]);
  const tree = Buffer.concat([entry('100644', 'a.txt'), entry('40000', 'dir')]);
  t.deepEqual(parseTree(tree, 'x'), [
    {mode: '100644', path: 'a.txt', oid: 'ab'.repeat(20)},
    {mode: '040000', path: 'dir', oid: 'ab'.repeat(20)},
  ]);
  const refused = (data: Buffer, why: RegExp) => {
    const error = t.throws(() => parseTree(data, 'x'), {instanceOf: IntegrityError});
    t.regex(error.message, why);
  };
  refused(tree.subarray(0, tree.length - 1), /cut short/);
  refused(Buffer.from('100644a.txt'), /no space/);
  refused(Buffer.from('100644 a.txt'), /no NUL/);
  refused(entry('10064x', 'a.txt'), /not octal/);
  refused(entry('100644', '../x/y'), /path separator/);
});
