import {promises as fsp} from 'node:fs';
import {createInstaller} from '../../install/index.js';
import {installLog} from '../../node/layout.js';
import {checkReleasePaths} from '../../node/release-path.js';
import type {ReleaseMeta} from '../../node/release-store.js';
import {recordSigners} from '../../signing/recorded.js';
import {asDeployError, describeError} from '../../support/errors.js';
import {syncTree} from '../../support/fs.js';
import {pausePoint} from '../../support/pause-points.js';
import {TOOL_NAME, TOOL_VERSION} from '../../support/version.js';
import {hookEnvironment, linkShared, runHook, type HookPlace} from '../hooks.js';
import type {HookName} from '../../pins/deploy-config.js';
import {known, type DeployRun} from '../run.js';
import type {Step} from '../runner.js';
import {ReleaseWriter} from '../writer.js';

/** The place a hook of the new release runs in. */
export function hookPlace(run: DeployRun): HookPlace {
  const releaseDir = known(run, 'releaseDir');
  return {env: known(run, 'hookEnv'), cwd: releaseDir, logFile: installLog(releaseDir)};
}

/**
 * The release directory, made only once the changeset is fetched and checked, with release.json
 * saying `building` until the release is complete.
 */
export const createRelease: Step = {
  name: 'create the release',
  stage: 'locked',
  async run(run) {
    const {releases, deps, options} = run;
    const source = known(run, 'source');
    const releaseId = await releases.newId(run.started, source.app.sha, options.releaseId);
    run.releaseId = releaseId;
    const meta: ReleaseMeta = {
      format: 1,
      id: releaseId,
      state: 'building',
      createdAt: run.started.toISOString(),
      user: deps.identity.user,
      host: deps.identity.host,
      tool: {name: TOOL_NAME, version: TOOL_VERSION},
      // protection R25-full-sha: the release records the full sha the rev resolved to
      app: {url: source.app.url, requested: source.app.requested, sha: source.app.sha},
      vendor: source.vendor
        ? {url: source.vendor.url, sha: source.vendor.sha, source: source.vendor.source}
        : null,
      ...(run.signers ? {signatures: recordSigners(run.signers)} : {}),
    };
    const releaseDir = await releases.create(meta);
    run.releaseDir = releaseDir;
    run.hookEnv = hookEnvironment(deps.env, {
      releaseDir,
      appRev: source.app.sha,
      vendorRev: source.vendor?.sha ?? null,
      previousRelease: run.previous ? releases.dir(run.previous) : null,
    });
    await pausePoint(run.node.root, 'after-mkdir');
  },
  async dryRun(run, plan) {
    const sha = known(run, 'source').app.sha;
    plan.releaseId = await run.releases.newId(run.deps.clock(), sha, run.options.releaseId);
    run.releaseId = plan.releaseId;
  },
  /**
   * A release that did not go live is marked failed and its tree removed. A switch that renamed
   * but then failed (fsync of the root) leaves the release current: complete, it stays as it is.
   */
  async undo(run, error) {
    const {releases, releaseId} = run;
    if (!releaseId || run.switched) return;
    if ((await releases.current().catch(() => undefined)) === releaseId) return;
    await releases
      .markFailed(releaseId, {
        error: describeError(asDeployError(error)),
        finishedAt: run.deps.clock().toISOString(),
      })
      .catch(() => undefined);
  },
};

/**
 * Write the release. An installer that reads only part of the app (npm: its package files)
 * starts once that part and the vendor tree are written, and the rest is written while it runs;
 * not when a before_install hook or shared files must see the whole release first.
 */
export const writeRelease: Step = {
  name: 'write the release',
  stage: 'locked',
  async run(run) {
    const source = known(run, 'source');
    const releaseDir = known(run, 'releaseDir');
    const config = source.settings.config;
    const first =
      source.tree && !config.hooks?.before_install && !config.shared && config.install
        ? createInstaller(config.install).early?.inputs(source.tree)
        : undefined;
    const id = known(run, 'releaseId');
    await run.deps.reporter.phase(
      'write release',
      async () => {
        run.writer = await ReleaseWriter.start(part => source.write(releaseDir, part), first);
        // The paths deploy.json names, now with the vendor tree (and a bundle's tree) in place.
        await checkReleasePaths(releaseDir, config);
      },
      () => (first ? `${id} (the install inputs first)` : id),
    );
    await pausePoint(run.node.root, 'after-write');
  },
};

/** Link the node's shared files (deploy.json "shared") into the release. */
export const linkSharedFiles: Step = {
  name: 'link shared files',
  stage: 'locked',
  when: run => known(run, 'source').settings.config.shared !== undefined,
  async run(run) {
    const shared = known(run, 'source').settings.config.shared ?? [];
    await run.deps.reporter.phase(
      'link shared files',
      () => linkShared(run.node.root, known(run, 'releaseDir'), shared),
      () => shared.join(', '),
    );
  },
  dryRun(run, plan) {
    plan.shared = known(run, 'source').settings.config.shared ?? [];
  },
};

/** The release is complete on disk (synced) and may be switched to. */
export const markReady: Step = {
  name: 'mark the release ready',
  stage: 'locked',
  async run(run) {
    const releaseDir = known(run, 'releaseDir');
    await known(run, 'writer').finish();
    await syncTree(releaseDir);
    await run.releases.setState(known(run, 'releaseId'), 'ready', {
      finishedAt: run.deps.clock().toISOString(),
    });
    await pausePoint(run.node.root, 'after-ready');
  },
};

/** One of the app's hooks (deploy.json "hooks"), run in the release. */
export function hookStep(name: HookName, stage: 'locked' | 'live'): Step {
  const argv = (run: DeployRun) => known(run, 'source').settings.config.hooks?.[name];
  return {
    name: `hook ${name}`,
    stage,
    when: run => argv(run) !== undefined,
    async run(run) {
      const command = argv(run);
      await run.deps.reporter.phase(
        name,
        () => runHook(name, command, hookPlace(run)),
        () => (command ?? []).join(' '),
      );
    },
    dryRun(run, plan) {
      plan.hooks.push(`${name}: ${(argv(run) ?? []).join(' ')}`);
    },
  };
}

/** Remove the installers' scratch directory if it is empty (each removed its own part). */
export async function removeEmptyScratch(run: DeployRun): Promise<void> {
  await fsp.rmdir(run.node.scratch).catch(() => undefined);
}
