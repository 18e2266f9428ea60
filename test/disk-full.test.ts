import {spawn} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test from 'ava';
import {InstallError} from '../lib/support/errors.js';
import {readLock} from '../lib/node/lock.js';
import {status} from '../lib/node/status.js';
import {waitFor} from './helpers/http.js';
import {smallFileSystem} from './helpers/tmp.js';
import {fingerprint} from './helpers/tree.js';
import {commitRelease, deployBin, makeWorld, runDeploy} from './helpers/world.js';

/** Use up every data block, then every inode, of the file system holding `dir`. */
async function fillUp(dir: string): Promise<() => Promise<void>> {
  const fillDir = path.join(dir, 'filler');
  await fsp.mkdir(fillDir);
  const handle = await fsp.open(path.join(fillDir, 'blocks'), 'w');
  let size = 1024 * 1024;
  const chunk = Buffer.alloc(size, 1);
  while (size >= 1) {
    try {
      await handle.write(chunk, 0, size);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      size = Math.floor(size / 2);
    }
  }
  await handle.close();
  for (let i = 0; ; i++) {
    try {
      await fsp.writeFile(path.join(fillDir, `inode-${i}`), '');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      break;
    }
  }
  return () => fsp.rm(fillDir, {recursive: true, force: true});
}

const phases = [
  {point: 'after-mkdir', what: 'writing the release'},
  {point: 'after-write', what: 'the install'},
  {point: 'after-ready', what: 'the switch of current'},
] as const;

for (const {point, what} of phases) {
  test(`[R33] ENOSPC during ${what}: current and the live release untouched, lock released, the next run recovers`, async t => {
    const mountPoint = await smallFileSystem(t, 'size=24m,nr_inodes=4000');
    if (!mountPoint) return;
    const root = path.join(mountPoint, 'node');
    const world = await makeWorld(t);
    const files = Object.fromEntries(
      Array.from({length: 30}, (_, i) => [`src/f${i}.js`, `export const n = ${i};\n`]),
    );
    const config = {install: {command: ['sh', '-c', 'echo built > built.txt']}};
    await commitRelease(world, 1, config, files);
    const first = await runDeploy({root, rev: 'main', repo: world.appUrl});
    const live = await fingerprint(first.releaseDir);
    await commitRelease(world, 2, config, files);

    const child = spawn(process.execPath, [deployBin, '--rev', 'main', '--root', root], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {...process.env, REPODEPLOY_PAUSE_AT: point},
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.resume();
    const exited = new Promise<number | null>(resolve => child.once('exit', resolve));
    const marker = path.join(root, `.paused-${point}`);
    await waitFor(t, point, () =>
      fsp.access(marker).then(
        () => true,
        () => false,
      ),
    );
    const free = await fillUp(mountPoint);
    // Moved, not removed: removing it would free an inode and a block for the deploy to use.
    await fsp.rename(marker, path.join(mountPoint, 'filler', 'marker'));
    const code = await exited;

    t.not(code, 0);
    t.regex(stderr, /error: no space left on the device \(ENOSPC in \w+ on \//);
    t.regex(stderr, /hint: Free space \(or inodes: df -i\)/);
    t.is(await fsp.readlink(path.join(root, 'current')), `releases/${first.releaseId}`);
    t.deepEqual(await fingerprint(first.releaseDir), live, 'the live release is as it was');
    t.is((await readLock(root)).state, 'free', 'the lock is released');
    const leftovers = (await fsp.readdir(root)).filter(n => n.startsWith('.current.'));
    t.deepEqual(leftovers, [], 'no temporary link left beside current');

    await free();
    await commitRelease(world, 3, config, files);
    const third = await runDeploy({root, rev: 'main'});
    const s = await status({root});
    t.is(s.current?.id, third.releaseId);
    t.is(await fsp.readFile(path.join(root, 'current/version.txt'), 'utf8'), '3\n');
    t.is(await fsp.readFile(path.join(root, 'current/built.txt'), 'utf8'), 'built\n');
    const stopped = s.releases.filter(r => r.id !== first.releaseId && r.id !== third.releaseId);
    t.is(stopped.length, 1);
    t.is(stopped[0]?.state, 'failed', 'the release the full disk stopped is marked failed');
    t.deepEqual(await fsp.readdir(path.join(root, 'releases', stopped[0]?.id ?? '')), [
      '.repodeploy',
    ]);
  });
}

test('[R33] the installer itself runs out of space: the install fails, naming the log, and current stays', async t => {
  const mountPoint = await smallFileSystem(t, 'size=24m,nr_inodes=4000');
  if (!mountPoint) return;
  const root = path.join(mountPoint, 'node');
  const world = await makeWorld(t);
  await commitRelease(world, 1, {install: {command: ['true']}});
  const first = await runDeploy({root, rev: 'main', repo: world.appUrl});
  // More than the 24 MiB file system holds.
  await commitRelease(world, 2, {
    install: {command: ['sh', '-c', 'head -c 64000000 /dev/zero > big.bin']},
  });
  const error = await t.throwsAsync(runDeploy({root, rev: 'main'}), {instanceOf: InstallError});
  t.regex(error.message, /No space left on device/);
  t.regex(error.hint ?? '', /install\.log/);
  const failed = (await status({root})).releases.find(r => r.id !== first.releaseId);
  t.is(failed?.state, 'failed');
  const log = await fsp.readFile(
    path.join(root, 'releases', failed?.id ?? '', '.repodeploy/install.log'),
    'utf8',
  );
  t.regex(log, /No space left on device/);
  t.is(await fsp.readlink(path.join(root, 'current')), `releases/${first.releaseId}`);
  t.is((await readLock(root)).state, 'free');
  t.deepEqual(
    await fsp.readdir(path.join(root, 'releases', failed?.id ?? '')),
    ['.repodeploy'],
    'the failed tree is removed at once, only its metadata and log kept',
  );
  // So the next deploy has the space back without anyone pruning by hand.
  await commitRelease(world, 3, {install: {command: ['true']}});
  const third = await runDeploy({root, rev: 'main'});
  t.is(await fsp.readlink(path.join(root, 'current')), `releases/${third.releaseId}`);
});
