import {recordInstall, reuseInstall} from '../../install/reuse.js';
import {META_DIR} from '../../node/layout.js';
import {throwIfInterrupted} from '../../node/processes.js';
import {describeError} from '../../support/errors.js';
import {plural} from '../../support/format.js';
import path from 'node:path';
import {installRelease, verifyRelease} from '../install-release.js';
import {known, type DeployRun} from '../run.js';
import type {Step} from '../runner.js';
import {removeEmptyScratch} from './release.js';

/** Every artifact the install will use, checked against the hashes the app pins. */
export const verifyArtifacts: Step = {
  name: 'verify artifacts',
  stage: 'locked',
  async run(run) {
    const source = known(run, 'source');
    run.verified = await verifyRelease({
      releaseDir: known(run, 'releaseDir'),
      settings: source.settings,
      hasVendor: source.vendor !== null,
      env: run.deps.env,
      reporter: run.deps.reporter,
      scratchDir: run.node.scratch,
    });
    throwIfInterrupted('the artifact check');
  },
};

/**
 * Copy the previous release's installed dependencies when every input of the install is the same
 * and they are as their install left them (lib/install/reuse.ts); else install.
 */
export const installDependencies: Step = {
  name: 'install',
  stage: 'locked',
  async run(run) {
    const verified = known(run, 'verified');
    const writer = known(run, 'writer');
    const reusable = await verified.installer?.reuse?.(verified.ctx, verified.verified);
    if (reusable && 'reason' in reusable) run.deps.reporter.skipped(REUSE, reusable.reason);
    else if (reusable) run.reusable = reusable;
    if (!run.reusable || !(await reusePrevious(run))) {
      await installRelease(verified, run.deps.reporter, writer);
    }
    await removeEmptyScratch(run);
  },
  dryRun(run, plan) {
    const install = known(run, 'source').settings.config.install;
    plan.install = install
      ? install.type === 'command'
        ? install.command.join(' ')
        : install.type
      : null;
  },
};

/** The line of the reuse phase: one, whether the reuse happened or not. */
const REUSE = 'reuse install';

/**
 * Whether the previous release's installed dependencies were copied into the new one; one line
 * says so, or why not (nothing is said on a first deploy: there is nothing to reuse).
 */
async function reusePrevious(run: DeployRun): Promise<boolean> {
  const {previous, releases, deps} = run;
  const reusable = known(run, 'reusable');
  if (!previous) return false;
  if (run.options.freshInstall) {
    deps.reporter.skipped(REUSE, '--fresh-install');
    return false;
  }
  // The copy is no process of its own to overlap with: the release is written whole first.
  await known(run, 'writer').finish();
  const previousDir = releases.dir(previous);
  const outcome = await deps.reporter.phase(
    REUSE,
    () =>
      reuseInstall({
        previousDir,
        previousMetaDir: path.join(previousDir, META_DIR),
        releaseDir: known(run, 'releaseDir'),
        key: reusable.key,
        outputs: reusable.outputs,
        inputs: reusable.inputs,
        outsideLinks: reusable.outsideLinks,
        relocate: reusable.relocate,
      }),
    done =>
      done.reused
        ? `copied ${plural(done.files, 'file')} of ${reusable.outputs.join(', ')} from ${previous} (${reusable.inputs ?? 'lockfile, artifacts and install settings'} unchanged)`
        : `skipped: ${done.reason} (previous release ${previous})`,
  );
  return outcome.reused;
}

/**
 * Record what the install left, for the next deploy's reuse: after the after_install hook, so
 * what it leaves in the outputs is part of the record. Only an optimisation for the next deploy:
 * a record that cannot be made is reported.
 */
export const recordInstallStep: Step = {
  name: 'record the install',
  stage: 'locked',
  when: run => run.reusable !== undefined,
  async run(run) {
    const releaseDir = known(run, 'releaseDir');
    const {key, outputs, outsideLinks} = known(run, 'reusable');
    await recordInstall(releaseDir, path.join(releaseDir, META_DIR), key, outputs, {
      outsideLinks,
    }).catch((error: unknown) => {
      run.deps.reporter.warn(`the next deploy will install afresh: ${describeError(error)}`);
    });
  },
};
