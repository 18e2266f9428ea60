/**
 * The signing policy applied to a whole changeset: the app rev (a signed commit, or the signed tag
 * `--rev` names, as the policy requires) and the vendor commit it pins. Deploy, check and bundle
 * call {@link verifyChangesetSignatures} once both commits are in their stores and before anything
 * is written, so a refused changeset leaves no trace on the node.
 */
import {SignatureError, SourceError} from '../support/errors.js';
import {peelToCommit, type GitStore} from '../git/store.js';
import type {SigningPolicy} from './policy.js';
import {refusal} from './refusal.js';
import {verifyCommitSignature, verifyTagSignature, type Signer} from './verify.js';

export type AppRev = {
  /** The object the rev named, before peeling: an annotated tag's own id, or the commit's. */
  named: string;
  /** The commit it stands for (what is deployed). */
  commit: string;
};

/**
 * Verify the app rev as `policy.app.require` says: `commit` checks the commit's signature, `tag`
 * the annotated tag's (which must point at the commit), `commit-or-tag` the tag's when the rev
 * names a signed tag, and otherwise the commit's.
 * @example await verifyAppRev(appStore, {named: tagOid, commit: sha}, policy)
 */
export async function verifyAppRev(
  store: GitStore,
  rev: AppRev,
  policy: SigningPolicy,
): Promise<Signer> {
  const {require} = policy.app;
  const type = rev.named === rev.commit ? 'commit' : await store.objectType(rev.named);
  if (type === undefined) {
    throw new SourceError(
      `The app rev names ${rev.named}, which the store ${store.gitdir} does not hold, so its signature cannot be checked.`,
      'Fetch the tag object itself, not only the commit it points at.',
    );
  }
  const isTag = type === 'tag';
  if (isTag && require !== 'commit') {
    try {
      const signer = await verifyTagSignature(store, rev.named, 'app', policy);
      if ((await peelToCommit(store, rev.named)) !== rev.commit) {
        const why = `it does not point at the commit ${rev.commit}`;
        throw refusal(
          {repo: 'app', oid: rev.named, object: 'tag'},
          'bad-signature',
          why,
          'Give the tag itself as --rev.',
        );
      }
      return signer;
    } catch (error) {
      // Either will do: an unsigned tag on a signed commit is still a signed commit.
      const unsigned = error instanceof SignatureError && error.reason === 'unsigned';
      if (!(unsigned && require === 'commit-or-tag')) throw error;
    }
  }
  if (require === 'tag' && !isTag) {
    const why = 'the policy requires a signed annotated tag, and --rev names a commit';
    throw refusal(
      {repo: 'app', oid: rev.commit, object: 'commit'},
      'unsigned',
      why,
      `Tag it with git tag -s and give the tag as --rev (policy: ${policy.file}).`,
    );
  }
  return verifyCommitSignature(store, rev.commit, 'app', policy);
}

/** The signers of a changeset, to record in release.json, history and status. */
export type ChangesetSigners = {app: Signer; vendor: Signer | undefined};

/**
 * Verify a changeset against the node's policy: the app rev, then the vendor commit it pins
 * (unless the policy says `"vendor": {"require": "none"}` or the app pins no vendor commit).
 * Throws the first SignatureError; call it before anything is written.
 * @example
 * const signers = await verifyChangesetSignatures({app: {store, rev: {named, commit}}, vendor: {store: vendorStore, commit: pin}}, policy)
 */
export async function verifyChangesetSignatures(
  changeset: {
    app: {store: GitStore; rev: AppRev};
    vendor?: {store: GitStore; commit: string} | undefined;
  },
  policy: SigningPolicy,
): Promise<ChangesetSigners> {
  const app = await verifyAppRev(changeset.app.store, changeset.app.rev, policy);
  const {vendor} = changeset;
  if (!vendor || policy.vendor.require === 'none') return {app, vendor: undefined};
  return {app, vendor: await verifyCommitSignature(vendor.store, vendor.commit, 'vendor', policy)};
}
