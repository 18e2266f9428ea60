import {promises as fsp} from 'node:fs';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import type {CommandModule, Options} from 'yargs';
import type {CheckReport} from '../../check/check.js';
import {UsageError} from '../../support/errors.js';
import {githubToken} from '../../support/credentials.js';
import type {CliContext} from '../io.js';
import {writeJson} from '../io.js';
import {withHelp} from '../help.js';
import {signingPolicy, SIGNING_POLICY_OPTION, withChangeset} from '../options.js';

type CheckArgs = {
  rev: string;
  repo: string;
  'vendor-repo'?: string;
  install: boolean;
  json: boolean;
  junit?: string;
  'github-status': boolean;
  'github-repo'?: string;
  'github-api-url'?: string;
  'signing-policy'?: string;
};

/** The options of `deploy check` beside the changeset's: yargs option definitions. */
const CHECK_OPTIONS = {
  install: {
    type: 'boolean',
    default: true,
    describe: 'Run the offline install in a scratch directory (--no-install skips it)',
  },
  json: {type: 'boolean', default: false, describe: 'Print the report as JSON'},
  junit: {type: 'string', describe: 'Also write the report as JUnit XML to this file'},
  'github-status': {
    type: 'boolean',
    default: false,
    describe: 'Post a commit status (repodeploy/check) on the app commit',
  },
  'github-repo': {
    type: 'string',
    describe: 'owner/name of the app on GitHub (default: $GITHUB_REPOSITORY)',
  },
  'github-api-url': {
    type: 'string',
    describe: 'GitHub API URL (default: $GITHUB_API_URL or https://api.github.com)',
  },
  ...SIGNING_POLICY_OPTION,
} as const satisfies Record<string, Options>;

export function checkCommand(ctx: CliContext): CommandModule<object, CheckArgs> {
  return {
    command: 'check',
    describe:
      'Prove a changeset is deployable: pins resolve, vendor covers the lockfile, hashes match, offline install works',
    builder: y =>
      withHelp(withChangeset(y).options(CHECK_OPTIONS), {
        usage: 'deploy check --rev <rev> --repo <url> [options]',
        examples: [
          ['deploy check --rev HEAD --repo .', 'Check the commit checked out here'],
          [
            'deploy check --rev "$GITHUB_SHA" --repo . --junit check.xml --github-status',
            'In CI: a JUnit report and a commit status',
          ],
          ['deploy check --rev v1.4.0 --repo . --no-install', 'Skip the offline install'],
        ],
        doc: 'docs/check.md',
      }),
    handler: argv => runCheck(ctx, argv),
  };
}

/** `deploy check`: the report (text or JSON, JUnit, a GitHub commit status) and its exit code. */
async function runCheck(ctx: CliContext, argv: CheckArgs): Promise<void> {
  // Loaded here, not at start-up: every other command starts faster without them (Octokit).
  const [{check}, {checkExitCode, formatReport, junitXml}] = await Promise.all([
    import('../../check/check.js'),
    import('../../check/report.js'),
  ]);
  const githubRepo = argv['github-repo'] ?? ctx.env.GITHUB_REPOSITORY;
  const token = githubToken(ctx.env);
  if (argv['github-status'] && (!githubRepo || !token)) {
    throw new UsageError(
      '--github-status needs the repository (--github-repo or GITHUB_REPOSITORY) and a token (GITHUB_TOKEN or GH_TOKEN).',
    );
  }
  const report = await check(
    {
      rev: argv.rev,
      repo: argv.repo,
      vendorRepo: argv['vendor-repo'],
      install: argv.install,
      signingPolicy: signingPolicy(argv, ctx),
    },
    ctx.deps(),
  );
  if (argv.junit) {
    const file = path.resolve(ctx.cwd, argv.junit);
    await fse.ensureDir(path.dirname(file));
    await fsp.writeFile(file, junitXml(report));
  }
  const posted =
    argv['github-status'] && githubRepo && report.sha
      ? await postStatus(ctx, argv, githubRepo, token, report)
      : {status: null, warning: undefined};
  if (argv.json)
    writeJson(ctx.stdout, {
      ok: report.deployable,
      command: 'check',
      ...report,
      githubStatus: posted.status,
      ...(posted.warning ? {githubStatusWarning: posted.warning} : {}),
    });
  else ctx.stdout.write(formatReport(report));
  if (posted.warning) ctx.stderr.write(`warning: ${posted.warning}\n`);
  // The verdict decides the exit: a status GitHub would not take changes nothing about it.
  ctx.exitCode = checkExitCode(report);
}

/** Post the repodeploy/check commit status: its state, or a warning saying why GitHub refused it. */
async function postStatus(
  ctx: CliContext,
  argv: CheckArgs,
  githubRepo: string,
  token: string | undefined,
  report: CheckReport,
): Promise<{status: string | null; warning: string | undefined}> {
  const [{postCommitStatus}, {githubClient}] = await Promise.all([
    import('../../check/report.js'),
    import('../../http/github.js'),
  ]);
  const apiUrl = argv['github-api-url'] ?? ctx.env.GITHUB_API_URL ?? 'https://api.github.com';
  const runUrl =
    ctx.env.GITHUB_SERVER_URL && ctx.env.GITHUB_RUN_ID
      ? `${ctx.env.GITHUB_SERVER_URL}/${githubRepo}/actions/runs/${ctx.env.GITHUB_RUN_ID}`
      : undefined;
  const posted = await postCommitStatus(githubClient({apiUrl, token}), {
    repo: githubRepo,
    report,
    targetUrl: runUrl,
  });
  if (posted.refused === undefined) return {status: posted.state, warning: undefined};
  return {
    status: null,
    warning: refusedWarning(githubRepo, report.sha ?? '', posted.state, posted.refused),
  };
}

/** What to tell the user when GitHub refused the commit status: what, why, and what to do. */
function refusedWarning(repo: string, sha: string, state: string, why: string): string {
  const what = `the commit status repodeploy/check (${state}) could not be set on ${repo}@${sha.slice(0, 12)}: GitHub answered ${why}.`;
  const fix = why.startsWith('HTTP 404')
    ? 'GitHub answers 404 when the token cannot see the repository: check --github-repo (or GITHUB_REPOSITORY) and the token.'
    : 'The token may not write statuses: a pull request from a fork gets a read-only GITHUB_TOKEN; elsewhere give the workflow "permissions: statuses: write".';
  return `${what} ${fix} The verdict and the exit code are unaffected.`;
}
