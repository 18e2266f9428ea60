/**
 * Check a commit or tag of the app or vendor repository against the node's signing policy
 * (issue 20): read the object from the store, cut it into payload and signature as git does,
 * verify the signature in-process, and match the key to the signers the policy allows for that
 * repository. Returns who signed, or throws a SignatureError that says why not and what to do.
 */
import {Errors} from 'isomorphic-git';
import {SourceError} from '../support/errors.js';
import {ObjectReader} from '../git/objects.js';
import type {GitStore} from '../git/store.js';
import {matchPatternList, type AllowedSigner} from './allowed-signers.js';
import {PGP_ARMOR_BEGIN, verifyPgpSignature} from './openpgp.js';
import type {RepoName, SigningPolicy} from './policy.js';
import {
  addKeyHint,
  keyNotAllowed,
  policyFix,
  refusal,
  rewrap,
  signHint,
  TAMPERED,
  type Subject,
} from './refusal.js';
import {parseSshSignature, SSH_ARMOR_BEGIN, verifySshSignature} from './sshsig.js';
import {splitCommit, splitTag, type SignedObject} from './signed-object.js';

/** Who signed a commit or tag, as release.json, history and status will record it. */
export type Signer = {
  repo: RepoName;
  /** The commit or tag object that carries the signature. */
  oid: string;
  object: 'commit' | 'tag';
  format: 'ssh' | 'openpgp';
  /** `SHA256:…` (ssh-keygen -l) for SSH keys; the primary key's hex fingerprint for OpenPGP. */
  key: string;
  /** SSH: the committer's or tagger's email the allowed signers matched; OpenPGP: the key's user id. */
  principal: string;
  /** Where the key is allowed: `file:line` of allowed_signers, or the OpenPGP key file. */
  allowedBy: string;
};

/** The SSH namespace git signs commits and tags in (`ssh-keygen -Y sign -n git`). */
const GIT_NAMESPACE = 'git';

/**
 * Verify the signature on commit `oid` of `repo` against the policy's signers for that repository.
 * @example const signer = await verifyCommitSignature(store, sha, 'app', policy)
 */
export async function verifyCommitSignature(
  store: GitStore,
  oid: string,
  repo: RepoName,
  policy: SigningPolicy,
): Promise<Signer> {
  const subject: Subject = {repo, oid, object: 'commit'};
  const raw = await readRaw(store, oid, 1, subject);
  return verifySigned(subject, () => splitCommit(raw), policy);
}

/**
 * Verify the signature on annotated tag `tagOid` of `repo` (the tag object, not the commit).
 * @example const signer = await verifyTagSignature(store, tagOid, 'app', policy)
 */
export async function verifyTagSignature(
  store: GitStore,
  tagOid: string,
  repo: RepoName,
  policy: SigningPolicy,
): Promise<Signer> {
  const subject: Subject = {repo, oid: tagOid, object: 'tag'};
  const raw = await readRaw(store, tagOid, 4, subject);
  return verifySigned(subject, () => splitTag(raw), policy);
}

async function readRaw(
  store: GitStore,
  oid: string,
  type: number,
  subject: Subject,
): Promise<Buffer> {
  const objects = ObjectReader.open(store);
  try {
    const object = await objects.read(oid).catch((error: unknown) => {
      if (!(error instanceof Errors.NotFoundError)) throw error;
      throw new SourceError(
        `The ${subject.repo} ${subject.object} ${oid} is not in the store ${store.gitdir}, so its signature cannot be checked.`,
        'Fetch it first (for a tag: the tag object itself, not only the commit it points at).',
        {cause: error},
      );
    });
    if (object.type !== type)
      throw refusal(
        subject,
        'bad-signature',
        `it is not a ${subject.object} object`,
        policyFix(subject),
      );
    return object.data;
  } finally {
    objects.close();
  }
}

async function verifySigned(
  subject: Subject,
  split: () => SignedObject,
  policy: SigningPolicy,
): Promise<Signer> {
  let signed: SignedObject;
  try {
    signed = split();
  } catch (error) {
    throw rewrap(subject, error);
  }
  const {signature} = signed;
  if (signature === undefined) {
    throw refusal(subject, 'unsigned', 'it is not signed', signHint(subject, policy));
  }
  if (signature.startsWith(SSH_ARMOR_BEGIN)) return verifySsh(subject, signed, signature, policy);
  if (signature.startsWith(PGP_ARMOR_BEGIN)) return verifyPgp(subject, signed, signature, policy);
  throw refusal(
    subject,
    'bad-signature',
    'its signature is neither SSH nor OpenPGP (X.509 is not supported)',
    signHint(subject, policy),
  );
}

function verifySsh(
  subject: Subject,
  signed: SignedObject,
  armored: string,
  policy: SigningPolicy,
): Signer {
  let parsed;
  try {
    parsed = parseSshSignature(armored);
  } catch (error) {
    throw rewrap(subject, error);
  }
  const {fingerprint} = parsed.publicKey;
  if (parsed.namespace !== GIT_NAMESPACE) {
    const why = `its SSH signature was made for namespace "${parsed.namespace}", not "git"`;
    throw refusal(
      subject,
      'bad-signature',
      why,
      'A signature made for something else is not a signature of this commit: sign it with git.',
    );
  }
  if (!verifySshSignature(parsed, signed.payload, GIT_NAMESPACE)) {
    throw refusal(
      subject,
      'bad-signature',
      `its SSH signature by ${fingerprint} does not match its content`,
      TAMPERED,
    );
  }
  const entries = policy[subject.repo].signers.ssh.filter(s =>
    s.key.blob.equals(parsed.publicKey.blob),
  );
  if (entries.length === 0)
    throw keyNotAllowed(subject, fingerprint, policy, other =>
      other.signers.ssh.some(s => s.key.blob.equals(parsed.publicKey.blob)),
    );
  const entry = matchEntry(subject, entries, signed, fingerprint);
  return {
    ...subject,
    format: 'ssh',
    key: fingerprint,
    principal: signed.identity?.email ?? '',
    allowedBy: entry.source,
  };
}

/**
 * The allowed_signers line that lets this key sign for this committer at this time, as
 * `ssh-keygen -Y verify -I <email> -Overify-time=<commit time>` would pick it (git passes both).
 */
function matchEntry(
  subject: Subject,
  entries: AllowedSigner[],
  signed: SignedObject,
  fingerprint: string,
): AllowedSigner {
  const identity = signed.identity;
  const who = subject.object === 'commit' ? 'committer' : 'tagger';
  const inNamespace = entries.filter(
    e => e.namespaces === undefined || matchPatternList(GIT_NAMESPACE, e.namespaces),
  );
  if (inNamespace.length === 0) {
    const where = entries.map(e => e.source).join(', ');
    throw refusal(
      subject,
      'not-allowed',
      `key ${fingerprint} is not allowed to sign in namespace "git" (${where})`,
      'Add "git" to the namespaces option of that allowed_signers line.',
    );
  }
  const forWho = inNamespace.filter(
    e => identity !== undefined && matchPatternList(identity.email, e.principals),
  );
  if (!identity || forWho.length === 0) {
    const allowed = inNamespace.map(e => `${e.principals} (${e.source})`).join(', ');
    throw refusal(
      subject,
      'wrong-principal',
      `key ${fingerprint} is allowed for ${allowed}, not for the ${who} ${identity ? `<${identity.email}>` : '(none)'}`,
      `Sign with the ${who} email the key is listed for (git config user.email), or add that email to the key's principals.`,
    );
  }
  const inTime = forWho.find(
    e =>
      (!e.validAfter || identity.time >= e.validAfter) &&
      (!e.validBefore || identity.time <= e.validBefore),
  );
  if (!inTime) {
    const windows = forWho
      .map(e =>
        `${e.validAfter ? `from ${e.validAfter.toISOString()}` : ''}${e.validBefore ? ` until ${e.validBefore.toISOString()}` : ''} (${e.source})`.trim(),
      )
      .join(', ');
    throw refusal(
      subject,
      'expired',
      `key ${fingerprint} is valid ${windows}, and the ${subject.object} is dated ${identity.time.toISOString()}`,
      'Sign it again with a key whose valid-after/valid-before window covers its date, or change that window in allowed_signers.',
    );
  }
  return inTime;
}

async function verifyPgp(
  subject: Subject,
  signed: SignedObject,
  armored: string,
  policy: SigningPolicy,
): Promise<Signer> {
  const all = [...policy.app.signers.openpgp, ...policy.vendor.signers.openpgp];
  const verdict = await verifyPgpSignature(armored, signed.payload, all);
  if (verdict.status === 'bad') {
    throw refusal(
      subject,
      'bad-signature',
      `its OpenPGP signature does not verify (${verdict.why})`,
      TAMPERED,
    );
  }
  if (verdict.status === 'unknown-key') {
    throw refusal(
      subject,
      'unknown-key',
      `it is signed by OpenPGP key ${verdict.keyIds.join(', ')}, which the policy does not list`,
      addKeyHint(subject, policy),
    );
  }
  const {key} = verdict;
  const allowed = policy[subject.repo].signers.openpgp.find(k => k.fingerprint === key.fingerprint);
  if (!allowed) throw keyNotAllowed(subject, key.fingerprint, policy, () => true);
  return {
    ...subject,
    format: 'openpgp',
    key: key.fingerprint,
    principal: key.userId ?? key.fingerprint,
    allowedBy: allowed.source,
  };
}
