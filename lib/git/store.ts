import {promises as fsp} from 'node:fs';
import path from 'node:path';
import git, {Errors} from 'isomorphic-git';
import {writeFileAtomic} from '../support/fs.js';
import {createGitFs, type GitFs} from './isomorphic-hooks.js';
import {ObjectReader} from './objects.js';
import {ObjectType, TYPE_NAMES} from './pack/format.js';
import {PackIndexCache} from './pack/idx.js';

/** The local ref that always names a commit this store holds: sent to servers as a "have". */
export const HAVE_REF = 'refs/repodeploy/have';

export const FULL_SHA = /^[0-9a-f]{40}$/;

/** What isomorphic-git needs to read a repository: its file system, gitdir and object cache. */
export type GitRepo = {fs: GitFs; gitdir: string; cache: object};

/**
 * A persistent bare repository in the node root that holds everything fetched for one source
 * (the app or the vendor repo). Objects accumulate across deploys so later fetches are incremental.
 */
export class GitStore implements GitRepo {
  /** One cache object shared by every read: per-call caches make reads ~70x slower. */
  readonly cache: object = {};
  /** Its own file system for isomorphic-git, whose listings only this store's writes drop. */
  readonly fs = createGitFs();
  /** The parsed `.idx` of each of its packs, for every {@link ObjectReader} opened on it. */
  readonly packIndexes = new PackIndexCache();

  private constructor(readonly gitdir: string) {}

  /** Open the store at `gitdir`, creating an empty bare repository there if needed. */
  static async open(gitdir: string): Promise<GitStore> {
    const store = new GitStore(gitdir);
    const exists = await fsp
      .stat(`${gitdir}/objects`)
      .then(() => true)
      .catch(() => false);
    if (!exists) {
      await fsp.mkdir(gitdir, {recursive: true});
      await git.init({fs: store.fs, gitdir, bare: true, defaultBranch: 'main'});
    }
    return store;
  }

  /** Point the store's `origin` at `url` (no credentials are ever part of it). */
  async setOrigin(url: string): Promise<void> {
    const current: unknown = await git.getConfig({
      fs: this.fs,
      gitdir: this.gitdir,
      path: 'remote.origin.url',
    });
    if (current === url) return;
    await git.addRemote({fs: this.fs, gitdir: this.gitdir, remote: 'origin', url, force: true});
  }

  /** Whether the store holds `oid` as a commit (whose tree and blobs then came with it). */
  async hasCommit(oid: string): Promise<boolean> {
    const objects = ObjectReader.open(this);
    try {
      return (await objects.read(oid)).type === ObjectType.commit;
    } catch (error) {
      if (error instanceof Errors.NotFoundError) return false;
      throw error;
    } finally {
      objects.close();
    }
  }

  /** Whether the store holds an object with this id, of any type. */
  async hasObject(oid: string): Promise<boolean> {
    try {
      // eslint-disable-next-line @typescript-eslint/no-deprecated -- the one call that reads an object of any type
      await git.readObject({
        fs: this.fs,
        gitdir: this.gitdir,
        oid,
        format: 'deflated',
        cache: this.cache,
      });
      return true;
    } catch (error) {
      if (error instanceof Errors.NotFoundError) return false;
      throw error;
    }
  }

  /** The type of object `oid` ('commit', 'tree', 'blob', 'tag'), or undefined when not held. */
  async objectType(oid: string): Promise<string | undefined> {
    const objects = ObjectReader.open(this);
    try {
      return TYPE_NAMES[(await objects.read(oid)).type];
    } catch (error) {
      if (error instanceof Errors.NotFoundError) return undefined;
      throw error;
    } finally {
      objects.close();
    }
  }

  /** The commit recorded by {@link setHave}, if the store still holds it: a fetch's "have". */
  async have(): Promise<string[]> {
    const oid = await git
      .resolveRef({fs: this.fs, gitdir: this.gitdir, ref: HAVE_REF})
      .catch(() => undefined);
    return oid && (await this.hasCommit(oid)) ? [oid] : [];
  }

  /** Record `oid` as the "have" for the next fetch. */
  async setHave(oid: string): Promise<void> {
    await git.writeRef({fs: this.fs, gitdir: this.gitdir, ref: HAVE_REF, value: oid, force: true});
  }

  /**
   * The commits whose parents this store lacks, from git's `shallow` file: a store filled by
   * shallow fetches holds the trees at the commits deployed, not their history.
   */
  async shallowCommits(): Promise<string[]> {
    const text = await fsp.readFile(path.join(this.gitdir, 'shallow'), 'utf8').catch(() => '');
    return text.split('\n').filter(line => FULL_SHA.test(line));
  }

  /** Add and remove commits of the `shallow` file (removed when it is left empty). */
  async updateShallow(add: readonly string[], remove: readonly string[]): Promise<void> {
    if (add.length === 0 && remove.length === 0) return;
    const gone = new Set(remove);
    const kept = new Set([...(await this.shallowCommits()), ...add].filter(oid => !gone.has(oid)));
    const file = path.join(this.gitdir, 'shallow');
    if (kept.size === 0) await fsp.rm(file, {force: true});
    else
      await writeFileAtomic(
        file,
        [...kept]
          .sort()
          .map(oid => `${oid}\n`)
          .join(''),
        0o644,
      );
  }

  /** Every commit (tags peeled) whose id starts with `prefix`. */
  async commitsWithPrefix(prefix: string): Promise<string[]> {
    return commitsWithPrefix(this, prefix);
  }
}

/** The commit an object id stands for: itself, or the commit an annotated tag points at. */
export async function peelToCommit(repo: GitRepo, oid: string): Promise<string | undefined> {
  const peeled = await peel(repo, oid);
  return peeled?.type === 'commit' ? peeled.oid : undefined;
}

/** The object an id stands for once annotated tags are followed: a commit, tree or blob. */
export async function peel(
  repo: GitRepo,
  oid: string,
): Promise<{oid: string; type: string} | undefined> {
  const {fs, gitdir, cache} = repo;
  let current = oid;
  for (let depth = 0; depth < 10; depth++) {
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- the type is what is asked
    const {type} = await git.readObject({fs, gitdir, oid: current, cache, format: 'content'});
    if (type !== 'tag') return {oid: current, type};
    const tag = await git.readTag({fs, gitdir, oid: current, cache});
    current = tag.tag.object;
  }
  return undefined;
}

/** Commits (tags peeled) whose id starts with `prefix`, in the repository `repo`. */
export async function commitsWithPrefix(repo: GitRepo, prefix: string): Promise<string[]> {
  const {fs, gitdir, cache} = repo;
  let matches: string[];
  try {
    matches = [await git.expandOid({fs, gitdir, oid: prefix, cache})];
  } catch (error) {
    if (error instanceof Errors.AmbiguousError) matches = error.data.matches;
    else if (error instanceof Errors.NotFoundError) matches = [];
    else throw error;
  }
  const commits = new Set<string>();
  for (const oid of matches) {
    const commit = await peelToCommit(repo, oid);
    if (commit) commits.add(commit);
  }
  return [...commits];
}
