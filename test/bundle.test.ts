import {execFile} from 'node:child_process';
import {createHash} from 'node:crypto';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import test from 'ava';
import {extractBundle, verifyBundle} from '../lib/bundle/bundle.js';
import {ExitCode, IntegrityError} from '../lib/support/errors.js';
import {readHistory} from '../lib/node/history.js';
import {gitArchive} from './helpers/repos.js';
import {fingerprint, snapshotTree} from './helpers/tree.js';
import {makeWorld, pinVendor, runDeployBin, type World} from './helpers/world.js';

const exec = promisify(execFile);

async function bundledWorld(t: Parameters<typeof makeWorld>[0]) {
  const world = await makeWorld(t);
  await world.vendor.write({
    'tools/data.txt': 'vendored\n',
    'tools/run.sh': {content: '#!/bin/sh\n', mode: 0o755},
  });
  const {vendorSha, appSha: sha} = await pinVendor(world, {
    sample: true,
    config: {install: {command: ['sh', '-c', 'cp "$VENDOR_DIR/tools/data.txt" installed.txt']}},
    appMessage: 'v1',
    tag: {name: 'v1'},
  });
  const out = path.join(world.dir, 'dist', 'app-v1.tar.gz');
  const made = await runDeployBin(['bundle', '--rev', 'v1', '--repo', world.appUrl, '--out', out]);
  t.is(made.code, 0, made.stderr);
  return {world, sha, vendorSha, out};
}

test('a bundle deploys on a node with no git access, exactly as a git deploy would', async t => {
  const {world, sha, vendorSha, out} = await bundledWorld(t);
  await world.server.close();
  const run = await runDeployBin([
    '--bundle',
    out,
    '--sha256-file',
    `${out}.sha256`,
    '--root',
    world.root,
    '--json',
  ]);
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout) as {
    releaseId: string;
    app: {sha: string};
    vendor: {sha: string};
  };
  t.is(result.app.sha, sha);
  t.is(result.vendor.sha, vendorSha);
  const current = path.join(world.root, 'current');
  const expected = path.join(world.dir, 'expected');
  await gitArchive(world.app.dir, sha, expected);
  t.deepEqual(
    await snapshotTree(current, ['.repodeploy', 'vendor', 'installed.txt']),
    await snapshotTree(expected),
  );
  const expectedVendor = path.join(world.dir, 'expected-vendor');
  await gitArchive(world.vendor.dir, vendorSha, expectedVendor);
  t.deepEqual(await snapshotTree(path.join(current, 'vendor')), await snapshotTree(expectedVendor));
  t.is(
    await fsp.readFile(path.join(current, 'installed.txt'), 'utf8'),
    'vendored\n',
    'the install ran',
  );
  t.like((await readHistory(world.root)).at(-1), {outcome: 'success', appSha: sha, vendorSha});
  await t.throwsAsync(
    fsp.access(path.join(world.root, 'repos')),
    undefined,
    'no git store on a bundle node',
  );
});

test('a tampered bundle is refused with nothing written to releases/, even unpinned', async t => {
  const {world, out} = await bundledWorld(t);
  await runDeployBin(['--bundle', out, '--sha256-file', `${out}.sha256`, '--root', world.root]);
  const before = await fingerprint(path.join(world.root, 'releases'));
  // Unpack, change one byte of one file, pack again with the old checksums.
  const work = path.join(world.dir, 'tamper');
  await fsp.mkdir(work);
  await exec('tar', ['-xzf', out, '-C', work]);
  await fsp.appendFile(path.join(work, 'tree', 'src', 'server.js'), '// injected\n');
  const tampered = path.join(world.dir, 'tampered.tar.gz');
  await exec('tar', [
    '-czf',
    tampered,
    '-C',
    work,
    'repodeploy-bundle.json',
    'checksums.sha256',
    'tree',
  ]);
  const run = await runDeployBin([
    '--bundle',
    tampered,
    '--insecure-unpinned-bundle',
    '--root',
    world.root,
  ]);
  t.is(run.code, ExitCode.integrity);
  t.regex(run.stderr, /tree\/src\/server\.js does not match its sha256/);
  t.deepEqual(await fingerprint(path.join(world.root, 'releases')), before);
});

const hostile: Array<[string, string]> = [
  ['a path leaving the tree', "add('tree/../../escaped', b'x')"],
  ['an absolute path', "add('/tmp/repodeploy-absolute', b'x')"],
  ['a write through a symlink', "link('tree/lib', '/tmp'); add('tree/lib/evil', b'x')"],
  ['a hard link', "hard('tree/passwd', '/etc/passwd')"],
  ['a .git entry', "add('tree/.git/config', b'x')"],
];

for (const [name, steps] of hostile) {
  test(`a bundle with ${name} is refused before anything is unpacked [R18]`, async t => {
    const world = await makeWorld(t);
    const file = path.join(world.dir, 'hostile.tar.gz');
    // Built with Python's tarfile, which writes whatever names it is given.
    const script = `
import io, sys, tarfile
tf = tarfile.open(sys.argv[1], 'w:gz')
def add(name, data):
    info = tarfile.TarInfo(name); info.size = len(data); tf.addfile(info, io.BytesIO(data))
def link(name, target):
    info = tarfile.TarInfo(name); info.type = tarfile.SYMTYPE; info.linkname = target; tf.addfile(info)
def hard(name, target):
    info = tarfile.TarInfo(name); info.type = tarfile.LNKTYPE; info.linkname = target; tf.addfile(info)
add('repodeploy-bundle.json', b'{}')
add('checksums.sha256', b'')
${steps}
tf.close()
`;
    await exec('python3', ['-c', script, file]);
    const run = await runDeployBin([
      '--bundle',
      file,
      '--insecure-unpinned-bundle',
      '--root',
      world.root,
    ]);
    t.is(run.code, ExitCode.integrity, run.stderr);
    t.regex(run.stderr, /Refused bundle/);
    await t.throwsAsync(fsp.access(path.join(world.root, 'releases')));
    await t.throwsAsync(fsp.access('/tmp/repodeploy-absolute'));
    await t.throwsAsync(fsp.access('/tmp/evil'));
  });
}

/** Unpack a bundle, change one file, recompute every inner checksum, and pack it again. */
async function repack(world: World, out: string): Promise<string> {
  const work = path.join(world.dir, 'repack');
  await fsp.mkdir(work);
  await exec('tar', ['-xzf', out, '-C', work]);
  await fsp.appendFile(path.join(work, 'tree', 'src', 'server.js'), '// injected\n');
  const listed = (await fsp.readFile(path.join(work, 'checksums.sha256'), 'utf8'))
    .trim()
    .split('\n')
    .map(line => line.slice(66));
  const lines = [];
  for (const name of listed) {
    const hash = createHash('sha256').update(await fsp.readFile(path.join(work, name)));
    lines.push(`${hash.digest('hex')}  ${name}`);
  }
  await fsp.writeFile(path.join(work, 'checksums.sha256'), `${lines.join('\n')}\n`);
  const repacked = path.join(world.dir, 'repacked', path.basename(out));
  await fsp.mkdir(path.dirname(repacked));
  await exec('tar', [
    '-czf',
    repacked,
    '-C',
    work,
    'repodeploy-bundle.json',
    'checksums.sha256',
    'tree',
  ]);
  return repacked;
}

async function sha256Of(file: string): Promise<string> {
  return createHash('sha256')
    .update(await fsp.readFile(file))
    .digest('hex');
}

test('[R43] a re-packed bundle with recomputed inner checksums is refused against the pin', async t => {
  const {world, out} = await bundledWorld(t);
  const repacked = await repack(world, out);
  // Its own checksums vouch for it: unpinned, it would pass.
  const verified = await verifyBundle(repacked, null);
  t.true(verified.sums.has('tree/src/server.js'));

  for (const pin of [
    ['--sha256-file', `${out}.sha256`],
    ['--sha256', await sha256Of(out)],
  ]) {
    const run = await runDeployBin(['--bundle', repacked, ...pin, '--root', world.root]);
    t.is(run.code, ExitCode.integrity, run.stderr);
    t.regex(
      run.stderr,
      new RegExp(`its sha256 is ${await sha256Of(repacked)}, not ${await sha256Of(out)}`),
    );
    t.deepEqual(await fsp.readdir(world.root), ['history.jsonl'], 'nothing but the record');
  }
});

test('[R43] the right pin deploys: --sha256 with the hex, or the detached file, renamed or not', async t => {
  const {world, sha, out} = await bundledWorld(t);
  const published = await fsp.readFile(`${out}.sha256`, 'utf8');
  t.is(published, `${await sha256Of(out)}  app-v1.tar.gz\n`);
  // The detached file is what `sha256sum -c` reads, beside the bundle.
  await exec('sha256sum', ['-c', 'app-v1.tar.gz.sha256'], {cwd: path.dirname(out)});

  const byHex = await runDeployBin([
    '--bundle',
    out,
    '--sha256',
    (await sha256Of(out)).toUpperCase(),
    '--root',
    world.root,
    '--release-id',
    'by-hex',
  ]);
  t.is(byHex.code, 0, byHex.stderr);
  // A node keeps the copy under another name; the published checksum file still pins it.
  const copy = path.join(world.dir, 'node-copy', 'incoming.tar.gz');
  await fsp.mkdir(path.dirname(copy));
  await fsp.copyFile(out, copy);
  const byFile = await runDeployBin([
    '--bundle',
    copy,
    '--sha256-file',
    `${out}.sha256`,
    '--root',
    world.root,
    '--release-id',
    'by-file',
    // The same sha is live (by-hex): a second release of it is asked for.
    '--force',
    '--json',
  ]);
  t.is(byFile.code, 0, byFile.stderr);
  t.like(JSON.parse(byFile.stdout), {releaseId: 'by-file', app: {sha}});
});

test('[R43] a wrong pin is refused before anything is written', async t => {
  const {world, out} = await bundledWorld(t);
  const wrong = 'ab'.repeat(32);
  const run = await runDeployBin(['--bundle', out, '--sha256', wrong, '--root', world.root]);
  t.is(run.code, ExitCode.integrity, run.stderr);
  t.regex(run.stderr, new RegExp(`not ${wrong} as --sha256 says`));
  t.deepEqual(await fsp.readdir(world.root), ['history.jsonl'], 'no lock, release or current');

  const otherSums = path.join(world.dir, 'other.sha256');
  await fsp.writeFile(otherSums, `${wrong}  app-v1.tar.gz\n${'cd'.repeat(32)}  other.tar.gz\n`);
  const byFile = await runDeployBin([
    '--bundle',
    out,
    '--sha256-file',
    otherSums,
    '--root',
    world.root,
  ]);
  t.is(byFile.code, ExitCode.integrity, byFile.stderr);
  t.regex(byFile.stderr, new RegExp(`not ${wrong} as ${otherSums} says`));
  t.deepEqual(await fsp.readdir(world.root), ['history.jsonl']);
});

test('[R43] a bundle with no pin is refused unless --insecure-unpinned-bundle says so', async t => {
  const {world, out} = await bundledWorld(t);
  const run = await runDeployBin(['--bundle', out, '--root', world.root]);
  t.is(run.code, ExitCode.usage, run.stderr);
  t.regex(run.stderr, /unpinned/);
  t.regex(run.stderr, /--sha256-file app-v1\.tar\.gz\.sha256/);
  await t.throwsAsync(fsp.access(path.join(world.root, 'releases')));

  const both = await runDeployBin([
    '--bundle',
    out,
    '--sha256',
    'ab'.repeat(32),
    '--insecure-unpinned-bundle',
    '--root',
    world.root,
  ]);
  t.is(both.code, ExitCode.usage);
  t.regex(both.stderr, /only one of --sha256, --insecure-unpinned-bundle/);

  const unpinned = await runDeployBin([
    '--bundle',
    out,
    '--insecure-unpinned-bundle',
    '--root',
    world.root,
  ]);
  t.is(unpinned.code, 0, unpinned.stderr);
  t.regex(unpinned.stderr, /not pinned/);
});

test('[R43] entries added to a bundle file after it was verified are not unpacked', async t => {
  const {world, out} = await bundledWorld(t);
  const verified = await verifyBundle(out, {sha256: await sha256Of(out), from: 'test'});
  // The file is swapped between the check and the unpack for one with an extra file.
  const work = path.join(world.dir, 'swap');
  await fsp.mkdir(work);
  await exec('tar', ['-xzf', out, '-C', work]);
  await fsp.writeFile(path.join(work, 'tree', 'extra.sh'), 'echo not checked\n');
  await exec('tar', [
    '-czf',
    out,
    '-C',
    work,
    'repodeploy-bundle.json',
    'checksums.sha256',
    'tree',
  ]);
  const dir = path.join(world.dir, 'release');
  await t.throwsAsync(extractBundle(verified, dir), {
    instanceOf: IntegrityError,
    message: /tree\/extra\.sh was not in it when it was checked/,
  });
  await t.throwsAsync(fsp.access(path.join(dir, 'extra.sh')));
});

test('[R43] a truncated copy is refused as not the pinned bundle', async t => {
  const {world, out} = await bundledWorld(t);
  const pin = {sha256: await sha256Of(out), from: `${out}.sha256`};
  const cut = path.join(world.dir, 'cut.tar.gz');
  await fsp.writeFile(cut, (await fsp.readFile(out)).subarray(0, 600));
  await t.throwsAsync(verifyBundle(cut, pin), {
    instanceOf: IntegrityError,
    message: new RegExp(`its sha256 is ${await sha256Of(cut)}, not ${pin.sha256} as `),
  });
  // Unpinned, the same copy is refused for what it is.
  await t.throwsAsync(verifyBundle(cut, null), {
    instanceOf: IntegrityError,
    message: /Refused bundle/,
  });
});

test('files unpacked from a bundle belong to the deploying user and carry no setuid bit', async t => {
  const {world, out} = await bundledWorld(t);
  const work = path.join(world.dir, 'owned');
  await fsp.mkdir(work);
  await exec('tar', ['-xzf', out, '-C', work]);
  await fsp.chmod(path.join(work, 'tree', 'bin', 'start.sh'), 0o4755);
  const owned = path.join(world.dir, 'owned.tar.gz');
  await exec('tar', [
    '-czf',
    owned,
    '--owner=1000',
    '--group=1000',
    '-C',
    work,
    'repodeploy-bundle.json',
    'checksums.sha256',
    'tree',
  ]);
  const pin = await sha256Of(owned);
  const run = await runDeployBin(['--bundle', owned, '--sha256', pin, '--root', world.root]);
  t.is(run.code, 0, run.stderr);
  const start = await fsp.stat(path.join(world.root, 'current', 'bin', 'start.sh'));
  t.is(start.mode & 0o7777, 0o755);
  t.is(start.uid, process.getuid?.() ?? 0);
  const readme = await fsp.stat(path.join(world.root, 'current', 'README.md'));
  t.is(readme.uid, process.getuid?.() ?? 0);
});
