import {createHash} from 'node:crypto';
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import ssri from 'ssri';
import * as tar from 'tar';
import {
  checkPinnedHash,
  parsePackageManager,
  pinIntegrity,
  readPackageManager,
} from '../../lib/pins/package-manager.js';
import {innerFile, unpackPackageManager} from '../../lib/install/package-manager.js';
import {ConfigError, IntegrityError} from '../../lib/support/errors.js';

const where = 'package.json';

test('a Corepack pin names the npm package that holds each manager', t => {
  t.like(parsePackageManager('pnpm@9.15.9', where), {
    manager: 'pnpm',
    version: '9.15.9',
    packageName: 'pnpm',
    hash: undefined,
  });
  t.is(parsePackageManager('yarn@1.22.22', where).packageName, 'yarn');
  t.is(parsePackageManager('yarn@4.5.3', where).packageName, '@yarnpkg/cli-dist');
  const hex = 'ab'.repeat(32);
  t.deepEqual(parsePackageManager(`yarn@4.5.3+sha256.${hex}`, where).hash, {
    algorithm: 'sha256',
    hex,
  });
});

test('ranges, other managers, bad hashes and non-strings are refused with the form to write', t => {
  for (const bad of [
    'pnpm@^9',
    'pnpm@latest',
    'npm@10.0.0',
    'bun@1.1.0',
    'pnpm@9.15.9+sha512.abc',
    'pnpm@9.15.9+md5.' + 'a'.repeat(32),
    'pnpm',
    7,
  ]) {
    const error = t.throws(() => parsePackageManager(bad, where), {instanceOf: ConfigError});
    t.regex(error.hint ?? '', /corepack use/, String(bad));
  }
});

test('a sha512 Corepack hash is the tarball integrity for pnpm and Yarn 1, not for Yarn 2+', t => {
  const hex = createHash('sha512').update('x').digest('hex');
  t.is(
    pinIntegrity(parsePackageManager(`pnpm@9.15.9+sha512.${hex}`, where)),
    ssri.fromHex(hex, 'sha512').toString(),
  );
  t.is(pinIntegrity(parsePackageManager(`yarn@4.5.3+sha512.${hex}`, where)), undefined);
  t.is(pinIntegrity(parsePackageManager('pnpm@9.15.9', where)), undefined);
});

async function fakeManagerTarball(dir: string, bin: unknown): Promise<Buffer> {
  const pkg = path.join(dir, 'src', 'package');
  await fsp.mkdir(path.join(pkg, 'bin'), {recursive: true});
  await fsp.writeFile(path.join(pkg, 'package.json'), JSON.stringify({name: 'yarn', bin}));
  await fsp.writeFile(path.join(pkg, 'bin', 'yarn.js'), 'console.log("yarn")\n');
  const file = path.join(dir, 'm.tgz');
  await tar.c({gzip: true, file, cwd: path.join(dir, 'src'), portable: true}, ['package']);
  return fsp.readFile(file);
}

test('the pinned hash may be over the tarball or over its bin/yarn.js, and nothing else', async t => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-pm-'));
  t.teardown(() => fsp.rm(dir, {recursive: true, force: true}));
  const tarball = await fakeManagerTarball(dir, {yarn: 'bin/yarn.js'});
  const yarnJs = await innerFile(tarball, 'package/bin/yarn.js');
  t.is(yarnJs?.toString(), 'console.log("yarn")\n');
  const over = (data: Buffer) => createHash('sha256').update(data).digest('hex');
  for (const hex of [over(tarball), over(yarnJs ?? Buffer.alloc(0))]) {
    t.notThrows(() => {
      checkPinnedHash(parsePackageManager(`yarn@4.5.3+sha256.${hex}`, where), tarball, yarnJs);
    });
  }
  const flipped = Buffer.from(tarball);
  flipped.writeUInt8((flipped.at(-1) ?? 0) ^ 1, flipped.length - 1);
  const pin = parsePackageManager(`yarn@4.5.3+sha256.${over(tarball)}`, where);
  const error = t.throws(
    () => {
      checkPinnedHash(pin, flipped, undefined);
    },
    {
      instanceOf: IntegrityError,
    },
  );
  t.regex(error.message, /does not match the hash package\.json pins/);
});

test('an unpacked manager runs from its own bin entry, which must stay inside the package', async t => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-pm-'));
  t.teardown(() => fsp.rm(dir, {recursive: true, force: true}));
  await fakeManagerTarball(dir, {yarn: 'bin/yarn.js'});
  const verified = {name: 'yarn', version: '1.22.22', integrity: '', file: path.join(dir, 'm.tgz')};
  const run = await unpackPackageManager(verified, 'yarn', path.join(dir, 'out'));
  t.deepEqual(run.args, [path.join(dir, 'out', 'package', 'bin', 'yarn.js')]);
  t.is(run.command, process.execPath);

  await fsp.rm(path.join(dir, 'src'), {recursive: true});
  await fakeManagerTarball(dir, {yarn: '../../escape.js'});
  await t.throwsAsync(unpackPackageManager(verified, 'yarn', path.join(dir, 'out2')), {
    message: /names no "yarn" program inside the package/,
  });
});

test('the app must pin the manager its install kind runs', async t => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-pm-'));
  t.teardown(() => fsp.rm(dir, {recursive: true, force: true}));
  await fsp.writeFile(path.join(dir, 'package.json'), '{"name":"a"}');
  const none = await t.throwsAsync(readPackageManager(dir, '.', 'pnpm'), {instanceOf: ConfigError});
  t.regex(none.message, /does not pin the pnpm release/);
  await fsp.writeFile(path.join(dir, 'package.json'), '{"packageManager":"yarn@1.22.22"}');
  const other = await t.throwsAsync(readPackageManager(dir, '.', 'pnpm'), {
    instanceOf: ConfigError,
  });
  t.regex(other.message, /pins "yarn@1.22.22", but deploy.json asks for a pnpm install/);
  t.is((await readPackageManager(dir, '.', 'yarn')).packageName, 'yarn');
});
