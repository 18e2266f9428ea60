import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {gitCredentials, type Deps} from './deps.js';
import {
  ConfigError,
  DeployError,
  describeError,
  IntegrityError,
  SourceError,
  UsageError,
} from './errors.js';
import {syncTree} from './fsutil.js';
import {exportTree, listTree, type TreeFile} from './git/export.js';
import {openRemote, type FetchStats} from './git/remote.js';
import {resolveRev} from './git/resolve.js';
import {GitStore} from './git/store.js';
import {appendHistory} from './history.js';
import {readNodeSettings, writeNodeSettings} from './node-settings.js';
import {formatLocation, parseRepoLocation, type RepoLocation} from './repo-location.js';
import {META_DIR, ReleaseStore, type ReleaseMeta} from './release-store.js';
import {TOOL_NAME, TOOL_VERSION} from './version.js';
import {verifyAssets} from './installers/assets.js';
import {createInstaller, type InstallContext} from './installers/index.js';
import {readVendorManifest} from './vendor-manifest.js';
import {readAppSettings, VENDOR_DIR, type VendorPin} from './vendor-pin.js';

export type DeployOptions = {
  /** The node root (`--root` / DEPLOY_ROOT). */
  root: string;
  /** Full or abbreviated sha, tag or branch. */
  rev: string;
  /** App repository; remembered in the root after the first deploy. */
  repo?: string | undefined;
  /** Vendor repository URL or path that replaces the one the app pins (an internal mirror). */
  vendorRepo?: string | undefined;
  /** Release id to use instead of a generated one (the same on every host of a fleet). */
  releaseId?: string | undefined;
};

export type DeployResult = {
  releaseId: string;
  releaseDir: string;
  previousReleaseId: string | undefined;
  requestedRev: string;
  app: {url: string; sha: string; fetch: FetchStats};
  vendor: {url: string; sha: string; source: VendorPin['source']; fetch: FetchStats} | null;
  durationMs: number;
};

/** Layout of a node root; `docs/node-layout.md` describes it. */
export const REPOS_DIR = 'repos';

/** An installer still running after this long is killed and the deploy fails. */
const INSTALL_TIMEOUT_MS = 30 * 60 * 1000;

/**
 * Deploy `rev` of the app (and the vendor commit it pins) into a new release under `root`,
 * then switch `current` to it. A failure at any step leaves `current` and every existing release
 * as they were; a release dir that was started is marked `failed` with the reason.
 *
 * @example
 * const result = await deploy({root: '/srv/app', rev: 'v1.4.0', repo: 'https://git.example/app.git'}, defaultDeps())
 */
export async function deploy(options: DeployOptions, deps: Deps): Promise<DeployResult> {
  const started = deps.clock();
  const root = path.resolve(deps.cwd, options.root);
  const {reporter} = deps;
  const releases = new ReleaseStore(root);
  const base = {
    command: 'deploy',
    user: deps.identity.user,
    host: deps.identity.host,
    requestedRev: options.rev,
  };
  const progress: {appSha?: string; vendorSha?: string; releaseId?: string; previous?: string} = {};
  try {
    await fsp.mkdir(root, {recursive: true});
    progress.previous = await releases.current();
    await releases.removeStaleSwitchLinks();
    const settings = await readNodeSettings(root);
    const repoSpec = options.repo ?? settings.repo;
    if (!repoSpec) {
      throw new UsageError(
        `No app repository is known for ${root}.`,
        'Give --repo <url|path> on the first deploy; later deploys reuse it.',
      );
    }
    const appLocation = parseRepoLocation(repoSpec, {cwd: deps.cwd, what: 'app repository'});
    const vendorSpec = options.vendorRepo ?? settings.vendorRepo;
    const vendorOverride = vendorSpec
      ? parseRepoLocation(vendorSpec, {cwd: deps.cwd, what: 'vendor repository'})
      : undefined;
    const credentials = gitCredentials(deps.env);

    const appStore = await GitStore.open(path.join(root, REPOS_DIR, 'app.git'));
    const appRemote = openRemote(appLocation, {http: deps.http, credentials});
    const resolved = await reporter.phase(
      `resolve ${options.rev} in ${formatLocation(appLocation)}`,
      () => resolveRev(options.rev, appRemote, appStore),
    );
    progress.appSha = resolved.sha;
    reporter.info(
      `  app ${resolved.sha} (${resolved.kind}${resolved.ref ? ` ${resolved.ref}` : ''}); ${describeFetch(resolved.fetch)}`,
    );
    await appStore.setHave(resolved.sha);
    await rememberRepos(root, settings, appLocation, vendorOverride);

    // The whole tree is checked before anything in it is read or written.
    const appTree = await listTree(appStore, resolved.sha, `app commit ${resolved.sha}`);
    const app = await readAppSettings(appStore, resolved.sha, appLocation, vendorOverride);
    refuseReservedNames(appTree, resolved.sha);

    let vendor: {store: GitStore; pin: VendorPin; tree: TreeFile[]; fetch: FetchStats} | undefined;
    if (app.pin) {
      const pin = app.pin;
      progress.vendorSha = pin.sha;
      vendor = await reporter.phase(
        `fetch vendor ${pin.sha.slice(0, 12)} from ${formatLocation(pin.location)}`,
        async () => {
          const store = await GitStore.open(path.join(root, REPOS_DIR, 'vendor.git'));
          const remote = openRemote(pin.location, {http: deps.http, credentials});
          const fetch = await remote.fetchCommit(store, pin.sha).catch((error: unknown) => {
            throw vendorFetchError(error, pin, resolved.sha);
          });
          await store.setHave(pin.sha);
          const tree = await listTree(store, pin.sha, `vendor commit ${pin.sha}`);
          return {store, pin, tree, fetch};
        },
      );
      reporter.info(`  vendor ${pin.sha} (${pin.source}); ${describeFetch(vendor.fetch)}`);
    }

    const releaseId = await releases.newId(started, resolved.sha, options.releaseId);
    progress.releaseId = releaseId;
    const meta: ReleaseMeta = {
      format: 1,
      id: releaseId,
      state: 'building',
      createdAt: started.toISOString(),
      user: deps.identity.user,
      host: deps.identity.host,
      tool: {name: TOOL_NAME, version: TOOL_VERSION},
      app: {url: formatLocation(appLocation), requested: options.rev, sha: resolved.sha},
      vendor: vendor
        ? {url: formatLocation(vendor.pin.location), sha: vendor.pin.sha, source: vendor.pin.source}
        : null,
    };
    const releaseDir = await releases.create(meta);
    try {
      await reporter.phase(`write release ${releaseId}`, async () => {
        const appStats = await exportTree(appStore, resolved.sha, releaseDir, {
          label: `app commit ${resolved.sha}`,
          entries: appTree,
        });
        reporter.info(
          `  app: ${plural(appStats.files, 'file')}, ${plural(appStats.symlinks, 'symlink')}`,
        );
        if (vendor) {
          const vendorStats = await exportTree(
            vendor.store,
            vendor.pin.sha,
            path.join(releaseDir, VENDOR_DIR),
            {
              label: `vendor commit ${vendor.pin.sha}`,
              entries: vendor.tree,
            },
          );
          reporter.info(
            `  vendor: ${plural(vendorStats.files, 'file')}, ${plural(vendorStats.symlinks, 'symlink')}`,
          );
        }
      });
      const install = app.config.install;
      const assets = app.config.assets ?? [];
      const vendorRoot = vendor ? path.join(releaseDir, VENDOR_DIR) : undefined;
      const manifest =
        vendorRoot && (assets.length > 0 || (install && install.type !== 'command'))
          ? await readVendorManifest(vendorRoot)
          : undefined;
      if (assets.length > 0) {
        await reporter.phase('verify release assets', () =>
          verifyAssets(assets, vendorRoot, manifest),
        );
      }
      if (install) {
        const installer = createInstaller(install);
        const ctx: InstallContext = {
          releaseDir,
          vendorDir: vendorRoot,
          manifest,
          logFile: path.join(releaseDir, META_DIR, 'install.log'),
          env: deps.env,
          reporter,
          timeoutMs: INSTALL_TIMEOUT_MS,
        };
        const verified = await reporter.phase(`verify artifacts for ${installer.kind}`, () =>
          installer.verify(ctx),
        );
        if (installer.kind !== 'command') {
          reporter.info(
            `  ${plural(verified.length, 'artifact')} match the hashes pinned by the app`,
          );
        }
        await reporter.phase(`install: ${installer.describe}`, () =>
          installer.install(ctx, verified),
        );
      }
      await syncTree(releaseDir);
      await releases.setState(releaseId, 'ready', {finishedAt: deps.clock().toISOString()});
      await reporter.phase(`switch current to ${releaseId}`, () => releases.switchTo(releaseId));
    } catch (error) {
      await releases
        .setState(releaseId, 'failed', {
          error: describeError(error),
          finishedAt: deps.clock().toISOString(),
        })
        .catch(() => undefined);
      throw error;
    }
    await releases.setState(releaseId, 'live');
    if (progress.previous && progress.previous !== releaseId) {
      await releases.setState(progress.previous, 'retired').catch(() => undefined);
    }

    const durationMs = deps.clock().getTime() - started.getTime();
    const result: DeployResult = {
      releaseId,
      releaseDir,
      previousReleaseId: progress.previous,
      requestedRev: options.rev,
      app: {url: formatLocation(appLocation), sha: resolved.sha, fetch: resolved.fetch},
      vendor: vendor
        ? {
            url: formatLocation(vendor.pin.location),
            sha: vendor.pin.sha,
            source: vendor.pin.source,
            fetch: vendor.fetch,
          }
        : null,
      durationMs,
    };
    await appendHistory(root, {
      ...base,
      time: deps.clock().toISOString(),
      outcome: 'success',
      appSha: resolved.sha,
      ...(vendor ? {vendorSha: vendor.pin.sha} : {}),
      releaseId,
      ...(progress.previous ? {previousReleaseId: progress.previous} : {}),
      durationMs,
    });
    return result;
  } catch (error) {
    await appendHistory(root, {
      ...base,
      time: deps.clock().toISOString(),
      outcome: 'failure',
      ...(progress.appSha ? {appSha: progress.appSha} : {}),
      ...(progress.vendorSha ? {vendorSha: progress.vendorSha} : {}),
      ...(progress.releaseId ? {releaseId: progress.releaseId} : {}),
      ...(progress.previous ? {previousReleaseId: progress.previous} : {}),
      durationMs: deps.clock().getTime() - started.getTime(),
      error: {
        code: error instanceof DeployError ? error.code : 'EINTERNAL',
        message: describeError(error),
      },
    }).catch(() => undefined);
    throw error;
  }
}

async function rememberRepos(
  root: string,
  settings: Awaited<ReturnType<typeof readNodeSettings>>,
  app: RepoLocation,
  vendorOverride: RepoLocation | undefined,
): Promise<void> {
  const next = {
    ...settings,
    repo: formatLocation(app),
    ...(vendorOverride ? {vendorRepo: formatLocation(vendorOverride)} : {}),
  };
  if (next.repo !== settings.repo || next.vendorRepo !== settings.vendorRepo) {
    await writeNodeSettings(root, next);
  }
}

function refuseReservedNames(tree: TreeFile[], sha: string): void {
  if (tree.some(entry => entry.path === META_DIR)) {
    throw new ConfigError(
      `The app at ${sha.slice(0, 12)} has a top-level ${META_DIR}, which is reserved for release metadata.`,
      `Rename ${META_DIR} in the app repository.`,
    );
  }
}

function vendorFetchError(error: unknown, pin: VendorPin, appSha: string): unknown {
  if (!(error instanceof SourceError) && !(error instanceof IntegrityError)) return error;
  return new SourceError(
    `The vendor commit ${pin.sha} pinned by app ${appSha.slice(0, 12)} (${pin.source}) could not be fetched from ${formatLocation(pin.location)}: ${error.message}`,
    error.hint ?? 'Push that vendor commit, or fix the pin in the app repository.',
    {cause: error},
  );
}

function describeFetch(stats: FetchStats): string {
  if (!stats.fetched) return 'already present, nothing fetched';
  if (stats.objects === 0) return 'nothing new to fetch';
  return `fetched ${plural(stats.objects, 'object')} (${formatBytes(stats.bytes)})`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
