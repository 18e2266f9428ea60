import {createHash} from 'node:crypto';
import {promises as fsp} from 'node:fs';
import path from 'node:path';

export type TreeEntry =
  | {type: 'file'; executable: boolean; sha256: string}
  | {type: 'symlink'; target: string}
  | {type: 'dir'};

/**
 * Every path under `dir` with its type, content hash, executable bit or link target,
 * for comparing a release with `git archive` file for file. `skip` names top-level entries to leave out.
 */
export async function snapshotTree(
  dir: string,
  skip: string[] = [],
): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  const walk = async (rel: string): Promise<void> => {
    const entries = await fsp.readdir(path.join(dir, rel), {withFileTypes: true});
    for (const entry of entries) {
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      if (!rel && skip.includes(entry.name)) continue;
      const full = path.join(dir, childRel);
      const stat = await fsp.lstat(full);
      if (stat.isSymbolicLink())
        out[childRel] = {type: 'symlink', target: await fsp.readlink(full)};
      else if (stat.isDirectory()) {
        out[childRel] = {type: 'dir'};
        await walk(childRel);
      } else {
        const content = await fsp.readFile(full);
        out[childRel] = {
          type: 'file',
          executable: (stat.mode & 0o111) !== 0,
          sha256: createHash('sha256').update(content).digest('hex'),
        };
      }
    }
  };
  await walk('');
  return out;
}

/** Every file under `dir` with its bytes and mode, for proving a failed run changed nothing. */
export async function fingerprint(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    let entries;
    try {
      entries = await fsp.readdir(path.join(dir, rel), {withFileTypes: true});
    } catch {
      return;
    }
    for (const entry of entries) {
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      const full = path.join(dir, childRel);
      const stat = await fsp.lstat(full);
      if (stat.isSymbolicLink()) out[childRel] = `link:${await fsp.readlink(full)}`;
      else if (stat.isDirectory()) {
        out[childRel] = `dir:${(stat.mode & 0o7777).toString(8)}`;
        await walk(childRel);
      } else {
        const hash = createHash('sha256')
          .update(await fsp.readFile(full))
          .digest('hex');
        out[childRel] = `file:${(stat.mode & 0o7777).toString(8)}:${hash}`;
      }
    }
  };
  await walk('');
  return out;
}
