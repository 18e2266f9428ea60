import type {ChangesetSigners} from '../../signing/changeset.js';
import {verifyFetchedSignatures} from '../changeset.js';
import {loadSigningPolicy} from '../../signing/policy.js';
import {checkRecordedSigners, recordSigners} from '../../signing/recorded.js';
import {SignatureError} from '../../support/errors.js';
import {known, type DeployRun} from '../run.js';
import type {Step} from '../runner.js';
import type {DeployPlan} from '../plan.js';

const withPolicy = (run: DeployRun) => run.options.signingPolicy !== undefined;

/**
 * The node's policy, from its own command line or environment, never from the changeset: read
 * first, so a policy that is missing or invalid (exit 3) stops the deploy before the lock or a fetch.
 */
export const readSigningPolicy: Step = {
  name: 'read the signing policy',
  stage: 'unlocked',
  when: withPolicy,
  async run(run) {
    run.policy = await loadSigningPolicy(run.options.signingPolicy ?? '', {cwd: run.deps.cwd});
  },
  dryRun: run => readSigningPolicy.run(run),
};

/**
 * With a signing policy, the changeset is refused unless the policy covers it: the app commit (or
 * the tag --rev names) and the vendor commit it pins are verified once both are in their stores,
 * before the release directory is made, so a refused changeset writes nothing to releases/.
 */
export const verifySignaturesStep: Step = {
  name: 'verify the signatures',
  stage: 'locked',
  when: run => withPolicy(run) && !run.options.bundle,
  async run(run) {
    run.signers = await verifyGitSigners(run);
  },
  async dryRun(run, plan) {
    await planSignatures(plan, () => verifyGitSigners(run));
  },
};

/**
 * A bundle carries no git objects: `deploy bundle --signing-policy` verified the signatures and
 * recorded the signers in the bundle's metadata, which the bundle pin covers. The node checks that
 * record against its own policy, before the lock is taken.
 */
export const verifyBundleSignersStep: Step = {
  name: 'check the bundle signers',
  stage: 'unlocked',
  when: run => withPolicy(run) && run.options.bundle !== undefined,
  run(run) {
    const {meta, file} = known(run, 'bundle');
    const changeset = {app: meta.app.sha, vendor: meta.vendor?.sha ?? null};
    run.signers = checkRecordedSigners(meta.signatures, changeset, known(run, 'policy'), file);
    return Promise.resolve();
  },
};

async function verifyGitSigners(run: DeployRun): Promise<ChangesetSigners> {
  const policy = known(run, 'policy');
  const signers = await run.deps.reporter.phase(
    'verify signatures',
    () => {
      run.deps.reporter.detail(`signing policy ${policy.file}`);
      return verifyFetchedSignatures(known(run, 'fetched'), policy);
    },
    found =>
      `app signed by ${found.app.principal}${found.vendor ? `, vendor by ${found.vendor.principal}` : ''}`,
  );
  run.deps.reporter.detail(`app signed by ${signers.app.principal} (${signers.app.key})`);
  if (signers.vendor)
    run.deps.reporter.detail(
      `vendor signed by ${signers.vendor.principal} (${signers.vendor.key})`,
    );
  return signers;
}

/** The plan says who signed, or why the changeset would be refused. */
async function planSignatures(
  plan: DeployPlan,
  verify: () => Promise<ChangesetSigners>,
): Promise<void> {
  try {
    plan.signatures = recordSigners(await verify());
  } catch (error) {
    if (!(error instanceof SignatureError)) throw error;
    plan.signatures = {
      refused: {reason: error.reason, message: error.message, hint: error.hint ?? null},
    };
  }
}
