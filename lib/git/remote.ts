import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import git, {Errors, type GitAuth, type HttpClient} from 'isomorphic-git';
import {DeployError, errnoCode, RevError, ServerRefusal, SourceError} from '../support/errors.js';
import {redact} from '../support/redact.js';
import type {RepoLocation} from './location.js';
import {mayCarryCredentials, plainHttpHint, type Credentials} from './credentials.js';
import {createGitFs} from './isomorphic-hooks.js';
import {collectMissingObjects} from './closure.js';
import {commitsWithPrefix, GitStore, peel, type GitRepo} from './store.js';
import {indexPackFile} from './pack/indexer.js';
import {FULL_DEPTH, fetchPack, type UploadPackRequest} from './upload-pack.js';

/** Branches and tags of a repository: full ref name → the commit it names (tags peeled). */
export type RefMap = Map<string, string>;

/** What one fetch brought in. */
export type FetchStats = {
  /** Whether anything was requested at all (false when the store already had the commit). */
  fetched: boolean;
  /** Objects received in new packs. */
  objects: number;
  /** Bytes of new packs written to the store. */
  bytes: number;
};

export type {Credentials} from './credentials.js';

/** Told how far a fetch is, as the pack arrives (`2,173 objects, 3.1 MiB received`). */
export type FetchProgress = (status: string) => void;

/** A repository that commits can be fetched from into a {@link GitStore}. */
export interface Remote {
  readonly location: RepoLocation;
  listRefs(): Promise<RefMap>;
  /**
   * Make `sha` and everything it reaches present in `store`. `refName` is what names it, if known:
   * the object that ref points at (an annotated tag) is fetched too, so its signature can be read.
   */
  fetchCommit(
    store: GitStore,
    sha: string,
    refName?: string,
    progress?: FetchProgress,
  ): Promise<FetchStats>;
  /** The object `refName` points at before peeling (an annotated tag's own id), if listed. */
  refObject(refName: string): Promise<string | undefined>;
  /** Commits whose id starts with `prefix`, fetching what is needed to know. */
  commitsWithPrefix(
    store: GitStore,
    prefix: string,
    progress?: FetchProgress,
  ): Promise<{commits: string[]; fetch: FetchStats}>;
}

/**
 * Open the repository at `location`. `credentials` are offered when the server asks for them,
 * never over plain http except to loopback; `withheld` says why none are offered, if some exist.
 */
export function openRemote(
  location: RepoLocation,
  options: {http: HttpClient; credentials?: Credentials | undefined; withheld?: string | undefined},
): Remote {
  if (location.kind !== 'http') return new LocalRemote(location);
  let {credentials, withheld} = options;
  if (credentials && !mayCarryCredentials(location.url)) {
    credentials = undefined;
    withheld = plainHttpHint(new URL(location.url).origin);
  }
  return new HttpRemote(location, options.http, credentials, withheld);
}

const noStats: FetchStats = {fetched: false, objects: 0, bytes: 0};

/** What a server advertises: its refs (peeled, and as advertised) and its capabilities. */
type Advertisement = {refs: RefMap; advertised: RefMap; capabilities: Set<string>};

/**
 * A repository served over git smart HTTP (protocol v1): refs listed with isomorphic-git, objects
 * fetched by lib/git/upload-pack.ts, which needs no HEAD on the server and keeps its error words.
 */
class HttpRemote implements Remote {
  private allFetched = false;
  private advertisement: Promise<Advertisement> | undefined;
  /** The Authorization header, once the server has asked for credentials and been given them. */
  private authorization: string | undefined;

  constructor(
    readonly location: RepoLocation & {kind: 'http'},
    private readonly http: HttpClient,
    private readonly credentials: Credentials | undefined,
    private readonly withheld: string | undefined,
  ) {}

  private get authCallbacks() {
    const credentials = this.credentials;
    return {
      onAuth: (): GitAuth => {
        if (!credentials) return {cancel: true};
        this.authorization = basicAuth(credentials);
        return {...credentials};
      },
      // A second 401 means the credentials are wrong: stop instead of asking again.
      // protection R29-second-401: a second 401 gives up
      onAuthFailure: (): GitAuth => ({cancel: true}),
    };
  }

  async listRefs(): Promise<RefMap> {
    return (await this.advertise()).refs;
  }

  private advertise(): Promise<Advertisement> {
    this.advertisement ??= this.readAdvertisement();
    return this.advertisement;
  }

  private async readAdvertisement(): Promise<Advertisement> {
    const info = await this.call('list the branches and tags of', () =>
      git.getRemoteInfo2({
        http: this.http,
        url: this.location.url,
        protocolVersion: 1,
        ...this.authCallbacks,
      }),
    );
    const refs: RefMap = new Map();
    const advertised: RefMap = new Map();
    for (const ref of info.refs ?? []) {
      if (ref.ref.endsWith('^{}')) continue;
      refs.set(ref.ref, ref.peeled ?? ref.oid);
      advertised.set(ref.ref, ref.oid);
    }
    const capabilities = new Set(
      Object.entries(info.capabilities).map(([key, value]) =>
        value === true ? key : `${key}=${value}`,
      ),
    );
    return {refs, advertised, capabilities};
  }

  async refObject(refName: string): Promise<string | undefined> {
    return (await this.advertise()).advertised.get(refName);
  }

  async fetchCommit(
    store: GitStore,
    sha: string,
    refName?: string,
    progress?: FetchProgress,
  ): Promise<FetchStats> {
    const named = refName ? await this.refObject(refName) : undefined;
    // The tag object too: a store that has the commit from an earlier deploy may lack the tag.
    if ((await store.hasCommit(sha)) && (!named || (await store.hasObject(named)))) return noStats;
    const want = named ?? sha;
    let stats = noStats;
    let refusal: ServerRefusal | undefined;
    try {
      stats = await this.fetch(store, [want], 'tip', progress);
    } catch (error) {
      if (!(error instanceof ServerRefusal)) throw error;
      refusal = error;
    }
    await refuseNonCommit(store, sha, refName);
    if (await store.hasCommit(sha)) return stats;
    // A server may refuse a want that no ref names: try the route every server allows (all
    // branches and tags) before giving up.
    const more = await this.fetchAll(store, progress);
    if (await store.hasCommit(sha)) return addStats(stats, more);
    await refuseNonCommit(store, sha, refName);
    throw new SourceError(
      `Commit ${sha} is not in ${this.location.url}${refusal ? `; the server said: ${redact(refusal.serverWords)}` : ''}.`,
      'Push the commit to that repository (a branch or tag must reach it), or fix the rev.',
      refusal ? {cause: refusal} : undefined,
    );
  }

  async commitsWithPrefix(store: GitStore, prefix: string, progress?: FetchProgress) {
    const fetch = await this.fetchAll(store, progress);
    return {commits: await store.commitsWithPrefix(prefix), fetch};
  }

  /** Every branch and tag with all their history: the route for a commit no ref names. */
  private async fetchAll(store: GitStore, progress?: FetchProgress): Promise<FetchStats> {
    if (this.allFetched) return noStats;
    const {advertised} = await this.advertise();
    const wants = [...advertised]
      .filter(([ref]) => ref.startsWith('refs/heads/') || ref.startsWith('refs/tags/'))
      .map(([, oid]) => oid);
    const stats = await this.fetch(store, wants, 'history', progress);
    this.allFetched = true;
    return stats;
  }

  /**
   * Fetch the objects `oids` name that the store lacks, in one pack: with `tip`, only what the
   * trees at those commits hold (a shallow fetch, where the server offers it); with `history`,
   * everything they reach.
   */
  private async fetch(
    store: GitStore,
    oids: readonly string[],
    reach: 'tip' | 'history',
    progress?: FetchProgress,
  ): Promise<FetchStats> {
    const held = new Set<string>();
    for (const oid of new Set(oids)) if (await store.hasObject(oid)) held.add(oid);
    const shallow = await store.shallowCommits();
    // A shallow store lacks the history even of the commits it holds: ask for those too.
    const unshallow = reach === 'history' && shallow.length > 0;
    const wants = [...new Set(oids)].filter(oid => unshallow || !held.has(oid));
    if (wants.length === 0) return {fetched: true, objects: 0, bytes: 0};
    await store.setOrigin(this.location.url);
    // What the store holds is sent as "have", so only new objects come back.
    const haves = [...held, ...(await store.have())];
    const {capabilities} = await this.advertise();
    const depth = reach === 'tip' ? 1 : unshallow ? FULL_DEPTH : undefined;
    const stored = await this.call('fetch from', async () => {
      const request: UploadPackRequest = {
        ...{http: this.http, url: this.location.url, capabilities, wants, haves},
        ...{depth, shallow, authorization: this.authorization},
      };
      const fetched = await fetchPack(store, request, progress).catch(async (error: unknown) => {
        // A server may ask for credentials only for the fetch itself.
        if (!this.credentials || this.authorization || !isUnauthorized(error)) throw error;
        this.authorization = basicAuth(this.credentials);
        return fetchPack(store, {...request, authorization: this.authorization}, progress);
      });
      return fetched.stored;
    });
    // What came over the wire: a thin pack's bases, added back from the store, are not counted.
    return {fetched: true, objects: stored?.received ?? 0, bytes: stored?.bytes ?? 0};
  }

  private async call<T>(action: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw translateHttpError(
        error,
        action,
        this.location.url,
        this.credentials !== undefined,
        this.withheld,
      );
    }
  }
}

function basicAuth(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

function isUnauthorized(error: unknown): boolean {
  return error instanceof Errors.HttpError && error.data.statusCode === 401;
}

/**
 * Refuse a rev whose object is in the store but is not a commit (a tag naming a tree or a blob):
 * no amount of fetching makes it one.
 */
async function refuseNonCommit(store: GitStore, sha: string, refName?: string): Promise<void> {
  const type = await store.objectType(sha);
  if (type !== undefined && type !== 'commit') throw nonCommitError(type, sha, refName);
}

function nonCommitError(type: string, sha: string, refName: string | undefined): RevError {
  const name = refName?.replace(/^refs\/(tags|heads)\//, '');
  const what = refName?.startsWith('refs/tags/')
    ? `Tag ${name}`
    : refName?.startsWith('refs/heads/')
      ? `Branch ${name}`
      : refName;
  return new RevError(
    what ? `${what} names a ${type} (${sha}), not a commit.` : `${sha} is a ${type}, not a commit.`,
    'Give a rev that names a commit (a branch, a tag on a commit, or a commit id).',
  );
}

/** A repository on this node's disk (work tree or bare), read directly: no git binary needed. */
class LocalRemote implements Remote {
  private readonly cache = {};
  private readonly fs = createGitFs();
  private gitdirPromise: Promise<string> | undefined;

  constructor(readonly location: RepoLocation & {kind: 'path'}) {}

  private gitdir(): Promise<string> {
    this.gitdirPromise ??= findGitdir(this.location.path);
    return this.gitdirPromise;
  }

  private async repo(): Promise<GitRepo> {
    return {fs: this.fs, gitdir: await this.gitdir(), cache: this.cache};
  }

  async listRefs(): Promise<RefMap> {
    const repo = await this.repo();
    const {fs, gitdir} = repo;
    const map: RefMap = new Map();
    for (const prefix of ['refs/heads', 'refs/tags']) {
      for (const name of await git.listRefs({fs, gitdir, filepath: prefix})) {
        const ref = `${prefix}/${name}`;
        const oid = await git.resolveRef({fs, gitdir, ref});
        // A tag on a tree or a blob stays listed: resolving it then says what it names.
        const target = await peel(repo, oid).catch(() => undefined);
        if (target) map.set(ref, target.oid);
      }
    }
    try {
      map.set('HEAD', await git.resolveRef({fs, gitdir, ref: 'HEAD'}));
    } catch {
      // An empty repository has no HEAD commit.
    }
    return map;
  }

  async refObject(refName: string): Promise<string | undefined> {
    const {fs, gitdir} = await this.repo();
    return git.resolveRef({fs, gitdir, ref: refName}).catch(() => undefined);
  }

  async fetchCommit(store: GitStore, sha: string, refName?: string): Promise<FetchStats> {
    const tags = refName ? await this.missingTags(store, refName, sha) : [];
    if ((await store.hasCommit(sha)) && tags.length === 0) return noStats;
    const source = await this.repo();
    const {fs, gitdir, cache} = source;
    try {
      await git.readCommit({fs, gitdir, oid: sha, cache});
    } catch (error) {
      if (error instanceof Errors.ObjectTypeError) {
        // eslint-disable-next-line @typescript-eslint/no-deprecated -- the type is what is asked
        const {type} = await git.readObject({fs, gitdir, oid: sha, cache});
        throw nonCommitError(type, sha, refName);
      }
      if (error instanceof Errors.NotFoundError) {
        throw new SourceError(
          `Commit ${sha} is not in ${this.location.path}.`,
          'Commit it there, or fix the rev.',
        );
      }
      throw error;
    }
    const oids = [...tags, ...(await collectMissingObjects(source, store, sha))];
    if (oids.length === 0) return {fetched: true, objects: 0, bytes: 0};
    return {fetched: true, ...(await copyObjects(source, store, oids))};
  }

  /** The annotated tag objects between `refName` and the commit `sha` that `store` lacks. */
  private async missingTags(store: GitStore, refName: string, sha: string): Promise<string[]> {
    const repo = await this.repo();
    const missing: string[] = [];
    let oid = await this.refObject(refName);
    for (let depth = 0; oid && oid !== sha && depth < 10; depth++) {
      // eslint-disable-next-line @typescript-eslint/no-deprecated -- the type is what is asked
      const {type} = await git.readObject({...repo, oid, format: 'content'});
      if (type !== 'tag') break;
      if (!(await store.hasObject(oid))) missing.push(oid);
      oid = (await git.readTag({...repo, oid})).tag.object;
    }
    return missing;
  }

  async commitsWithPrefix(_store: GitStore, prefix: string) {
    return {
      commits: await commitsWithPrefix(await this.repo(), prefix),
      fetch: noStats,
    };
  }
}

/** Pack `oids` from the repository `source` and add the pack to `store`, index last. */
export async function copyObjects(
  source: GitRepo,
  store: GitStore,
  oids: string[],
): Promise<{objects: number; bytes: number}> {
  const {filename, packfile} = await git.packObjects({
    fs: source.fs,
    gitdir: source.gitdir,
    oids,
    write: false,
  });
  if (!packfile)
    throw new SourceError('Packing objects from the local repository produced nothing.');
  const staging = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-pack-'));
  try {
    const staged = path.join(staging, filename);
    await fsp.writeFile(staged, packfile);
    // Indexed as a fetched pack is (native zlib, bounded memory), not by isomorphic-git.
    const {index} = indexPackFile(staged, 'the local repository', () => undefined);
    const packDir = path.join(store.gitdir, 'objects', 'pack');
    await fsp.mkdir(packDir, {recursive: true});
    // The pack must be in place before its index makes it visible to readers.
    await fsp.copyFile(staged, path.join(packDir, filename));
    await store.fs.writeFile(path.join(packDir, filename.replace(/\.pack$/, '.idx')), index);
  } finally {
    await fsp.rm(staging, {recursive: true, force: true});
  }
  return {objects: oids.length, bytes: packfile.length};
}

/** Find the git directory of a work tree, a linked work tree (`.git` file) or a bare repository. */
export async function findGitdir(dir: string): Promise<string> {
  const dotgit = path.join(dir, '.git');
  const stat = await fsp.stat(dotgit).catch(() => undefined);
  if (stat?.isDirectory()) return dotgit;
  if (stat?.isFile()) {
    const text = await fsp.readFile(dotgit, 'utf8');
    const match = /^gitdir:\s*(.+)$/m.exec(text);
    if (match?.[1]) return path.resolve(dir, match[1].trim());
  }
  const head = await fsp.stat(path.join(dir, 'HEAD')).catch(() => undefined);
  const objects = await fsp.stat(path.join(dir, 'objects')).catch(() => undefined);
  if (head?.isFile() && objects?.isDirectory()) return dir;
  const exists = await fsp.stat(dir).catch(() => undefined);
  throw new SourceError(
    exists
      ? `${dir} is not a git repository (no .git, and not a bare repository).`
      : `${dir} does not exist.`,
    'Give the path of a git work tree or bare repository, or an http(s) URL.',
  );
}

export function addStats(a: FetchStats, b: FetchStats): FetchStats {
  return {
    fetched: a.fetched || b.fetched,
    objects: a.objects + b.objects,
    bytes: a.bytes + b.bytes,
  };
}

/** Turn what isomorphic-git or the network threw into an error that says what to do. */
export function translateHttpError(
  error: unknown,
  action: string,
  url: string,
  hadCredentials: boolean,
  withheld?: string,
): unknown {
  if (error instanceof DeployError) return error;
  const where = redact(url);
  const authHint = hadCredentials
    ? 'The credentials for this origin (DEPLOY_GIT_USERNAME / DEPLOY_GIT_TOKEN, or its DEPLOY_GIT_CREDENTIALS entry) were refused; check them.'
    : (withheld ??
      'Set DEPLOY_GIT_TOKEN (and DEPLOY_GIT_USERNAME if the server needs one) for the app repository and --vendor-repo, or DEPLOY_GIT_CREDENTIALS for another origin.');
  if (error instanceof Errors.HttpError) {
    return translateHttpStatus(error, `Could not ${action} ${where}`, authHint);
  }
  if (error instanceof Errors.UserCanceledError) {
    return new SourceError(`Could not ${action} ${where}: authentication required.`, authHint, {
      cause: error,
    });
  }
  const code = errnoCode(error);
  if (code && NETWORK_CODES.test(code)) {
    return new SourceError(
      `Could not ${action} ${where}: ${code}.`,
      'Check that the git server is up and reachable from this node, then run the deploy again.',
      {cause: error},
    );
  }
  if (error instanceof Errors.SmartHttpError || error instanceof Errors.ParseError) {
    return new SourceError(
      `Could not ${action} ${where}: the answer was not a git smart-HTTP response.`,
      'Check that the URL is the repository itself (it must serve /info/refs?service=git-upload-pack).',
      {cause: error},
    );
  }
  if (error instanceof Error) {
    return new SourceError(`Could not ${action} ${where}: ${redact(error.message)}`, undefined, {
      cause: error,
    });
  }
  return error;
}

/** Errors of a server that is down or out of reach, rather than of the repository. */
const NETWORK_CODES =
  /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE)$/;

/** An HTTP status from the git server: refused access, no repository, or something else. */
function translateHttpStatus(
  error: InstanceType<typeof Errors.HttpError>,
  failed: string,
  authHint: string,
): SourceError {
  const status = error.data.statusCode;
  if (status === 401 || status === 403) {
    return new SourceError(`${failed}: the server refused access (HTTP ${status}).`, authHint, {
      cause: error,
    });
  }
  if (status === 404) {
    return new SourceError(
      `${failed}: no repository there (HTTP 404).`,
      'Check the repository URL.',
      {
        cause: error,
      },
    );
  }
  return new SourceError(
    `${failed}: HTTP ${status} ${error.data.statusMessage}.`,
    'Try again; if it persists, check the git server.',
    {cause: error},
  );
}
