/**
 * Signers as they are recorded (release.json, a bundle's metadata, history), and the check a node
 * makes of a bundle's recorded signers: a bundle carries no git objects, so the signatures were
 * verified when it was made (`deploy bundle --signing-policy`), and the node trusts the bundle pin
 * (the sha256 it was told) for that record, as it does for the bundle's tree.
 */
import {z} from 'zod';
import type {SignatureError} from '../support/errors.js';
import type {ChangesetSigners} from './changeset.js';
import type {RepoName, SigningPolicy} from './policy.js';
import {refusal, type Subject} from './refusal.js';
import type {Signer} from './verify.js';

export const signerSchema = z.object({
  repo: z.enum(['app', 'vendor']),
  oid: z.string(),
  object: z.enum(['commit', 'tag']),
  format: z.enum(['ssh', 'openpgp']),
  key: z.string(),
  principal: z.string(),
  allowedBy: z.string(),
});

/** `signatures` of release.json and of a bundle's metadata: who signed the changeset. */
export const signaturesSchema = z.object({app: signerSchema, vendor: signerSchema.optional()});

export type RecordedSigners = z.infer<typeof signaturesSchema>;

/** The record of verified signers: `vendor` left out when it was not checked. */
export function recordSigners(signers: ChangesetSigners): RecordedSigners {
  return {app: signers.app, ...(signers.vendor ? {vendor: signers.vendor} : {})};
}

/** `SHA256:… ann@example.com (ssh)`: one signer on one line, for status and plans. */
export function describeSigner(signer: Signer): string {
  return `${signer.object} ${signer.oid.slice(0, 12)} signed by ${signer.principal} (${signer.format} ${signer.key})`;
}

/**
 * Check the signers a bundle records against the node's own policy: each must be there and its key
 * listed for that repository on this node, and a tag must be what was signed when the policy
 * requires one. Throws a SignatureError (exit 14) before anything is written.
 * @example checkRecordedSigners(bundle.meta.signatures, {app: sha, vendor: pin}, policy, file)
 */
export function checkRecordedSigners(
  recorded: RecordedSigners | undefined,
  changeset: {app: string; vendor: string | null},
  policy: SigningPolicy,
  bundle: string,
): ChangesetSigners {
  const app = checkOne(
    recorded?.app,
    {repo: 'app', oid: changeset.app, object: 'commit'},
    policy,
    bundle,
  );
  if (policy.app.require === 'tag' && app.object !== 'tag') {
    throw refusal(
      {repo: 'app', oid: changeset.app, object: 'commit'},
      'unsigned',
      `the policy requires a signed annotated tag, and ${bundle} was made from a signed commit`,
      'Make the bundle from the signed tag (deploy bundle --rev TAG --signing-policy ...).',
    );
  }
  if (!changeset.vendor || policy.vendor.require === 'none') return {app, vendor: undefined};
  const subject: Subject = {repo: 'vendor', oid: changeset.vendor, object: 'commit'};
  return {app, vendor: checkOne(recorded?.vendor, subject, policy, bundle)};
}

function checkOne(
  signer: Signer | undefined,
  subject: Subject,
  policy: SigningPolicy,
  bundle: string,
): Signer {
  if (!signer) {
    throw refusal(
      subject,
      'unsigned',
      `${bundle} records no verified signer for it (it was made without --signing-policy)`,
      'Make the bundle with deploy bundle --signing-policy FILE, which verifies the signatures and records the signers.',
    );
  }
  if (!listed(policy, subject.repo, signer.key)) throw unlisted(subject, signer, policy);
  return signer;
}

function listed(policy: SigningPolicy, repo: RepoName, key: string): boolean {
  const {ssh, openpgp} = policy[repo].signers;
  return ssh.some(s => s.key.fingerprint === key) || openpgp.some(k => k.fingerprint === key);
}

function unlisted(subject: Subject, signer: Signer, policy: SigningPolicy): SignatureError {
  const other: RepoName = subject.repo === 'app' ? 'vendor' : 'app';
  const elsewhere = listed(policy, other, signer.key);
  return refusal(
    subject,
    elsewhere ? 'not-allowed' : 'unknown-key',
    elsewhere
      ? `the bundle records key ${signer.key}, which is allowed for the ${other} repository only`
      : `the bundle records key ${signer.key}, which this node's policy does not list`,
    `List the key for "${subject.repo}" in ${policy.file}, or make the bundle from a changeset signed by a key it lists.`,
  );
}
