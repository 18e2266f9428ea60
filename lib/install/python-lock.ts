import {promises as fsp} from 'node:fs';
import path from 'node:path';
import type {PythonLockInstallSettings} from '../pins/deploy-config.js';
import {parsePoetryLock, POETRY_FIX} from '../pins/poetry-lock.js';
import type {LockRequirement} from '../pins/python-lock.js';
import {requirementsText} from '../pins/python-lock.js';
import {parseUvLock, UV_FIX} from '../pins/uv-lock.js';
import {readRegularFile} from '../pins/vendor-manifest.js';
import {ConfigError} from '../support/errors.js';
import {pythonInstaller} from './pip.js';
import type {InstallContext, Installer} from './types.js';

/**
 * The uv and Poetry installers: the lock read into hashed requirements
 * (lib/pins/uv-lock.ts, lib/pins/poetry-lock.ts), written into the install's scratch directory
 * (never into the release), and installed by pip exactly as a hashed requirements file is
 * (lib/install/pip.ts): same checks of every vendored file, same walls, same reuse.
 */
export function pythonLockInstaller(settings: PythonLockInstallSettings): Installer {
  return pythonInstaller({
    kind: settings.type,
    describe: `pip install from ${settings.lockfile} into ${settings.venv}/`,
    file: settings.lockfile,
    // pyproject.toml is read (and keyed) with a Poetry lock; uv's lock says all it needs.
    also: settings.type === 'poetry' ? [projectFile(settings)] : [],
    python: settings.python,
    venv: settings.venv,
    reuse: settings.reuse,
    settings,
    read: ctx => readLockRequirements(ctx.releaseDir, settings),
    async requirementsFile(ctx: InstallContext, scratchDir: string) {
      const reqs = await readLockRequirements(ctx.releaseDir, settings);
      const file = path.join(scratchDir, 'requirements-from-lock.txt');
      await fsp.writeFile(file, requirementsText(reqs, settings.lockfile, lockFix(settings)));
      return file;
    },
  });
}

/** The requirements a lock in `dir` pins, for the settings' groups; a ConfigError without it. */
export async function readLockRequirements(
  dir: string,
  settings: PythonLockInstallSettings,
): Promise<LockRequirement[]> {
  const text = await readRegularFile(path.join(dir, settings.lockfile), settings.lockfile);
  if (text === undefined) {
    throw new ConfigError(
      `deploy.json asks for a ${settings.type} install, but the app has no ${settings.lockfile}.`,
      `Commit the lock (${settings.type === 'uv' ? '`uv lock`' : '`poetry lock`'}), or set install.lockfile.`,
    );
  }
  const pyproject =
    settings.type === 'poetry'
      ? await readRegularFile(path.join(dir, projectFile(settings)), projectFile(settings))
      : undefined;
  const options = {
    file: settings.lockfile,
    dev: settings.dev,
    indexes: settings.indexes,
    pyproject,
  };
  const reqs = settings.type === 'uv' ? parseUvLock(text, options) : parsePoetryLock(text, options);
  // Derived once here too, so a lock pip could not be given is refused before anything runs.
  requirementsText(reqs, settings.lockfile, lockFix(settings));
  return reqs;
}

/** pyproject.toml beside the lock: a Poetry lock without groups is read with it. */
export function projectFile(settings: PythonLockInstallSettings): string {
  return path.posix.join(path.posix.dirname(settings.lockfile), 'pyproject.toml');
}

function lockFix(settings: PythonLockInstallSettings): string {
  return settings.type === 'uv' ? UV_FIX : POETRY_FIX;
}
