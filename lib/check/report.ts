import type {CheckItem, CheckReport} from './check.js';
import {ExitCode} from '../support/errors.js';
import {githubError, splitRepo, type GithubClient} from '../http/github.js';
import {redact} from '../support/redact.js';

/** 0 deployable, 11 not deployable, 12 could not check (docs/exit-codes.md). */
export function checkExitCode(report: CheckReport): number {
  if (report.deployable) return ExitCode.ok;
  return report.couldNotCheck && !report.checks.some(c => c.status === 'fail')
    ? ExitCode.couldNotCheck
    : ExitCode.notDeployable;
}

export function verdict(report: CheckReport): string {
  const code = checkExitCode(report);
  if (code === ExitCode.ok) return 'deployable';
  return code === ExitCode.couldNotCheck ? 'could not check' : 'NOT deployable';
}

const MARK: Record<CheckItem['status'], string> = {
  pass: 'ok  ',
  fail: 'FAIL',
  error: 'ERR ',
  skip: 'skip',
};

/** The readable summary: one line per check, the problem and the fix under a failed one. */
export function formatReport(report: CheckReport): string {
  const lines = [`check ${report.rev} of ${report.repo}${report.sha ? ` (${report.sha})` : ''}`];
  for (const item of report.checks) {
    lines.push(`  ${MARK[item.status]} ${item.title}`);
    if (item.status !== 'pass')
      for (const line of item.message.split('\n')) lines.push(`         ${line}`);
    if (item.fix) lines.push(`         fix: ${item.fix}`);
  }
  lines.push(`${verdict(report)} (${(report.durationMs / 1000).toFixed(1)} s)`);
  return `${lines.join('\n')}\n`;
}

/** JUnit XML, one test case per check, for CI systems that show test reports. */
export function junitXml(report: CheckReport): string {
  const count = (status: CheckItem['status']) =>
    report.checks.filter(c => c.status === status).length;
  const cases = report.checks.map(item => {
    const open = `    <testcase classname="repodeploy.check" name="${xml(item.id)}: ${xml(item.title)}" time="${(item.durationMs / 1000).toFixed(3)}"`;
    const detail = xml(item.fix ? `${item.message}\nfix: ${item.fix}` : item.message);
    const firstLine = xml(item.message.split('\n')[0] ?? '');
    switch (item.status) {
      case 'pass':
        return `${open}/>`;
      case 'skip':
        return `${open}>\n      <skipped message="${firstLine}"/>\n    </testcase>`;
      case 'fail':
        return `${open}>\n      <failure message="${firstLine}" type="not-deployable">${detail}</failure>\n    </testcase>`;
      case 'error':
        return `${open}>\n      <error message="${firstLine}" type="could-not-check">${detail}</error>\n    </testcase>`;
    }
  });
  const attrs = `tests="${report.checks.length}" failures="${count('fail')}" errors="${count('error')}" skipped="${count('skip')}" time="${(report.durationMs / 1000).toFixed(3)}"`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="repodeploy check" ${attrs}>`,
    `  <testsuite name="deploy check ${xml(report.rev)}${report.sha ? ` (${report.sha})` : ''}" ${attrs}>`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

function xml(text: string): string {
  return (
    text
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      // eslint-disable-next-line no-control-regex -- characters XML 1.0 cannot carry
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '')
  );
}

export type PostedStatus = {
  /** The state asked for: `success`, `failure` or `error`. */
  state: string;
  /** Why GitHub refused to set it (HTTP 403 or 404); undefined when it was set. */
  refused?: string;
};

/**
 * Post the verdict as a commit status (context `repodeploy/check`) on the checked commit.
 * A refusal (403 that is no rate limit, 404) is returned, not thrown: a pull request from a fork
 * runs with a read-only token, and the verdict is still the answer the caller asked for.
 */
export async function postCommitStatus(
  client: GithubClient,
  options: {repo: string; report: CheckReport; targetUrl?: string | undefined},
): Promise<PostedStatus> {
  const {report} = options;
  if (!report.sha) throw new Error('no commit to post a status on');
  const code = checkExitCode(report);
  const state =
    code === ExitCode.ok ? 'success' : code === ExitCode.couldNotCheck ? 'error' : 'failure';
  const firstProblem = report.checks.find(c => c.status === 'fail' || c.status === 'error');
  const description = (
    firstProblem
      ? `${verdict(report)}: ${firstProblem.id}: ${firstProblem.message.split('\n')[0] ?? ''}`
      : 'deployable: pins, vendor, hashes and offline install checked'
  ).slice(0, 140);
  try {
    await client.rest.repos.createCommitStatus({
      ...splitRepo(options.repo),
      sha: report.sha,
      state,
      context: 'repodeploy/check',
      description,
      ...(options.targetUrl ? {target_url: options.targetUrl} : {}),
    });
  } catch (error) {
    const refused = refusal(error);
    if (refused !== undefined) return {state, refused};
    throw githubError(error, `post a commit status on ${options.repo}`);
  }
  return {state};
}

/**
 * GitHub's answer when the token may not set statuses: 403 "Resource not accessible by
 * integration" (a read-only GITHUB_TOKEN) or 404 (the token cannot see the repository). A 403
 * that is a rate limit is not a refusal; it was already waited out and failed.
 */
function refusal(error: unknown): string | undefined {
  const {status, response} = error as {
    status?: number;
    response?: {headers?: Record<string, string | undefined>; data?: unknown};
  };
  if (status !== 403 && status !== 404) return undefined;
  if (response?.headers?.['x-ratelimit-remaining'] === '0') return undefined;
  const data = response?.data as {message?: unknown} | undefined;
  const message = typeof data?.message === 'string' ? `: ${data.message}` : '';
  return redact(`HTTP ${status}${message}`);
}
