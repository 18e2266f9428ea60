import {recordSigners, type RecordedSigners} from '../signing/recorded.js';
import type {Deps} from '../support/deps.js';
import {newRun, type AppSource, type DeployOptions, type VendorSource} from './run.js';
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

export type {DeployOptions} from './run.js';

/**
 * A deploy, step by step (lib/deploy/steps/). Each runs only when it applies (a bundle or git, a
 * hook the app declares); `deploy --dry-run` plans the same list (lib/deploy/plan.ts).
 */
export const DEPLOY_STEPS: readonly Step[] = [
  readSigningPolicy,
  verifyBundleStep,
  verifyBundleSignersStep,
  prepareNode,
  maintenanceOn,
  bundleSource,
  resolveAppStep,
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

export type DeployResult = {
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
  const source = run.source;
  if (!source || !run.releaseId || !run.releaseDir)
    throw new Error('deploy ended without a release');
  return {
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
