import {promises as fsp} from 'node:fs';
import path from 'node:path';
import type {CommandModule} from 'yargs';
import {UsageError} from '../../errors.js';
import {registerSecret} from '../../redact.js';
import type {CliContext} from '../io.js';
import {writeJson} from '../io.js';
import {withChangeset} from '../options.js';

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
};

export function checkCommand(ctx: CliContext): CommandModule<object, CheckArgs> {
  return {
    command: 'check',
    describe:
      'Prove a changeset is deployable: pins resolve, vendor covers the lockfile, hashes match, offline install works',
    builder: y =>
      withChangeset(y)
        .option('install', {
          type: 'boolean',
          default: true,
          describe: 'Run the offline install in a scratch directory (--no-install skips it)',
        })
        .option('json', {type: 'boolean', default: false, describe: 'Print the report as JSON'})
        .option('junit', {
          type: 'string',
          describe: 'Also write the report as JUnit XML to this file',
        })
        .option('github-status', {
          type: 'boolean',
          default: false,
          describe: 'Post a commit status (repodeploy/check) on the app commit',
        })
        .option('github-repo', {
          type: 'string',
          describe: 'owner/name of the app on GitHub (default: $GITHUB_REPOSITORY)',
        })
        .option('github-api-url', {
          type: 'string',
          describe: 'GitHub API URL (default: $GITHUB_API_URL or https://api.github.com)',
        }),
    handler: async argv => {
      // Loaded here, not at start-up: every other command starts faster without them (Octokit).
      const [{check}, {checkExitCode, formatReport, junitXml, postCommitStatus}, {githubClient}] =
        await Promise.all([
          import('../../check.js'),
          import('../../check-report.js'),
          import('../../github.js'),
        ]);
      const githubRepo = argv['github-repo'] ?? ctx.env.GITHUB_REPOSITORY;
      const token = ctx.env.GITHUB_TOKEN ?? ctx.env.GH_TOKEN;
      registerSecret(token);
      if (argv['github-status'] && (!githubRepo || !token)) {
        throw new UsageError(
          '--github-status needs the repository (--github-repo or GITHUB_REPOSITORY) and a token (GITHUB_TOKEN or GH_TOKEN).',
        );
      }
      const report = await check(
        {rev: argv.rev, repo: argv.repo, vendorRepo: argv['vendor-repo'], install: argv.install},
        ctx.deps(),
      );
      if (argv.junit) {
        const file = path.resolve(ctx.cwd, argv.junit);
        await fsp.mkdir(path.dirname(file), {recursive: true});
        await fsp.writeFile(file, junitXml(report));
      }
      let status: string | null = null;
      if (argv['github-status'] && githubRepo && report.sha) {
        const apiUrl = argv['github-api-url'] ?? ctx.env.GITHUB_API_URL ?? 'https://api.github.com';
        const runUrl =
          ctx.env.GITHUB_SERVER_URL && ctx.env.GITHUB_RUN_ID
            ? `${ctx.env.GITHUB_SERVER_URL}/${githubRepo}/actions/runs/${ctx.env.GITHUB_RUN_ID}`
            : undefined;
        ({state: status} = await postCommitStatus(githubClient({apiUrl, token}), {
          repo: githubRepo,
          report,
          targetUrl: runUrl,
        }));
      }
      if (argv.json)
        writeJson(ctx.stdout, {
          ok: report.deployable,
          command: 'check',
          ...report,
          githubStatus: status,
        });
      else ctx.stdout.write(formatReport(report));
      ctx.exitCode = checkExitCode(report);
    },
  };
}
