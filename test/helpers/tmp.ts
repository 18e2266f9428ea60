import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type {ExecutionContext} from 'ava';

/** A fresh temporary directory, removed when the test ends. */
export async function tempDir(t: ExecutionContext, prefix = 'repodeploy-test-'): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  t.teardown(() => fsp.rm(dir, {recursive: true, force: true}));
  return dir;
}
