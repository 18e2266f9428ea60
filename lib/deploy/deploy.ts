import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {
  fetchVendor,
  installRelease,
  plural,
  readApp,
  resolveApp,
  sourcesFrom,
  verifyRelease,
  writeTrees,
  writeTreesInTwo,
  type VendorCheckout,
  type VerifiedRelease,
} from './changeset.js';
import {consolidatePacks} from '../git/pack/merge.js';
import type {TreeFile} from '../git/export.js';
import {createInstaller} from '../install/index.js';
import {recordInstall, reuseInstall} from '../install/reuse.js';
import type {Deps} from '../support/deps.js';
import {asDeployError, DeployError, describeError, UsageError} from '../support/errors.js';
import {syncTree} from '../support/fs.js';
import type {FetchStats} from '../git/remote.js';
import {DEPLOY_JSON, parseDeployConfig} from '../pins/deploy-config.js';
import {appendHistory} from '../node/history.js';
import {maintenanceStatus, setMaintenance} from '../node/maintenance.js';
import {pausePoint} from '../support/pause-points.js';
import {throwIfInterrupted} from '../node/processes.js';
import {hookEnvironment, linkShared, runHealthcheck, runHook} from './hooks.js';
import {pruneHeld, prunePolicy, recoverInterrupted} from '../node/lifecycle.js';
import {withLock} from '../node/lock.js';
import {readNodeSettings, writeNodeSettings} from '../node/settings.js';
import {formatLocation, parseRepoLocation, type RepoLocation} from '../git/location.js';
import {checkReleasePaths} from '../node/release-path.js';
import {META_DIR, ReleaseStore, type ReleaseMeta} from '../node/release-store.js';
import {TOOL_NAME, TOOL_VERSION} from '../support/version.js';
import type {AppSettings, VendorPin} from '../pins/vendor-pin.js';
import {extractBundle, verifyBundle, type VerifiedBundle} from '../bundle/bundle.js';
import {resolveBundlePin, type BundlePinOptions} from '../bundle/pin.js';

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
  /** Set the maintenance flag for the duration of the deploy; cleared once the health check passes. */
  maintenance?: boolean | undefined;
  /** Deploy from this bundle (`deploy bundle`) instead of from git; `rev` is then informational. */
  bundle?: string | undefined;
  /** What the bundle must hash to (lib/bundle/pin.ts): required with `bundle`. */
  bundlePin?: BundlePinOptions | undefined;
  /** Install from scratch even when the previous release's dependencies could be reused. */
  freshInstall?: boolean | undefined;
};

/** Installer scratch directories of the running deploy, under the node root. */
export const SCRATCH_DIR = '.scratch';

/** Where a release's files come from: git (the repository route) or a bundle (the release route). */
type ReleaseSource = {
  app: {url: string; requested: string; sha: string; fetch: FetchStats};
  vendor: {url: string; sha: string; source: VendorPin['source']; fetch: FetchStats} | null;
  settings: AppSettings;
  write: (releaseDir: string) => Promise<void>;
  /** The app tree, and a write in two parts (lib/deploy/changeset.ts writeTreesInTwo), from git only. */
  tree?: TreeFile[];
  writeInTwo?: (releaseDir: string, first: ReadonlySet<string>) => Promise<() => Promise<void>>;
};

export type DeployResult = {
  releaseId: string;
  releaseDir: string;
  previousReleaseId: string | undefined;
  requestedRev: string;
  app: {url: string; sha: string; fetch: FetchStats};
  vendor: {url: string; sha: string; source: VendorPin['source']; fetch: FetchStats} | null;
  /** Releases the prune after the deploy removed. */
  pruned: string[];
  durationMs: number;
};

/** Layout of a node root; `docs/node-layout.md` describes it. */
export const REPOS_DIR = 'repos';

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
  let bundled: VerifiedBundle | undefined;
  try {
    await fsp.mkdir(root, {recursive: true});
    // A bundle is read and checked whole (against the node's pin) before the lock is taken or
    // anything in the root is touched: reading it changes nothing.
    if (options.bundle) bundled = await verifyPinned(options.bundle, options.bundlePin ?? {});
    return await withLock(
      root,
      {user: deps.identity.user, command: `deploy --rev ${options.rev}`},
      () => deployLocked(),
    );
  } catch (thrown) {
    const error = asDeployError(thrown);
    if (options.maintenance && (await maintenanceStatus(root).catch(() => undefined))?.on) {
      reporter.warn(
        'maintenance mode stays on: the deploy did not pass its health check. Turn it off with `deploy maintenance off` once the node is sound.',
      );
    }
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

  /** The changeset from git: resolve the rev, fetch app and vendor pin into the node's stores. */
  async function fromGit(): Promise<ReleaseSource> {
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
    const sources = sourcesFrom(deps, [appLocation, vendorOverride]);
    const reposDir = path.join(root, REPOS_DIR);
    const {store, resolved} = await resolveApp(reposDir, appLocation, options.rev, sources);
    progress.appSha = resolved.sha;
    await rememberRepos(root, settings, appLocation, vendorOverride);
    const app = await readApp(store, resolved.sha, appLocation, vendorOverride);
    let vendor: VendorCheckout | undefined;
    if (app.settings.pin) {
      progress.vendorSha = app.settings.pin.sha;
      vendor = await fetchVendor(reposDir, app.settings.pin, resolved.sha, sources);
    }
    return {
      app: {
        url: formatLocation(appLocation),
        requested: options.rev,
        sha: resolved.sha,
        fetch: resolved.fetch,
      },
      vendor: vendor
        ? {
            url: formatLocation(vendor.pin.location),
            sha: vendor.pin.sha,
            source: vendor.pin.source,
            fetch: vendor.fetch,
          }
        : null,
      settings: app.settings,
      write: dir => writeTrees(dir, {store, sha: resolved.sha, tree: app.tree}, vendor, reporter),
      tree: app.tree,
      writeInTwo: (dir, first) =>
        writeTreesInTwo(dir, {store, sha: resolved.sha, tree: app.tree}, vendor, reporter, first),
    };
  }

  /** Check a bundle against the node's pin (or its explicit lack of one), then itself. */
  async function verifyPinned(file: string, pinOptions: BundlePinOptions): Promise<VerifiedBundle> {
    const full = path.resolve(deps.cwd, file);
    const pin = await resolveBundlePin(pinOptions, full, deps.cwd);
    if (!pin)
      reporter.warn(
        `${file} is not pinned (--insecure-unpinned-bundle): only its own checksums are checked`,
      );
    return reporter.phase(`verify bundle ${file}${pin ? ` against ${pin.from}` : ''}`, () =>
      verifyBundle(full, pin),
    );
  }

  /** The changeset from a bundle (the release-based route): verified whole before anything is written. */
  async function fromBundle(file: string): Promise<ReleaseSource> {
    const bundle = bundled ?? (await verifyPinned(file, options.bundlePin ?? {}));
    const none = {fetched: false, objects: 0, bytes: 0};
    return {
      app: {...bundle.meta.app, fetch: none},
      vendor: bundle.meta.vendor ? {...bundle.meta.vendor, fetch: none} : null,
      settings: bundle.settings,
      write: dir => extractBundle(bundle, dir),
    };
  }

  async function deployLocked(): Promise<DeployResult> {
    progress.previous = await releases.currentForSwitch();
    await releases.removeStaleSwitchLinks();
    // Installer scratch (an npm cache, a wheelhouse) left by a run killed mid-install.
    await fsp.rm(path.join(root, SCRATCH_DIR), {recursive: true, force: true});
    const recovered = await recoverInterrupted(releases);
    if (recovered.length > 0)
      reporter.info(`cleaned up after an interrupted run: ${recovered.join(', ')}`);
    if (options.maintenance) {
      await setMaintenance(root, true, {
        by: deps.identity.user,
        reason: `deploy --rev ${options.rev}`,
        now: deps.clock(),
      });
      reporter.info('maintenance mode on');
    }
    const source = options.bundle ? await fromBundle(options.bundle) : await fromGit();
    progress.appSha = source.app.sha;
    if (source.vendor) progress.vendorSha = source.vendor.sha;
    const app = {settings: source.settings};
    const resolved = {sha: source.app.sha, fetch: source.app.fetch};
    const vendor = source.vendor;

    throwIfInterrupted('the fetch');
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
      app: {url: source.app.url, requested: source.app.requested, sha: source.app.sha},
      vendor: vendor ? {url: vendor.url, sha: vendor.sha, source: vendor.source} : null,
    };
    const releaseDir = await releases.create(meta);
    await pausePoint(root, 'after-mkdir');
    const config = app.settings.config;
    const logFile = path.join(releaseDir, META_DIR, 'install.log');
    const hookEnv = (dir: string, previous: string | undefined) =>
      hookEnvironment(deps.env, {
        releaseDir: dir,
        appRev: resolved.sha,
        vendorRev: vendor?.sha ?? null,
        previousRelease: previous ? releases.dir(previous) : null,
      });
    const env = hookEnv(releaseDir, progress.previous);
    // An installer that reads only part of the app (npm: its package files) starts once that
    // part and the vendor tree are written, and the rest is written while it runs; not when a
    // before_install hook or shared files must see the whole release first.
    const first =
      source.tree && !config.hooks?.before_install && !config.shared && config.install
        ? createInstaller(config.install).early?.inputs(source.tree)
        : undefined;
    let rest: (() => Promise<void>) | undefined;
    try {
      await reporter.phase(
        first ? `write the install inputs of ${releaseId}` : `write release ${releaseId}`,
        async () => {
          if (first && source.writeInTwo) rest = once(await source.writeInTwo(releaseDir, first));
          else await source.write(releaseDir);
          // The paths deploy.json names, now with the vendor tree (and a bundle's tree) in place.
          await checkReleasePaths(releaseDir, config);
        },
      );
      await pausePoint(root, 'after-write');
      if (config.shared) {
        const shared = config.shared;
        await reporter.phase('link shared files', () => linkShared(root, releaseDir, shared));
      }
      await runHook('before_install', config.hooks?.before_install, env, releaseDir, logFile);
      const verified = await verifyRelease(
        releaseDir,
        app.settings,
        vendor !== null,
        deps.env,
        reporter,
        path.join(root, SCRATCH_DIR),
      );
      throwIfInterrupted('the artifact check');
      const reuse = await reuseOrInstall(verified, releaseDir, rest);
      // Each installer removed its own scratch directory; an empty .scratch need not stay.
      await fsp.rmdir(path.join(root, SCRATCH_DIR)).catch(() => undefined);
      await runHook('after_install', config.hooks?.after_install, env, releaseDir, logFile);
      // Recorded after the hooks, so what they leave in the outputs is part of the record.
      if (reuse) {
        // Only an optimisation for the next deploy: a record that cannot be made is reported.
        await recordInstall(
          releaseDir,
          path.join(releaseDir, META_DIR),
          reuse.key,
          reuse.outputs,
        ).catch((error: unknown) => {
          reporter.warn(`the next deploy will install afresh: ${describeError(error)}`);
        });
      }
      await syncTree(releaseDir);
      await releases.setState(releaseId, 'ready', {finishedAt: deps.clock().toISOString()});
      await pausePoint(root, 'after-ready');
      await runHook('before_switch', config.hooks?.before_switch, env, releaseDir, logFile);
      throwIfInterrupted(`the switch to ${releaseId}`);
      await reporter.phase(`switch current to ${releaseId}`, () => releases.switchTo(releaseId));
    } catch (error) {
      // A switch that renamed but then failed (fsync of the root) leaves the release current:
      // it is complete and stays as it is. Anything else is marked failed and its tree removed.
      if ((await releases.current().catch(() => undefined)) !== releaseId) {
        await releases
          .markFailed(releaseId, {
            error: describeError(asDeployError(error)),
            finishedAt: deps.clock().toISOString(),
          })
          .catch(() => undefined);
      }
      throw error;
    }
    await releases.setState(releaseId, 'live');
    if (progress.previous && progress.previous !== releaseId) {
      await releases.setState(progress.previous, 'retired').catch(() => undefined);
    }
    try {
      await runHook('after_switch', config.hooks?.after_switch, env, releaseDir, logFile);
      if (config.healthcheck) {
        const check = config.healthcheck;
        const outcome = await reporter.phase('health check', () =>
          runHealthcheck(check, env, releaseDir, logFile),
        );
        reporter.info(`  ${outcome}`);
      }
    } catch (error) {
      await switchBack(error);
      throw error;
    }

    const pruned = await pruneHeld(releases, await prunePolicy(root)).catch((error: unknown) => {
      // The deploy itself succeeded; a prune that fails is reported, not fatal.
      reporter.warn(`prune failed: ${describeError(error)}`);
      return {removed: [] as string[]};
    });
    if (pruned.removed.length > 0) reporter.info(`pruned ${pruned.removed.join(', ')}`);
    // Each fetch adds a pack to the node's stores; past a few, merge them into one, so lookups
    // do not slow down deploy after deploy. Like the prune, a failure here is reported, not fatal.
    for (const name of ['app.git', 'vendor.git']) {
      const gitdir = path.join(root, REPOS_DIR, name);
      await consolidatePacks(gitdir).then(
        merged => {
          if (merged) {
            reporter.info(
              `merged ${merged.packs} packs of ${REPOS_DIR}/${name} into one (${plural(merged.objects, 'object')})`,
            );
          }
        },
        (error: unknown) => {
          reporter.warn(
            `merging the packs of ${REPOS_DIR}/${name} failed: ${describeError(error)}`,
          );
        },
      );
    }

    const durationMs = deps.clock().getTime() - started.getTime();
    const result: DeployResult = {
      releaseId,
      releaseDir,
      previousReleaseId: progress.previous,
      requestedRev: options.rev,
      app: {url: source.app.url, sha: resolved.sha, fetch: resolved.fetch},
      vendor,
      pruned: pruned.removed,
      durationMs,
    };
    await appendHistory(root, {
      ...base,
      time: deps.clock().toISOString(),
      outcome: 'success',
      appSha: resolved.sha,
      ...(vendor ? {vendorSha: vendor.sha} : {}),
      releaseId,
      ...(progress.previous ? {previousReleaseId: progress.previous} : {}),
      durationMs,
    });
    if (options.maintenance) {
      await setMaintenance(root, false, {by: deps.identity.user, now: deps.clock()});
      reporter.info('maintenance mode off');
    }
    return result;

    /**
     * Copy the previous release's installed dependencies when every input of the install is the
     * same and they are as their install left them (lib/install/reuse.ts); else install. Returns
     * the key and outputs to record, when the installer allows reuse at all.
     */
    async function reuseOrInstall(
      verified: VerifiedRelease,
      dir: string,
      rest: (() => Promise<void>) | undefined,
    ): Promise<{key: string; outputs: string[]} | undefined> {
      const install = () => installRelease(verified, reporter, rest);
      const reusable = await verified.installer?.reuse?.(verified.ctx, verified.verified);
      if (!reusable || 'reason' in reusable) {
        if (reusable) reporter.info(`  not reusing installed dependencies: ${reusable.reason}`);
        await install();
        return undefined;
      }
      const previous = progress.previous;
      if (previous && !options.freshInstall) {
        // The copy is no process of its own to overlap with: the release is written whole first.
        await rest?.();
        const outcome = await reporter.phase(`reuse installed dependencies of ${previous}`, () =>
          reuseInstall({
            previousDir: releases.dir(previous),
            previousMetaDir: path.join(releases.dir(previous), META_DIR),
            releaseDir: dir,
            key: reusable.key,
            outputs: reusable.outputs,
          }),
        );
        if (outcome.reused) {
          reporter.info(
            `  copied ${plural(outcome.files, 'file')} of ${reusable.outputs.join(', ')}: lockfile, artifacts and install settings unchanged`,
          );
          return reusable;
        }
        reporter.info(`  installing: ${outcome.reason}`);
      }
      await install();
      return reusable;
    }

    /**
     * After a failed after_switch hook or health check: put back what was live before (running
     * its after_switch hook again, e.g. a service reload), and mark the new release bad.
     */
    async function switchBack(cause: unknown): Promise<void> {
      const previous = progress.previous;
      reporter.warn(
        `${describeError(cause).split('\n')[0] ?? ''}: switching back${previous ? ` to ${previous}` : ''}`,
      );
      if (previous && previous !== progress.releaseId) {
        await releases.switchTo(previous);
        await releases.setState(previous, 'live');
        const previousDir = releases.dir(previous);
        const previousHooks = await readReleaseConfig(previousDir);
        await runHook(
          'after_switch',
          previousHooks?.hooks?.after_switch ?? config.hooks?.after_switch,
          hookEnv(previousDir, progress.releaseId),
          previousDir,
          path.join(previousDir, META_DIR, 'install.log'),
        ).catch((error: unknown) => {
          reporter.warn(`after_switch of ${previous} failed too: ${describeError(error)}`);
        });
      } else {
        // There was no release before this one: back to no current at all.
        await fsp.rm(releases.currentLink, {force: true});
      }
      await releases.setState(progress.releaseId ?? '', 'bad', {error: describeError(cause)});
    }
  }
}

/** The deploy.json a release was built from, read back from its directory. */
async function readReleaseConfig(dir: string) {
  try {
    return parseDeployConfig(await fsp.readFile(path.join(dir, DEPLOY_JSON), 'utf8'), DEPLOY_JSON);
  } catch {
    return undefined;
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

/** `fn` run at most once: later calls share the first call's promise. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}
