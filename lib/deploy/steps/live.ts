import {lstatOrUndefined} from '../../support/fs.js';
import {known, type DeployRun, type LiveRelease} from '../run.js';
import type {Step} from '../runner.js';

/**
 * The release that is live when it already is what this run asks for: the same app and vendor
 * commits and, when `--release-id` names an existing release, that release. A re-run of a
 * roll-out (the same rev, or the same rev and id after it stopped midway) then changes nothing.
 * A `--release-id` naming another existing release is left to the release step, which refuses it.
 */
export async function matchingLive(run: DeployRun): Promise<LiveRelease | undefined> {
  const {releases, options} = run;
  const id = await releases.current();
  if (id === undefined) return undefined;
  const meta = await releases.readMeta(id);
  if (meta?.state !== 'live') return undefined;
  if (meta.app.sha !== known(run, 'appSha') || meta.vendor?.sha !== run.vendorSha) return undefined;
  const wanted = options.releaseId;
  if (wanted !== undefined && wanted !== id && (await lstatOrUndefined(releases.dir(wanted))))
    return undefined;
  return {id, dir: releases.dir(id), meta};
}

/**
 * Once the rev is resolved: nothing to do when that changeset is already live (unless
 * `--force`). The steps after this one do not run then (lib/deploy/deploy.ts).
 */
export const alreadyLiveStep: Step = {
  name: 'check what is live',
  stage: 'locked',
  when: run => run.options.force !== true,
  async run(run) {
    run.live = await matchingLive(run);
    if (run.live)
      run.deps.reporter.info(
        `release ${run.live.id} of ${run.live.meta.app.sha} is already live: nothing to do (--force deploys it again)`,
      );
  },
  async dryRun(run, plan) {
    run.live = await matchingLive(run);
    plan.changed = run.live === undefined;
    if (run.live) plan.releaseId = run.live.id;
  },
};
