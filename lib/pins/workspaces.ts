import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {linkOnPath} from '../support/fs.js';

/**
 * The workspace members (paths under the install directory holding a package.json), sorted; or
 * why they cannot be told: only `dir` and `dir/*` patterns are read.
 */
export async function workspaceMembers(
  dir: string,
  workspaces: unknown,
): Promise<string[] | string> {
  const patterns = Array.isArray(workspaces)
    ? (workspaces as unknown[])
    : ((workspaces as {packages?: unknown[]} | undefined)?.packages ?? []);
  const members: string[] = [];
  for (const pattern of patterns) {
    if (typeof pattern !== 'string' || !/^[\w.@-]+(\/[\w.@-]+)*(\/\*)?$/.test(pattern)) {
      return `the workspaces pattern ${JSON.stringify(pattern)} is not a plain "dir" or "dir/*"`;
    }
    if (pattern.split('/').includes('..'))
      return `the workspaces pattern "${pattern}" leaves the app`;
    const base = pattern.replace(/\/\*$/, '');
    const candidates = pattern.endsWith('/*')
      ? (await fsp.readdir(path.join(dir, base)).catch(() => [])).map(n => `${base}/${n}`)
      : [base];
    for (const candidate of candidates) {
      // A member reached through a link could put its node_modules outside the release.
      const link = await linkOnPath(dir, candidate);
      if (link !== undefined)
        return `the workspace member ${candidate} is reached through the symlink ${link}`;
      const isPackage = await fsp
        .stat(path.join(dir, candidate, 'package.json'))
        .then(st => st.isFile())
        .catch(() => false);
      if (isPackage) members.push(candidate);
    }
  }
  return [...new Set(members)].sort();
}
