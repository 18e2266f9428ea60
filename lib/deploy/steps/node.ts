import * as fse from 'fs-extra/esm';
import {recoverInterrupted} from '../../node/lifecycle.js';
import {maintenanceStatus, setMaintenance} from '../../node/maintenance.js';
import type {Step} from '../runner.js';

/**
 * Before anything is built: note what is live, and clear what a run killed midway left (switch
 * links, installer scratch, a release left building, an installer still running).
 */
export const prepareNode: Step = {
  name: 'prepare the node',
  stage: 'locked',
  async run(run) {
    const {releases, deps} = run;
    // protection R7-after-fetch: nothing is made in releases/ before the changeset is fetched
    run.previous = await releases.currentForSwitch();
    await releases.removeStaleSwitchLinks();
    await fse.remove(run.node.scratch);
    const recovered = await recoverInterrupted(releases);
    if (recovered.length > 0)
      deps.reporter.info(`cleaned up after an interrupted run: ${recovered.join(', ')}`);
  },
  async dryRun(run, plan) {
    plan.current = (await run.releases.current()) ?? null;
  },
};

/** `--maintenance`: the flag is on for the whole deploy, and stays on if it fails. */
export const maintenanceOn: Step = {
  name: 'maintenance on',
  stage: 'locked',
  when: run => run.options.maintenance === true,
  async run({node, deps, options}) {
    await setMaintenance(node.root, true, {
      by: deps.identity.user,
      reason: `deploy --rev ${options.rev}`,
      now: deps.clock(),
    });
    deps.reporter.info('maintenance mode on');
  },
  async undo({node, deps}) {
    if ((await maintenanceStatus(node.root).catch(() => undefined))?.on) {
      deps.reporter.warn(
        'maintenance mode stays on: the deploy did not pass its health check. Turn it off with `deploy maintenance off` once the node is sound.',
      );
    }
  },
};

/** The last step of a `--maintenance` deploy that went live. */
export const maintenanceOff: Step = {
  name: 'maintenance off',
  stage: 'after',
  when: run => run.options.maintenance === true,
  async run({node, deps}) {
    await setMaintenance(node.root, false, {by: deps.identity.user, now: deps.clock()});
    deps.reporter.info('maintenance mode off');
  },
};
