import {promises as fsp} from 'node:fs';
import type {FetchStats, Remote} from '../git/remote.js';
import {GitStore} from '../git/store.js';

/**
 * `deploy --dry-run` reads the node's own stores (repos/app.git, repos/vendor.git) when they
 * already hold the commits it plans, and writes nothing to them: no fetch, no "have" ref, no store
 * created. What they lack is a {@link NotInStore}, and the plan is made again from a scratch
 * fetch (lib/deploy/plan.ts).
 */
export class NotInStore extends Error {
  override name = 'NotInStore';
}

const nothingFetched: FetchStats = {fetched: false, objects: 0, bytes: 0};

/** The store at `gitdir`, only if it exists: opening one would create it. */
export async function existingStore(gitdir: string): Promise<GitStore> {
  const present = await fsp
    .stat(`${gitdir}/objects`)
    .then(() => true)
    .catch(() => false);
  if (!present) throw new NotInStore(`no store at ${gitdir}`);
  return GitStore.open(gitdir);
}

/**
 * `remote` for reading refs only: a commit (and the tag object naming it) is taken from the store
 * or not at all. An abbreviated sha is searched for among every branch and tag of the remote,
 * which needs a fetch: never from the store alone.
 */
export function storeOnlyRemote(remote: Remote): Remote {
  return {
    location: remote.location,
    listRefs: () => remote.listRefs(),
    refObject: refName => remote.refObject(refName),
    async fetchCommit(store, sha, refName) {
      const named = refName ? await remote.refObject(refName) : undefined;
      if ((await store.hasCommit(sha)) && (!named || (await store.hasObject(named))))
        return nothingFetched;
      throw new NotInStore(`${sha} is not in ${store.gitdir}`);
    },
    commitsWithPrefix: (_store, prefix) =>
      Promise.reject(new NotInStore(`an abbreviated sha (${prefix}) needs a fetch`)),
  };
}
