import {RevError, UsageError} from '../support/errors.js';
import {formatLocation} from './location.js';
import {addStats, type FetchProgress, type FetchStats, type Remote} from './remote.js';
import {FULL_SHA, type GitStore} from './store.js';

/** A rev resolved to one commit, which the store now holds. */
export type ResolvedRev = {
  /** What the user asked for. */
  requested: string;
  /** The full 40-hex commit id: what gets recorded. */
  sha: string;
  /**
   * The object the rev named before peeling, which the store now holds too: an annotated tag's
   * own id (whose signature a signing policy may check), otherwise the commit id.
   */
  named: string;
  /** How the rev was read. */
  kind: 'sha' | 'short-sha' | 'tag' | 'branch' | 'ref';
  /** The ref that named it, for tags and branches. */
  ref?: string;
  fetch: FetchStats;
};

const SHORT_SHA = /^[0-9a-f]{7,39}$/i;

/**
 * Resolve `rev` (full sha, unique abbreviated sha of 7+ hex digits, tag, branch or full ref name)
 * against `remote` to exactly one commit, and fetch that commit into `store`.
 *
 * @example
 * const {sha} = await resolveRev('v1.2.0', remote, store)
 */
export async function resolveRev(
  rev: string,
  remote: Remote,
  store: GitStore,
  progress?: FetchProgress,
): Promise<ResolvedRev> {
  checkRevSyntax(rev);
  const where = formatLocation(remote.location);
  if (FULL_SHA.test(rev)) {
    const fetch = await remote.fetchCommit(store, rev, undefined, progress);
    return {requested: rev, sha: rev, named: rev, kind: 'sha', fetch};
  }

  const refs = await remote.listRefs();
  const candidates = refCandidates(rev, refs);
  let searchFetch: FetchStats = {fetched: false, objects: 0, bytes: 0};
  if (SHORT_SHA.test(rev)) {
    const found = await remote.commitsWithPrefix(store, rev.toLowerCase(), progress);
    searchFetch = found.fetch;
    for (const sha of found.commits) {
      candidates.push({sha, kind: 'short-sha', label: `commit ${sha}`});
    }
  }
  const chosen = onlyCandidate(rev, candidates, refs, where);
  const fetch = addStats(
    searchFetch,
    await remote.fetchCommit(store, chosen.sha, chosen.ref, progress),
  );
  const named = chosen.ref ? await remote.refObject(chosen.ref) : undefined;
  return {
    requested: rev,
    sha: chosen.sha,
    named: named ?? chosen.sha,
    kind: chosen.kind,
    ...(chosen.ref ? {ref: chosen.ref} : {}),
    fetch,
  };
}

/** A commit `rev` may name, and how it names it. */
type Candidate = {sha: string; kind: ResolvedRev['kind']; ref?: string; label: string};

/** The refs `rev` may name: itself when it is a full ref name or HEAD, else its tag and branch. */
function refCandidates(rev: string, refs: Map<string, string>): Candidate[] {
  const candidates: Candidate[] = [];
  const fromRef = (ref: string, kind: Candidate['kind'], label: string) => {
    const sha = refs.get(ref);
    if (sha) candidates.push({sha, kind, ref, label});
  };
  if (rev.startsWith('refs/')) fromRef(rev, 'ref', `ref ${rev}`);
  else if (rev === 'HEAD') fromRef('HEAD', 'ref', 'HEAD');
  else {
    fromRef(`refs/tags/${rev}`, 'tag', `tag ${rev}`);
    fromRef(`refs/heads/${rev}`, 'branch', `branch ${rev}`);
  }
  return candidates;
}

/** The one commit the candidates name; an unknown or ambiguous rev is refused. */
function onlyCandidate(
  rev: string,
  candidates: Candidate[],
  refs: Map<string, string>,
  where: string,
): Candidate {
  const distinct = new Map<string, Candidate>();
  for (const candidate of candidates) {
    if (!distinct.has(candidate.sha)) distinct.set(candidate.sha, candidate);
  }
  if (distinct.size === 0) {
    throw new RevError(
      `Unknown rev "${rev}": no branch, tag or commit of that name in ${where}.`,
      suggestRefs(refs),
    );
  }
  if (distinct.size > 1) {
    const list = candidates.map(c => `${c.label} (${c.sha.slice(0, 12)})`).join(', ');
    throw new RevError(
      `Ambiguous rev "${rev}": it names ${list}.`,
      'Give the full 40-hex commit id, or a full ref name such as refs/tags/NAME.',
    );
  }
  return [...distinct.values()][0] as Candidate;
}

/** Refuse revs that cannot be a ref name or a commit id, before touching the network. */
function checkRevSyntax(rev: string): void {
  if (
    rev === '' ||
    // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
    /[\s\x00-\x1f\x7f~^:?*[\\]/.test(rev) ||
    rev.includes('..') ||
    rev.startsWith('-')
  ) {
    throw new UsageError(
      `"${rev}" is not a valid rev.`,
      'Give a commit id (7 to 40 hex digits), a tag or a branch name.',
    );
  }
}

/** What the server advertises, for an unknown rev: its branches and a few tags, or that it has none. */
function suggestRefs(refs: Map<string, string>): string {
  const named = (prefix: string) =>
    [...refs.keys()]
      .filter(ref => ref.startsWith(prefix))
      .map(ref => ref.slice(prefix.length))
      // Newest-looking first: v1.10 before v1.9.
      .sort((a, b) => b.localeCompare(a, 'en', {numeric: true}));
  const list = (names: string[], max: number) =>
    names.slice(0, max).join(', ') +
    (names.length > max ? ` (and ${names.length - max} more)` : '');
  const branches = named('refs/heads/');
  const tags = named('refs/tags/');
  if (branches.length === 0 && tags.length === 0) {
    return 'The repository advertises no branches and no tags: push one, or give a full commit id.';
  }
  const parts = [branches.length > 0 ? `branches ${list(branches, 10)}` : 'no branches'];
  if (tags.length > 0) parts.push(`tags ${list(tags, 5)}`);
  return `The repository advertises ${parts.join('; ')}.`;
}
