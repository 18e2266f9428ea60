import {constants, promises as fsp} from 'node:fs';
import path from 'node:path';

/**
 * The path of a program a test runs for real (nginx, ansible-playbook ...): on PATH, else in the
 * sbin directories a non-root PATH lacks. When it is not there, the error names the program and
 * the Debian package to install, rather than a bare ENOENT from spawn.
 */
export async function requireTool(name: string, debianPackage: string): Promise<string> {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    const file = path.join(dir, name);
    try {
      await fsp.access(file, constants.X_OK);
      return file;
    } catch {
      // Not in this directory.
    }
  }
  throw new Error(
    `${name} is not installed: this test runs it for real. Install the Debian package ` +
      `${debianPackage} (npm test does so itself when run as root with apt-get).`,
  );
}
