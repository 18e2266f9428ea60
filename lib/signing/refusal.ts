/**
 * The messages of a signing refusal: what was refused and why, then what to do about it. Kept
 * apart from the checks in verify.ts so the checks read as decisions.
 */
import {SignatureError} from '../support/errors.js';
import type {RepoName, SigningPolicy} from './policy.js';

/** The object a refusal is about. */
export type Subject = {repo: RepoName; oid: string; object: 'commit' | 'tag'};

export const TAMPERED =
  'The content is not what was signed: it was changed after signing, or the signature is corrupt. Do not deploy it; sign the intended commit again from a trusted copy.';

export function keyNotAllowed(
  subject: Subject,
  key: string,
  policy: SigningPolicy,
  inOther: (other: SigningPolicy[RepoName]) => boolean,
): SignatureError {
  const otherName: RepoName = subject.repo === 'app' ? 'vendor' : 'app';
  if (inOther(policy[otherName])) {
    return refusal(
      subject,
      'not-allowed',
      `key ${key} is allowed for the ${otherName} repository only`,
      `If it should sign ${subject.repo} ${subject.object}s too, list it for "${subject.repo}" in ${policy.file}.`,
    );
  }
  return refusal(
    subject,
    'unknown-key',
    `it is signed by key ${key}, which the policy does not list`,
    addKeyHint(subject, policy),
  );
}

export function addKeyHint(subject: Subject, policy: SigningPolicy): string {
  return `Sign with a key the policy allows for the ${subject.repo} repository, or add this key to a file "${subject.repo}" names in ${policy.file}.`;
}

export function signHint(subject: Subject, policy: SigningPolicy): string {
  const how = subject.object === 'tag' ? 'git tag -s' : 'git commit -S';
  return `Sign it (${how}; SSH keys: git -c gpg.format=ssh -c user.signingkey=KEY.pub) with a key ${policy.file} allows for the ${subject.repo} repository; see docs/signing.md.`;
}

export function policyFix(subject: Subject): string {
  return `Give the id of a ${subject.object}.`;
}

/** A SignatureError whose message names the repository, the object and the reason. */
export function refusal(
  subject: Subject,
  reason: SignatureError['reason'],
  why: string,
  hint: string,
  cause?: unknown,
): SignatureError {
  return new SignatureError(
    `The ${subject.repo} ${subject.object} ${subject.oid} is refused by the signing policy: ${why}.`,
    reason,
    hint,
    cause === undefined ? undefined : {cause},
  );
}

export function rewrap(subject: Subject, error: unknown): unknown {
  if (!(error instanceof SignatureError)) return error;
  const why = error.message.replace(/\.$/, '');
  return refusal(
    subject,
    error.reason,
    why.charAt(0).toLowerCase() + why.slice(1),
    TAMPERED,
    error,
  );
}
