import {changeSummary, type Change} from './plan.js';
import {githubError, splitRepo, type GithubClient} from '../lib/http/github.js';

export type PullRequestResult = {number: number; url: string; created: boolean};

/**
 * Open a pull request from `branch` into `base`, or update the one already open for that branch:
 * a scheduled run never piles up duplicates.
 */
export async function openOrUpdatePullRequest(
  client: GithubClient,
  options: {repo: string; branch: string; base: string; title: string; body: string},
): Promise<PullRequestResult> {
  const {owner, repo} = splitRepo(options.repo);
  try {
    const {data: open} = await client.rest.pulls.list({
      owner,
      repo,
      state: 'open',
      head: `${owner}:${options.branch}`,
    });
    const existing = open.find(pr => pr.head.ref === options.branch);
    if (existing) {
      const {data} = await client.rest.pulls.update({
        owner,
        repo,
        pull_number: existing.number,
        title: options.title,
        body: options.body,
      });
      return {number: data.number, url: data.html_url, created: false};
    }
    const {data} = await client.rest.pulls.create({
      owner,
      repo,
      head: options.branch,
      base: options.base,
      title: options.title,
      body: options.body,
    });
    return {number: data.number, url: data.html_url, created: true};
  } catch (error) {
    throw githubError(error, `open a pull request on ${options.repo}`);
  }
}

/** A Dependabot-style body: one row per package, old → new, with where it came from. */
export function pullRequestBody(changes: Change[], appRef: string | undefined): string {
  const rows = changes.map(change => {
    const {artifact, versions} = changeSummary(change);
    const what = change.kind === 'updated' ? versions : `${change.kind} ${versions}`;
    return row(artifact.name, artifact.ecosystem, what, artifact.source);
  });
  return [
    `Updates the vendor repository${appRef ? ` for app ${appRef}` : ''}, written by repodeploy vendor-sync.`,
    '',
    '| Package | Ecosystem | Change | Source |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    'Every artifact was verified against the hash the app pins (lockfile integrity, requirements --hash, deploy.json sha256).',
  ].join('\n');
}

function row(name: string, ecosystem: string, change: string, source: string): string {
  const link = /^https?:\/\//.test(source) ? `[${new URL(source).host}](${source})` : source;
  return `| \`${name}\` | ${ecosystem} | ${change} | ${link} |`;
}

/** The commit message: a summary line, then what was added, updated (old → new) and removed. */
export function commitMessage(changes: Change[], appRef: string | undefined): string {
  const count = (kind: Change['kind']) => changes.filter(c => c.kind === kind).length;
  const parts = (['added', 'updated', 'removed', 'restored'] as const)
    .filter(kind => count(kind) > 0)
    .map(kind => `${count(kind)} ${kind}`);
  const lines = [
    `vendor-sync: ${parts.join(', ') || 'no changes'}${appRef ? ` for app ${appRef}` : ''}`,
    '',
  ];
  for (const [title, kind] of [
    ['Added', 'added'],
    ['Updated', 'updated'],
    ['Removed', 'removed'],
    ['Restored', 'restored'],
  ] as const) {
    const items = changes.filter(c => c.kind === kind).map(changeSummary);
    if (items.length === 0) continue;
    const sep = kind === 'updated' ? ':' : '';
    lines.push(
      `${title}:`,
      ...items.map(
        ({artifact, versions}) => `  ${artifact.ecosystem} ${artifact.name}${sep} ${versions}`,
      ),
      '',
    );
  }
  return `${lines.join('\n').trimEnd()}\n`;
}
