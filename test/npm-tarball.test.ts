import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import test from 'ava';
import {IntegrityError} from '../lib/support/errors.js';
import {checkNpmTarball, TARBALL_LIMITS} from '../lib/install/tarball-check.js';
import {hostileTarball, type Entry} from './helpers/archives.js';
import {tempDir} from './helpers/tmp.js';
import {packageRoot} from './helpers/world.js';

const exec = promisify(execFile);

const pkg: Entry[] = [
  {name: 'package/package.json', text: '{"name":"evil","version":"1.0.0"}'},
  {name: 'package/index.js', text: 'module.exports = 1;\n'},
];

test('[R18] real npm tarballs pass the check: the vendored examples and a packed directory', async t => {
  const dir = await tempDir(t);
  const vendored = path.join(packageRoot, 'examples/vendor/npm');
  let checked = 0;
  for (const name of await fsp.readdir(vendored, {recursive: true})) {
    if (!name.endsWith('.tgz')) continue;
    await t.notThrowsAsync(checkNpmTarball(path.join(vendored, name), name));
    checked++;
  }
  t.true(checked > 0, 'the examples vendor npm tarballs');
  const file = path.join(dir, 'plain.tgz');
  await hostileTarball(file, [{name: 'package/', type: 'DIRTYPE'}, ...pkg]);
  await t.notThrowsAsync(checkNpmTarball(file, 'plain'));
});

test('[R18] a file listed twice, as published packages have it, passes the check', async t => {
  // agent-base 7.1.4, http-proxy-agent 7.0.2, https-proxy-agent 7.0.6 on the npm registry list
  // each of their dist files under package/./dist/ and again under package/dist/.
  const file = path.join(await tempDir(t), 'twice.tgz');
  await hostileTarball(file, [
    ...pkg,
    {name: 'package/./dist/index.js', text: 'module.exports = 1;\n'},
    {name: 'package/dist/index.js', text: 'module.exports = 1;\n'},
  ]);
  await t.notThrowsAsync(checkNpmTarball(file, 'agent-base@7.1.4'));
});

const deep = `package/${Array.from({length: 10_000}, () => 'd').join('/')}/x.js`;
const hostile: Array<[string, Entry[], RegExp]> = [
  ['a path with ../', [...pkg, {name: 'package/../../x', text: 'x'}], /leaves the package/],
  ['an absolute path', [...pkg, {name: '/etc/cron.d/evil', text: 'x'}], /absolute path/],
  ['a drive path (c:../)', [...pkg, {name: 'c:../evil', text: 'x'}], /absolute path/],
  ['a backslash path', [...pkg, {name: 'package\\..\\..\\x', text: 'x'}], /backslash/],
  [
    'a hard link to /etc/passwd',
    [...pkg, {name: 'package/passwd', type: 'LNKTYPE', link: '/etc/passwd'}],
    /is a Link to "\/etc\/passwd"/,
  ],
  [
    'a symlink, then a file written through it',
    [
      ...pkg,
      {name: 'package/out', type: 'SYMTYPE', link: '/tmp'},
      {name: 'package/out/evil', text: 'x'},
    ],
    /is a SymbolicLink/,
  ],
  ['a character device', [...pkg, {name: 'package/dev', type: 'CHRTYPE'}], /is a CharacterDevice/],
  ['a 10,000-deep path', [...pkg, {name: deep, text: 'x'}], /longer than 4096 bytes/],
  [
    'a declared size past the cap',
    [...pkg, {name: 'package/huge.bin', size: 3 * 1024 ** 3}],
    /declare more than/,
  ],
];

for (const [what, entries, message] of hostile) {
  test(`[R18] an npm tarball with ${what} is refused`, async t => {
    const file = path.join(await tempDir(t), 'evil-1.0.0.tgz');
    await hostileTarball(file, entries);
    const error = await t.throwsAsync(checkNpmTarball(file, 'evil@1.0.0'), {
      instanceOf: IntegrityError,
    });
    t.regex(error.message, /^Refused npm tarball evil@1\.0\.0: /);
    t.regex(error.message, message);
  });
}

test('[R18] a path more than 128 directories deep is refused even when short', async t => {
  const file = path.join(await tempDir(t), 'deep.tgz');
  const name = `package/${Array.from({length: 200}, () => 'a').join('/')}/x`;
  await hostileTarball(file, [...pkg, {name, text: 'x'}]);
  await t.throwsAsync(checkNpmTarball(file, 'deep'), {message: /more than 128 directories deep/});
});

test.serial(
  '[R20] a gzip bomb stops at the unpacked-size cap; a flood of entries at the entry cap',
  async t => {
    const dir = await tempDir(t);
    const bomb = path.join(dir, 'bomb.tgz');
    await hostileTarball(bomb, pkg, 64 * 1024 * 1024);
    t.true((await fsp.stat(bomb)).size < 200 * 1024, 'the file itself is small');
    const saved = {...TARBALL_LIMITS};
    t.teardown(() => Object.assign(TARBALL_LIMITS, saved));
    // The declared size passes a cap above it; the bytes actually inflated do not pass one below.
    TARBALL_LIMITS.maxUnpackedBytes = 8 * 1024 * 1024;
    await t.throwsAsync(checkNpmTarball(bomb, 'bomb'), {
      message: /declare more than 8388608 bytes/,
    });

    const flood = path.join(dir, 'flood.tgz');
    await hostileTarball(
      flood,
      Array.from({length: 300}, (_, i) => ({name: `package/f${i}.js`, text: 'x'})),
    );
    Object.assign(TARBALL_LIMITS, saved, {maxEntries: 100});
    await t.throwsAsync(checkNpmTarball(flood, 'flood'), {message: /more than 100 entries/});
  },
);

test('[R20] zeros inflated after the end of the archive are refused past a small slack', async t => {
  const dir = await tempDir(t);
  const tarball = path.join(dir, 'trailing.tgz');
  // A valid archive followed by 32 MiB of zeros inside the same gzip stream.
  const script = `
import gzip, io, sys, tarfile
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode='w') as tar:
    data = b'{}'; info = tarfile.TarInfo('package/package.json'); info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
with gzip.open(sys.argv[1], 'wb') as out:
    out.write(raw.getvalue())
    for _ in range(32): out.write(bytes(1 << 20))
`;
  await exec('python3', ['-c', script, tarball]);
  const error = await t.throwsAsync(checkNpmTarball(tarball, 'trailing'), {
    instanceOf: IntegrityError,
  });
  t.regex(error.message, /more than 1048576 bytes beyond what its entries account for/);
});
