import * as fse from 'fs-extra/esm';
import {appendHistory, type HistoryRecord} from '../node/history.js';
import {withLock} from '../node/lock.js';
import {recordSigners} from '../signing/recorded.js';
import {asDeployError, DeployError, describeError} from '../support/errors.js';
import type {DeployPlan} from './plan.js';
import type {DeployRun} from './run.js';

/**
 * When a step runs, which decides what a failure of it means:
 * - `unlocked`: before the node's lock is taken; nothing in the root is touched yet.
 * - `locked`: under the lock, before or while the release is built; a failure leaves current
 *   as it was (the steps' own `undo` mark a started release failed).
 * - `live`: after the switch; a failure switches back (the switch step's `undo`).
 * - `after`: housekeeping once the new release is live; a failure is reported, not fatal.
 */
export type Stage = 'unlocked' | 'locked' | 'live' | 'after';

/** One named step of a deploy. */
export type Step = {
  name: string;
  stage: Stage;
  /** Whether the step applies to this run (no shared files declared: no linking). */
  when?: (run: DeployRun) => boolean;
  run: (run: DeployRun) => Promise<void>;
  /**
   * A dry run: what the step would do, added to the plan, changing nothing in the node root
   * (resolving and fetching go to a scratch store). Absent, the step has no part in the plan.
   */
  dryRun?: (run: DeployRun, plan: DeployPlan) => Promise<void> | void;
  /** Put right what this step did, when a later step fails (run in reverse order). */
  undo?: (run: DeployRun, error: unknown) => Promise<void>;
};

/**
 * Run `steps` in order, the unlocked ones first and the rest under the node's lock; record how
 * long each took, and the outcome in the node's history, success or failure, in one place.
 */
export async function runSteps(run: DeployRun, steps: readonly Step[]): Promise<void> {
  const done: Step[] = [];
  try {
    await fse.ensureDir(run.node.root);
    await runEach(
      run,
      steps.filter(s => s.stage === 'unlocked'),
      done,
    );
    // The success line is written while the lock is still held, so the history of a node is in
    // the order its runs finished: a rollback waiting for the lock records after this deploy.
    await withLock(
      run.node.root,
      {user: run.deps.identity.user, command: `deploy --rev ${run.options.rev}`},
      async () => {
        await runEach(
          run,
          steps.filter(s => s.stage !== 'unlocked'),
          done,
        );
        await recordOutcome(run, undefined);
      },
    );
  } catch (thrown) {
    const error = asDeployError(thrown);
    await recordOutcome(run, error).catch(() => undefined);
    throw error;
  }
}

async function runEach(run: DeployRun, steps: readonly Step[], done: Step[]): Promise<void> {
  for (const step of steps) {
    if (step.when && !step.when(run)) continue;
    const started = run.deps.clock().getTime();
    try {
      await step.run(run);
    } catch (error) {
      if (step.stage !== 'after') {
        for (const earlier of [...done].reverse()) await earlier.undo?.(run, error);
        throw error;
      }
      run.deps.reporter.warn(`${step.name} failed: ${describeError(error)}`);
    }
    run.phases.push({step: step.name, ms: run.deps.clock().getTime() - started});
    done.push(step);
  }
}

/** A dry run of the same steps: each adds what it would do to `plan`. */
export async function planSteps(
  run: DeployRun,
  steps: readonly Step[],
  plan: DeployPlan,
): Promise<void> {
  for (const step of steps) {
    if (!step.dryRun || (step.when && !step.when(run))) continue;
    await step.dryRun(run, plan);
  }
}

/** The history line of this run: what it had found when it ended, and how it ended. */
async function recordOutcome(run: DeployRun, error: unknown): Promise<void> {
  const {deps, options} = run;
  const {appSha, vendorSha} = run;
  const entry: HistoryRecord = {
    command: 'deploy',
    user: deps.identity.user,
    host: deps.identity.host,
    requestedRev: options.rev,
    time: deps.clock().toISOString(),
    outcome: error === undefined ? 'success' : 'failure',
    ...(appSha ? {appSha} : {}),
    ...(vendorSha ? {vendorSha} : {}),
    ...(run.signers ? {signatures: recordSigners(run.signers)} : {}),
    ...(run.releaseId ? {releaseId: run.releaseId} : {}),
    ...(run.previous ? {previousReleaseId: run.previous} : {}),
    durationMs: deps.clock().getTime() - run.started.getTime(),
    ...(error !== undefined
      ? {
          error: {
            code: error instanceof DeployError ? error.code : 'EINTERNAL',
            message: describeError(error),
          },
        }
      : {}),
  };
  await appendHistory(run.node.root, entry);
}
