import type {HttpClient} from 'isomorphic-git';
import type {Deps} from '../support/deps.js';
import {ConfigError, IntegrityError, SourceError} from '../support/errors.js';
import {listTree, readTreeFile, type TreeFile} from '../git/export.js';
import {credentialPolicy, type CredentialPolicy} from '../git/credentials.js';
import {openRemote, type FetchStats, type Remote} from '../git/remote.js';
import {resolveRev, type ResolvedRev} from '../git/resolve.js';
import {GitStore} from '../git/store.js';
import {checkTreePaths} from '../node/release-path.js';
import {META_DIR, storeDir} from '../node/layout.js';
import {formatLocation, parseRepoLocation, type RepoLocation} from '../git/location.js';
import type {Reporter} from '../support/reporter.js';
import {formatBytes, plural} from '../support/format.js';
import {verifyChangesetSignatures, type ChangesetSigners} from '../signing/changeset.js';
import type {SigningPolicy} from '../signing/policy.js';
import {readAppSettings, type AppSettings, type VendorPin} from '../pins/vendor-pin.js';
import {existingStore, storeOnlyRemote} from './store-only.js';

/**
 * The fetching half of turning a rev into a release, shared by `deploy` (into the node's stores),
 * `deploy check` and `deploy bundle` (into a scratch directory). Each step throws its own kind of
 * error, so a caller can tell where a changeset failed.
 */

export type Sources = {
  http: HttpClient;
  credentials: CredentialPolicy;
  reporter: Reporter;
  /** Read the stores only, fetch nothing into them (a dry run on the node's stores). */
  storeOnly?: boolean;
};

/**
 * Where a run fetches from, and how it reports: from the run's dependencies. `named` are the
 * repositories the node or CI itself names (the app repository, `--vendor-repo`): the origins
 * DEPLOY_GIT_TOKEN may go to (lib/git/credentials.ts).
 */
export function sourcesFrom(deps: Deps, named: ReadonlyArray<RepoLocation | undefined>): Sources {
  return {
    http: deps.http,
    credentials: credentialPolicy(deps.env, named),
    reporter: deps.reporter,
  };
}

export type VendorCheckout = {store: GitStore; pin: VendorPin; tree: TreeFile[]; fetch: FetchStats};

/** Resolve `rev` in the app repository and fetch that commit into the store in `reposDir`. */
export async function resolveApp(
  reposDir: string,
  location: RepoLocation,
  rev: string,
  sources: Sources,
): Promise<{store: GitStore; resolved: ResolvedRev}> {
  const store = await openStore(storeDir(reposDir, 'app'), sources);
  const remote = remoteFor(location, sources);
  const resolved = await sources.reporter.phase(
    'fetch app',
    async progress => {
      sources.reporter.detail(`resolve ${rev} in ${formatLocation(location)}`);
      const found = await resolveRev(rev, remote, store, progress);
      sources.reporter.detail(`app ${found.sha}`);
      return found;
    },
    found =>
      `${found.sha.slice(0, 12)} (${found.kind}${found.ref ? ` ${found.ref}` : ''}); ${describeFetch(found.fetch)}`,
  );
  if (!sources.storeOnly) await store.setHave(resolved.sha);
  return {store, resolved};
}

/**
 * Check the whole app tree (before anything in it is read or written), then read `deploy.json`
 * and the vendor pin from it, and check that no path deploy.json names goes through a link of
 * the tree (lib/node/release-path.ts).
 */
export async function readApp(
  store: GitStore,
  sha: string,
  location: RepoLocation,
  vendorOverride: RepoLocation | undefined,
): Promise<{tree: TreeFile[]; settings: AppSettings}> {
  const tree = await listTree(store, sha, `app commit ${sha}`);
  const settings = await readAppSettings(store, sha, location, vendorOverride);
  if (tree.some(entry => entry.path === META_DIR)) {
    throw new ConfigError(
      `The app at ${sha.slice(0, 12)} has a top-level ${META_DIR}, which is reserved for release metadata.`,
      `Rename ${META_DIR} in the app repository.`,
    );
  }
  await checkTreePaths(tree, settings.config, `the app tree at ${sha.slice(0, 12)}`, async rel =>
    ((await readTreeFile(store, sha, rel))?.content ?? Buffer.alloc(0)).toString('utf8'),
  );
  return {tree, settings};
}

/** Fetch the pinned vendor commit into the store in `reposDir` and check its tree. */
export async function fetchVendor(
  reposDir: string,
  pin: VendorPin,
  appSha: string,
  sources: Sources,
): Promise<VendorCheckout> {
  const checkout = await sources.reporter.phase(
    'fetch vendor',
    async progress => {
      sources.reporter.detail(`vendor ${pin.sha} from ${formatLocation(pin.location)}`);
      const store = await openStore(storeDir(reposDir, 'vendor'), sources);
      const remote = remoteFor(pin.location, sources);
      const fetch = await remote
        .fetchCommit(store, pin.sha, undefined, progress)
        .catch((error: unknown) => {
          throw vendorFetchError(error, pin, appSha);
        });
      if (!sources.storeOnly) await store.setHave(pin.sha);
      const tree = await listTree(store, pin.sha, `vendor commit ${pin.sha}`);
      return {store, pin, tree, fetch};
    },
    done => `${pin.sha.slice(0, 12)} (${pin.source}); ${describeFetch(done.fetch)}`,
  );
  return checkout;
}

/**
 * Verify a fetched changeset against the node's signing policy (lib/signing/changeset.ts): the
 * app rev as it was named (an annotated tag's own id, or the commit) and the pinned vendor commit.
 * Deploy, check and bundle call it once both are in their stores, before anything is written.
 * @example const signers = await verifyFetchedSignatures({store, resolved, vendor}, policy)
 */
export function verifyFetchedSignatures(
  fetched: {store: GitStore; resolved: ResolvedRev; vendor?: VendorCheckout | undefined},
  policy: SigningPolicy,
): Promise<ChangesetSigners> {
  const {store, resolved, vendor} = fetched;
  return verifyChangesetSignatures(
    {
      app: {store, rev: {named: resolved.named, commit: resolved.sha}},
      vendor: vendor ? {store: vendor.store, commit: vendor.pin.sha} : undefined,
    },
    policy,
  );
}

/** A changeset with everything fetched: the app commit, its tree and settings, the vendor checkout. */
export type FetchedChangeset = {
  store: GitStore;
  resolved: ResolvedRev;
  tree: TreeFile[];
  settings: AppSettings;
  vendor: VendorCheckout | undefined;
};

/** resolveApp, readApp and fetchVendor in a row, for callers that need no step-by-step report. */
export async function fetchChangeset(
  reposDir: string,
  location: RepoLocation,
  rev: string,
  vendorOverride: RepoLocation | undefined,
  sources: Sources,
): Promise<FetchedChangeset> {
  const {store, resolved} = await resolveApp(reposDir, location, rev, sources);
  const app = await readApp(store, resolved.sha, location, vendorOverride);
  const pin = app.settings.pin;
  const vendor = pin ? await fetchVendor(reposDir, pin, resolved.sha, sources) : undefined;
  return {store, resolved, tree: app.tree, settings: app.settings, vendor};
}

function openStore(gitdir: string, sources: Sources): Promise<GitStore> {
  return sources.storeOnly ? existingStore(gitdir) : GitStore.open(gitdir);
}

function remoteFor(location: RepoLocation, sources: Sources): Remote {
  const remote = openRemote(location, {http: sources.http, ...sources.credentials(location)});
  return sources.storeOnly ? storeOnlyRemote(remote) : remote;
}

function vendorFetchError(error: unknown, pin: VendorPin, appSha: string): unknown {
  if (!(error instanceof SourceError) && !(error instanceof IntegrityError)) return error;
  return new SourceError(
    `The vendor commit ${pin.sha} pinned by app ${appSha.slice(0, 12)} (${pin.source}) could not be fetched from ${formatLocation(pin.location)}: ${error.message}`,
    error.hint ?? 'Push that vendor commit, or fix the pin in the app repository.',
    {cause: error},
  );
}

export function describeFetch(stats: FetchStats): string {
  if (!stats.fetched) return 'already present, nothing fetched';
  if (stats.objects === 0) return 'nothing new to fetch';
  return `fetched ${plural(stats.objects, 'object')}, ${formatBytes(stats.bytes)}`;
}

/** Where a changeset comes from: the app repository and the vendor mirror that replaces its pin. */
export type ChangesetLocations = {app: RepoLocation; vendorOverride: RepoLocation | undefined};

/**
 * The repositories a command names (`--repo`, `--vendor-repo`, or what the node remembers),
 * parsed once the same way by deploy, its dry run, check and bundle. `missing` is the error when
 * no app repository is known at all.
 */
export function changesetLocations(
  spec: {repo?: string | undefined; vendorRepo?: string | undefined},
  cwd: string,
  missing: () => Error,
): ChangesetLocations {
  if (!spec.repo) throw missing();
  return {
    app: parseRepoLocation(spec.repo, {cwd, what: 'app repository'}),
    vendorOverride: spec.vendorRepo
      ? parseRepoLocation(spec.vendorRepo, {cwd, what: 'vendor repository'})
      : undefined,
  };
}
