import path from 'node:path';
import type {HttpClient} from 'isomorphic-git';
import type {Deps} from '../support/deps.js';
import {ConfigError, IntegrityError, SourceError} from '../support/errors.js';
import {exportTree, listTree, readTreeFile, type TreeFile} from '../git/export.js';
import {credentialPolicy, type CredentialPolicy} from '../git/credentials.js';
import {openRemote, type FetchStats} from '../git/remote.js';
import {resolveRev, type ResolvedRev} from '../git/resolve.js';
import {GitStore} from '../git/store.js';
import {verifyAssets} from '../install/assets.js';
import {
  createInstaller,
  type InstallContext,
  type Installer,
  type VerifiedArtifact,
} from '../install/index.js';
import {pausePoint} from '../support/pause-points.js';
import {checkTreePaths} from '../node/release-path.js';
import {META_DIR} from '../node/release-store.js';
import {formatLocation, type RepoLocation} from '../git/location.js';
import type {Reporter} from '../support/reporter.js';
import {readVendorManifest} from '../pins/vendor-manifest.js';
import {readAppSettings, VENDOR_DIR, type AppSettings, type VendorPin} from '../pins/vendor-pin.js';

/**
 * The steps that turn a rev into a release directory, shared by `deploy` (into the node's
 * releases/) and `deploy check` (into a scratch directory). Each step throws its own kind of error,
 * so a caller can tell where a changeset failed.
 */

/** An installer still running after this long is killed and the run fails. */
export const INSTALL_TIMEOUT_MS = 30 * 60 * 1000;

export type Sources = {http: HttpClient; credentials: CredentialPolicy; reporter: Reporter};

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
  const store = await GitStore.open(path.join(reposDir, 'app.git'));
  const remote = openRemote(location, {http: sources.http, ...sources.credentials(location)});
  const resolved = await sources.reporter.phase(
    `resolve ${rev} in ${formatLocation(location)}`,
    () => resolveRev(rev, remote, store),
  );
  sources.reporter.info(
    `  app ${resolved.sha} (${resolved.kind}${resolved.ref ? ` ${resolved.ref}` : ''}); ${describeFetch(resolved.fetch)}`,
  );
  await store.setHave(resolved.sha);
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
    `fetch vendor ${pin.sha.slice(0, 12)} from ${formatLocation(pin.location)}`,
    async () => {
      const store = await GitStore.open(path.join(reposDir, 'vendor.git'));
      const remote = openRemote(pin.location, {
        http: sources.http,
        ...sources.credentials(pin.location),
      });
      const fetch = await remote.fetchCommit(store, pin.sha).catch((error: unknown) => {
        throw vendorFetchError(error, pin, appSha);
      });
      await store.setHave(pin.sha);
      const tree = await listTree(store, pin.sha, `vendor commit ${pin.sha}`);
      return {store, pin, tree, fetch};
    },
  );
  sources.reporter.info(`  vendor ${pin.sha} (${pin.source}); ${describeFetch(checkout.fetch)}`);
  return checkout;
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

/** Write the app tree, and the vendor tree under vendor/, into `releaseDir`. */
export async function writeTrees(
  releaseDir: string,
  app: {store: GitStore; sha: string; tree: TreeFile[]},
  vendor: VendorCheckout | undefined,
  reporter: Reporter,
): Promise<void> {
  const rest = await writeTreesInTwo(releaseDir, app, vendor, reporter, new Set());
  await rest();
}

/**
 * Write the vendor tree and the app entries in `first` (with the app's own `vendor` entry, the
 * vendor tree's place) into `releaseDir` now, and return the function that writes the rest of
 * the app tree: an installer that needs only those can start before the rest is written.
 */
export async function writeTreesInTwo(
  releaseDir: string,
  app: {store: GitStore; sha: string; tree: TreeFile[]},
  vendor: VendorCheckout | undefined,
  reporter: Reporter,
  first: ReadonlySet<string>,
): Promise<() => Promise<void>> {
  const label = `app commit ${app.sha}`;
  const now = app.tree.filter(entry => first.has(entry.path) || entry.path === VENDOR_DIR);
  const later = app.tree.filter(entry => !first.has(entry.path) && entry.path !== VENDOR_DIR);
  const early = await exportTree(app.store, app.sha, releaseDir, {label, entries: now});
  if (vendor) {
    const stats = await exportTree(
      vendor.store,
      vendor.pin.sha,
      path.join(releaseDir, VENDOR_DIR),
      {
        label: `vendor commit ${vendor.pin.sha}`,
        entries: vendor.tree,
      },
    );
    reporter.info(`  vendor: ${plural(stats.files, 'file')}, ${plural(stats.symlinks, 'symlink')}`);
  }
  return async () => {
    const stats = await exportTree(app.store, app.sha, releaseDir, {
      label,
      entries: later,
      midway: () => pausePoint(path.dirname(path.dirname(releaseDir)), 'mid-write'),
    });
    reporter.info(
      `  app: ${plural(early.files + stats.files, 'file')}, ${plural(early.symlinks + stats.symlinks, 'symlink')}`,
    );
  };
}

export type VerifiedRelease = {
  installer: Installer | undefined;
  ctx: InstallContext;
  verified: VerifiedArtifact[];
  assets: number;
};

/**
 * Check every artifact the install will use (and every declared release asset) against the
 * hashes pinned in git, before any installer runs.
 */
export async function verifyRelease(
  releaseDir: string,
  settings: AppSettings,
  hasVendor: boolean,
  env: NodeJS.ProcessEnv,
  reporter: Reporter,
  scratchDir?: string,
): Promise<VerifiedRelease> {
  const install = settings.config.install;
  const assets = settings.config.assets ?? [];
  const vendorDir = hasVendor ? path.join(releaseDir, VENDOR_DIR) : undefined;
  const manifest =
    vendorDir && (assets.length > 0 || (install && install.type !== 'command'))
      ? await readVendorManifest(vendorDir)
      : undefined;
  if (assets.length > 0) {
    await reporter.phase('verify release assets', () => verifyAssets(assets, vendorDir, manifest));
  }
  const ctx: InstallContext = {
    releaseDir,
    vendorDir,
    manifest,
    logFile: path.join(releaseDir, META_DIR, 'install.log'),
    env,
    reporter,
    timeoutMs: INSTALL_TIMEOUT_MS,
    scratchDir,
  };
  if (!install) return {installer: undefined, ctx, verified: [], assets: assets.length};
  const installer = createInstaller(install);
  const verified = await reporter.phase(`verify artifacts for ${installer.kind}`, () =>
    installer.verify(ctx),
  );
  if (installer.kind !== 'command') {
    reporter.info(`  ${plural(verified.length, 'artifact')} match the hashes pinned by the app`);
  }
  return {installer, ctx, verified, assets: assets.length};
}

/**
 * Run the installer of a verified release, if it has one. `rest` writes the part of the release
 * not written yet: while the installer runs when it can start early (Installer.early), else first.
 */
export async function installRelease(
  release: VerifiedRelease,
  reporter: Reporter,
  rest?: () => Promise<void>,
): Promise<void> {
  const {installer} = release;
  let alongside = rest;
  if (rest) {
    const blocker = installer?.early ? await installer.early.blocker(release.ctx) : '';
    if (blocker !== undefined) {
      if (blocker) reporter.info(`  writing the rest first: ${blocker}`);
      await rest();
      alongside = undefined;
    }
  }
  if (!installer) return;
  await reporter.phase(
    `install: ${installer.describe}${alongside ? ' (the rest of the release written meanwhile)' : ''}`,
    () => installer.install(release.ctx, release.verified, alongside),
  );
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
  return `fetched ${plural(stats.objects, 'object')} (${formatBytes(stats.bytes)})`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

export function plural(n: number, noun: string, nouns = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : nouns}`;
}
