import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import {DEFAULT_PATH} from '../node/run-logged.js';

/**
 * The environment an installer runs in: built from nothing, not inherited. Only PATH and locale
 * come from the node; HOME is an empty directory of our own, so no `~/.npmrc`, `pip.conf` or
 * credentials of the node's user reach the installer, and no token from our own environment does.
 */
export function hermeticEnv(
  base: NodeJS.ProcessEnv,
  home: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = {
    PATH: base.PATH ?? DEFAULT_PATH,
    HOME: home,
    TMPDIR: path.join(home, 'tmp'),
  };
  for (const key of ['LANG', 'LC_ALL', 'LC_CTYPE', 'TZ']) {
    const value = base[key];
    if (value !== undefined) env[key] = value;
  }
  // protection R27-clean-env: installers get a clean environment, not the node's
  return {...env, ...extra};
}

/**
 * A scratch directory with an empty HOME and TMPDIR for one installer run, under `base` (a
 * deploy passes `<root>/.scratch`, which its next run empties: a run killed mid-install leaves
 * nothing behind for good).
 */
export async function makeScratch(
  prefix: string,
  base: string = os.tmpdir(),
): Promise<{dir: string; home: string; cleanup: () => Promise<void>}> {
  // Not recursive: on a full disk a recursive mkdir reports ENOENT instead of ENOSPC.
  await fsp.mkdir(base, {mode: 0o700}).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  });
  const dir = await fsp.mkdtemp(path.join(base, prefix));
  const home = path.join(dir, 'home');
  await fse.ensureDir(path.join(home, 'tmp'));
  return {dir, home, cleanup: () => fse.remove(dir)};
}
