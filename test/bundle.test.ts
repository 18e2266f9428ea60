import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import test from 'ava';
import {ExitCode} from '../lib/errors.js';
import {readHistory} from '../lib/history.js';
import {gitArchive} from './helpers/repos.js';
import {fingerprint, snapshotTree} from './helpers/tree.js';
import {makeWorld, runDeployBin, writeSampleApp} from './helpers/world.js';

const exec = promisify(execFile);

async function bundledWorld(t: Parameters<typeof makeWorld>[0]) {
  const world = await makeWorld(t);
  await world.vendor.write({
    'tools/data.txt': 'vendored\n',
    'tools/run.sh': {content: '#!/bin/sh\n', mode: 0o755},
  });
  const vendorSha = await world.vendor.commit('vendor');
  await writeSampleApp(world.app, {
    'deploy.json': JSON.stringify({
      vendor: {url: '../vendor.git', rev: vendorSha},
      install: {command: ['sh', '-c', 'cp "$VENDOR_DIR/tools/data.txt" installed.txt']},
    }),
  });
  const sha = await world.app.commit('v1');
  await world.app.tag('v1');
  await world.publish();
  const out = path.join(world.dir, 'dist', 'app-v1.tar.gz');
  const made = await runDeployBin(['bundle', '--rev', 'v1', '--repo', world.appUrl, '--out', out]);
  t.is(made.code, 0, made.stderr);
  return {world, sha, vendorSha, out};
}

test('a bundle deploys on a node with no git access, exactly as a git deploy would', async t => {
  const {world, sha, vendorSha, out} = await bundledWorld(t);
  await world.server.close();
  const run = await runDeployBin(['--bundle', out, '--root', world.root, '--json']);
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

test('a tampered bundle is refused with nothing written to releases/', async t => {
  const {world, out} = await bundledWorld(t);
  await runDeployBin(['--bundle', out, '--root', world.root]);
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
  const run = await runDeployBin(['--bundle', tampered, '--root', world.root]);
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
    const run = await runDeployBin(['--bundle', file, '--root', world.root]);
    t.is(run.code, ExitCode.integrity, run.stderr);
    t.regex(run.stderr, /Refused bundle/);
    await t.throwsAsync(fsp.access(path.join(world.root, 'releases')));
    await t.throwsAsync(fsp.access('/tmp/repodeploy-absolute'));
    await t.throwsAsync(fsp.access('/tmp/evil'));
  });
}
