import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {ConfigError} from '../support/errors.js';

/** The files at the app's root that say how it installs, and the `install` kind each means. */
export const INSTALL_MARKERS = [
  {file: 'package-lock.json', type: 'npm', family: 'node'},
  {file: 'pnpm-lock.yaml', type: 'pnpm', family: 'node'},
  {file: 'yarn.lock', type: 'yarn', family: 'node'},
  {file: 'uv.lock', type: 'uv', family: 'python'},
  {file: 'poetry.lock', type: 'poetry', family: 'python'},
  {file: 'requirements.txt', type: 'pip', family: 'python'},
] as const;

export const INSTALL_MARKER_FILES: readonly string[] = INSTALL_MARKERS.map(m => m.file);

/** What `install` is when deploy.json does not say: found from the app's root files. */
export type DetectedInstall = {type: string; file: string} | undefined;

/**
 * The install kind the app's root files call for, when deploy.json has no `install`: the one
 * lockfile there is. A uv or Poetry lock wins over a requirements.txt beside it (such files are
 * usually exported from the lock); any other pair is ambiguous and refused, naming the files,
 * rather than guessed.
 */
export function detectInstall(rootFiles: ReadonlySet<string>, where: string): DetectedInstall {
  let found = INSTALL_MARKERS.filter(m => rootFiles.has(m.file));
  if (found.some(m => m.type === 'uv' || m.type === 'poetry')) {
    found = found.filter(m => m.type !== 'pip');
  }
  if (found.length > 1) {
    const names = found.map(m => m.file).join(' and ');
    throw new ConfigError(
      `${where} does not say how to install the app, and its root has ${names}: more than one way to install it.`,
      `Say which in deploy.json: "install": "${found[0]?.type ?? 'npm'}" (or ${found
        .slice(1)
        .map(m => `"${m.type}"`)
        .join(', ')}), or "install": "none" to install nothing. See docs/deploy-json.md.`,
    );
  }
  const one = found[0];
  return one ? {type: one.type, file: one.file} : undefined;
}

/** Which of the marker files are regular files at the root of `dir` (a work tree, a release). */
export async function markerFilesIn(dir: string): Promise<Set<string>> {
  const found = new Set<string>();
  for (const file of INSTALL_MARKER_FILES) {
    const stat = await fsp.lstat(path.join(dir, file)).catch(() => undefined);
    if (stat?.isFile()) found.add(file);
  }
  return found;
}
