import git, {Errors} from 'isomorphic-git';
import type {GitRepo, GitStore} from './store.js';

/**
 * The objects reachable from commit `tip` in the `source` repository that `store` lacks.
 *
 * The store only ever receives whole closures (a commit arrives with its tree, its blobs and its
 * ancestors), so the walk stops at the first commit or tree the store already holds.
 */
export async function collectMissingObjects(
  source: GitRepo,
  store: GitStore,
  tip: string,
): Promise<string[]> {
  const read = {fs: source.fs, gitdir: source.gitdir, cache: source.cache};
  const missing: string[] = [];
  const seen = new Set<string>();
  const commits = [tip];

  const visitTree = async (oid: string): Promise<void> => {
    if (seen.has(oid)) return;
    seen.add(oid);
    if (await store.hasObject(oid)) return;
    missing.push(oid);
    const {tree} = await git.readTree({...read, oid});
    for (const entry of tree) {
      if (entry.type === 'tree') await visitTree(entry.oid);
      else if (entry.type === 'blob' && !seen.has(entry.oid)) {
        seen.add(entry.oid);
        if (!(await store.hasObject(entry.oid))) missing.push(entry.oid);
      }
      // Gitlinks (type "commit") name commits of another repository: nothing to copy.
    }
  };

  while (commits.length > 0) {
    const oid = commits.pop() as string;
    if (seen.has(oid)) continue;
    seen.add(oid);
    if (await store.hasObject(oid)) continue;
    let commit;
    try {
      ({commit} = await git.readCommit({...read, oid}));
    } catch (error) {
      // A shallow source lacks the parents past its boundary: the closure ends there.
      if (error instanceof Errors.NotFoundError && oid !== tip) continue;
      throw error;
    }
    missing.push(oid);
    commits.push(...commit.parent);
    await visitTree(commit.tree);
  }
  return missing;
}
