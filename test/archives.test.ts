import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import test from 'ava';
import {BUNDLE_LIMITS, verifyBundle} from '../lib/bundle/bundle.js';
import {IntegrityError} from '../lib/support/errors.js';
import {checkWheel, WHEEL_LIMITS} from '../lib/install/wheel-check.js';
import {tempDir} from './helpers/tmp.js';
import {packageRoot} from './helpers/world.js';

const exec = promisify(execFile);

/** Write a zip with Python's zipfile, which stores whatever names it is given. */
async function zip(
  file: string,
  entries: Record<string, string>,
  sizes: Record<string, number> = {},
): Promise<void> {
  const script = `
import json, sys, zipfile
entries = json.loads(sys.argv[2]); sizes = json.loads(sys.argv[3])
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:
    for name, text in entries.items():
        z.writestr(name, text)
    for name, size in sizes.items():
        z.writestr(name, b'\\0' * size)
`;
  await exec('python3', ['-c', script, file, JSON.stringify(entries), JSON.stringify(sizes)]);
}

const good = {
  'pkg/__init__.py': 'x = 1\n',
  'pkg-1.0.dist-info/RECORD': 'pkg/__init__.py,sha256=abc,6\npkg-1.0.dist-info/RECORD,,\n',
};

test('[R19] the wheels the examples build pass the check', async t => {
  const dir = await tempDir(t);
  await exec('python3', [
    path.join(packageRoot, 'examples/python-app/build_vendor.py'),
    dir,
    path.join(dir, 'req.txt'),
  ]);
  for (const name of await fsp.readdir(path.join(dir, 'pypi'))) {
    await t.notThrowsAsync(checkWheel(path.join(dir, 'pypi', name), name));
  }
  const plain = path.join(dir, 'plain.whl');
  await zip(plain, good);
  await t.notThrowsAsync(checkWheel(plain, 'plain.whl'));
});

const hostile: Array<[string, Record<string, string>]> = [
  [
    'an entry in a sibling directory (../site-packages-x/)',
    {...good, '../site-packages-evil/evil.py': 'x'},
  ],
  ['an absolute entry', {...good, '/etc/cron.d/evil': 'x'}],
  [
    'a RECORD path that leaves the install',
    {'pkg/__init__.py': 'x', 'pkg-1.0.dist-info/RECORD': '../../../bin/evil,sha256=abc,1\n'},
  ],
  [
    'a quoted RECORD path that leaves the install',
    {'pkg/__init__.py': 'x', 'pkg-1.0.dist-info/RECORD': '"../x,y",sha256=abc,1\n'},
  ],
  ['a backslash path', {...good, 'pkg\\..\\..\\evil.py': 'x'}],
];

for (const [name, entries] of hostile) {
  test(`[R19] a wheel with ${name} is refused`, async t => {
    const file = path.join(await tempDir(t), 'evil-1.0-py3-none-any.whl');
    await zip(file, entries);
    await t.throwsAsync(checkWheel(file, 'evil'), {
      instanceOf: IntegrityError,
      message: /Refused wheel evil/,
    });
  });
}

test('[R20] a wheel that unpacks past the size cap (a zip bomb) is refused from its declared sizes', async t => {
  const file = path.join(await tempDir(t), 'bomb-1.0-py3-none-any.whl');
  await zip(file, good, {'pkg/zeros.bin': 8 * 1024 * 1024});
  t.true((await fsp.stat(file)).size < 100 * 1024, 'the file itself is small');
  const saved = WHEEL_LIMITS.maxUncompressedBytes;
  WHEEL_LIMITS.maxUncompressedBytes = 1024 * 1024;
  t.teardown(() => (WHEEL_LIMITS.maxUncompressedBytes = saved));
  await t.throwsAsync(checkWheel(file, 'bomb'), {
    instanceOf: IntegrityError,
    message: /more than 1048576 bytes unpacked/,
  });
});

test('[R20] a bundle past the entry or size caps is refused before anything is unpacked', async t => {
  const dir = await tempDir(t);
  const stage = path.join(dir, 'stage');
  await fsp.mkdir(path.join(stage, 'tree'), {recursive: true});
  for (let i = 0; i < 30; i++) await fsp.writeFile(path.join(stage, 'tree', `f${i}`), 'x');
  await fsp.writeFile(path.join(stage, 'tree', 'zeros'), Buffer.alloc(4 * 1024 * 1024));
  await fsp.writeFile(path.join(stage, 'repodeploy-bundle.json'), '{}');
  await fsp.writeFile(path.join(stage, 'checksums.sha256'), '');
  const file = path.join(dir, 'big.tar.gz');
  await exec('tar', [
    '-czf',
    file,
    '-C',
    stage,
    'repodeploy-bundle.json',
    'checksums.sha256',
    'tree',
  ]);
  const saved = {...BUNDLE_LIMITS};
  t.teardown(() => Object.assign(BUNDLE_LIMITS, saved));
  BUNDLE_LIMITS.maxEntries = 10;
  await t.throwsAsync(verifyBundle(file), {
    instanceOf: IntegrityError,
    message: /more than 10 entries/,
  });
  Object.assign(BUNDLE_LIMITS, saved, {maxBytes: 1024 * 1024});
  await t.throwsAsync(verifyBundle(file), {
    instanceOf: IntegrityError,
    message: /more than 1048576 bytes/,
  });
});
