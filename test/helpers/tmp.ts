import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {promisify} from 'node:util';
import type {ExecutionContext} from 'ava';

const exec = promisify(execFile);

/** A fresh temporary directory, removed when the test ends. */
export async function tempDir(t: ExecutionContext, prefix = 'repodeploy-test-'): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  t.teardown(() => fsp.rm(dir, {recursive: true, force: true}));
  return dir;
}

/**
 * A small tmpfs (`options`: tmpfs mount options such as `size=3m,nr_inodes=4000`), unmounted when
 * the test ends. Where the machine does not allow the mount the test fails, saying why: never
 * skipped silently.
 */
export async function smallFileSystem(
  t: ExecutionContext,
  options: string,
): Promise<string | undefined> {
  const mountPoint = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-tmpfs-'));
  t.teardown(async () => {
    await exec('umount', [mountPoint]).catch(() => undefined);
    await fsp.rm(mountPoint, {recursive: true, force: true});
  });
  try {
    await exec('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', mountPoint]);
  } catch (error) {
    t.fail(`cannot mount a small tmpfs for the disk-full cases here: ${(error as Error).message}`);
    return undefined;
  }
  return mountPoint;
}
