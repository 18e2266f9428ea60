import {recordSigners, type RecordedSigners} from '../signing/recorded.js';
import type {Deps} from '../support/deps.js';
import {
  newRun,
  type AppSource,
  type DeployOptions,
  type DeployRun,
  type LiveRelease,
  type VendorSource,
} from './run.js';
import {runSteps, type Step} from './runner.js';
import {installDependencies, recordInstallStep, verifyArtifacts} from './steps/install.js';
import {mergePacks, prune} from './steps/housekeeping.js';
import {maintenanceOff, maintenanceOn, prepareNode} from './steps/node.js';
import {
  createRelease,
  hookStep,
  linkSharedFiles,
  markReady,
  writeRelease,
} from './steps/release.js';
import {
  bundleSource,
  fetchVendorStep,
  rememberRepos,
  resolveAppStep,
  verifyBundleStep,
} from './steps/source.js';
import {
  readSigningPolicy,
  verifyBundleSignersStep,
  verifySignaturesStep,
} from './steps/signatures.js';
import {healthCheck, switchCurrent} from './steps/switch.js';
import {alreadyLiveStep} from './steps/live.js';

export type {DeployOptions} from './run.js';

/** The steps that find out what is asked for: they run whatever is live. */
const FIND_CHANGESET: readonly Step[] = [
  readSigningPolicy,
  verifyBundleStep,
  verifyBundleSignersStep,
  prepareNode,
  bundleSource,
  resolveAppStep,
  alreadyLiveStep,
];

/** The steps that build and switch to a new release. */
const BUILD_RELEASE: readonly Step[] = [
  // After the live check: a re-run that changes nothing does not turn maintenance on either.
  maintenanceOn,
  rememberRepos,
  fetchVendorStep,
  verifySignaturesStep,
  createRelease,
  writeRelease,
  linkSharedFiles,
  hookStep('before_install', 'locked'),
  verifyArtifacts,
  installDependencies,
  hookStep('after_install', 'locked'),
  recordInstallStep,
  markReady,
  hookStep('before_switch', 'locked'),
  switchCurrent,
  hookStep('after_switch', 'live'),
  healthCheck,
  prune,
  mergePacks,
  maintenanceOff,
];

/** `step`, skipped when the changeset asked for turned out to be live already. */
function unlessLive(step: Step): Step {
  return {...step, when: run => run.live === undefined && (step.when?.(run) ?? true)};
}

/**
 * A deploy, step by step (lib/deploy/steps/). Each runs only when it applies (a bundle or git, a
 * hook the app declares); `deploy --dry-run` plans the same list (lib/deploy/plan.ts). Once the
 * rev is resolved, a changeset that is already live ends the run: nothing else is done.
 */
export const DEPLOY_STEPS: readonly Step[] = [...FIND_CHANGESET, ...BUILD_RELEASE.map(unlessLive)];

export type DeployResult = {
  /** False when the changeset was already live and nothing was done (`releaseId` is that release). */
  changed: boolean;
  releaseId: string;
  releaseDir: string;
  previousReleaseId: string | undefined;
  requestedRev: string;
  app: Omit<AppSource, 'requested'>;
  vendor: VendorSource | null;
  /** Who signed the app and vendor commits, when a signing policy was given. */
  signatures: RecordedSigners | null;
  /** Releases the prune after the deploy removed. */
  pruned: string[];
  /** How long each step took. */
  phases: Array<{step: string; ms: number}>;
  durationMs: number;
};

/**
 * Deploy `rev` of the app (and the vendor commit it pins) into a new release under `root`,
 * then switch `current` to it. A failure at any step leaves `current` and every existing release
 * as they were; a release dir that was started is marked `failed` with the reason.
 *
 * @example
 * const result = await deploy({root: '/srv/app', rev: 'v1.4.0', repo: 'https://git.example/app.git'}, defaultDeps())
 */
export async function deploy(options: DeployOptions, deps: Deps): Promise<DeployResult> {
  const run = newRun(options, deps);
  await runSteps(run, DEPLOY_STEPS);
  if (run.live) return unchangedResult(run, run.live);
  const source = run.source;
  if (!source || !run.releaseId || !run.releaseDir)
    throw new Error('deploy ended without a release');
  return {
    changed: true,
    releaseId: run.releaseId,
    releaseDir: run.releaseDir,
    previousReleaseId: run.previous,
    requestedRev: options.rev,
    app: {url: source.app.url, sha: source.app.sha, fetch: source.app.fetch},
    vendor: source.vendor,
    signatures: run.signers ? recordSigners(run.signers) : null,
    pruned: run.pruned,
    phases: run.phases,
    durationMs: deps.clock().getTime() - run.started.getTime(),
  };
}

/** The result of a run that found its changeset live: that release, as it was recorded. */
function unchangedResult(run: DeployRun, live: LiveRelease): DeployResult {
  const none = {fetched: false, objects: 0, bytes: 0};
  const {app, vendor, signatures} = live.meta;
  return {
    changed: false,
    releaseId: live.id,
    releaseDir: live.dir,
    previousReleaseId: live.id,
    requestedRev: run.options.rev,
    app: {url: app.url, sha: app.sha, fetch: run.fetched?.resolved.fetch ?? none},
    vendor: vendor ? {...vendor, fetch: none} : null,
    signatures: signatures ?? null,
    pruned: [],
    phases: run.phases,
    durationMs: run.deps.clock().getTime() - run.started.getTime(),
  };
}
