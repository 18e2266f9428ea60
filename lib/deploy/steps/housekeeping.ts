import {consolidatePacks} from '../../git/pack/merge.js';
import {REPOS_DIR, STORE_NAMES, storeDir} from '../../node/layout.js';
import {planPrune, pruneHeld, prunePolicy} from '../../node/lifecycle.js';
import {describeError} from '../../support/errors.js';
import {plural} from '../../support/format.js';
import {known} from '../run.js';
import type {Step} from '../runner.js';

/** Remove the releases past the node's prune policy, once the new one is live. */
export const prune: Step = {
  name: 'prune',
  stage: 'after',
  async run(run) {
    const pruned = await pruneHeld(run.releases, await prunePolicy(run.node.root));
    run.pruned = pruned.removed;
    if (pruned.removed.length > 0) run.deps.reporter.info(`pruned ${pruned.removed.join(', ')}`);
  },
  async dryRun(run, plan) {
    const current = plan.current;
    // After the switch, the current release becomes a rollback target and the new one current.
    const list = (await run.releases.list()).map(r =>
      r.id === current && r.meta ? {...r, meta: {...r.meta, state: 'retired' as const}} : r,
    );
    const {remove} = planPrune(list, known(run, 'releaseId'), await prunePolicy(run.node.root));
    plan.prune = remove.map(r => r.id);
  },
};

/**
 * Each fetch adds a pack to the node's stores; past a few, merge them into one, so lookups do not
 * slow down deploy after deploy. A store whose merge fails is reported, and the other still merged.
 */
export const mergePacks: Step = {
  name: 'merge packs',
  stage: 'after',
  async run(run) {
    for (const name of STORE_NAMES) {
      const label = `${REPOS_DIR}/${name}.git`;
      await consolidatePacks(storeDir(run.node.repos, name)).then(
        merged => {
          if (merged)
            run.deps.reporter.info(
              `merged ${merged.packs} packs of ${label} into one (${plural(merged.objects, 'object')})`,
            );
        },
        (error: unknown) => {
          run.deps.reporter.warn(`merging the packs of ${label} failed: ${describeError(error)}`);
        },
      );
    }
  },
};
