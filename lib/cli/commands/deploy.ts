import type {CommandModule, Options} from 'yargs';
import path from 'node:path';
import {formatBytes} from '../../support/format.js';
import {ExitCode, UsageError} from '../../support/errors.js';
import {deploy, type DeployOptions, type DeployResult} from '../../deploy/deploy.js';
import {formatPlan, planDeploy} from '../../deploy/plan.js';
import {describeSigner} from '../../signing/recorded.js';
import type {CliContext} from '../io.js';
import {writeJson} from '../io.js';
import {withHelp} from '../help.js';
import {requireRoot, signingPolicy, SIGNING_POLICY_OPTION, withJson, withRoot} from '../options.js';

type DeployArgs = {
  rev?: string;
  bundle?: string;
  sha256?: string;
  'sha256-file'?: string;
  'insecure-unpinned-bundle': boolean;
  repo?: string;
  'vendor-repo'?: string;
  'release-id'?: string;
  maintenance: boolean;
  'fresh-install': boolean;
  'dry-run': boolean;
  force: boolean;
  'signing-policy'?: string;
  root?: string;
  json: boolean;
};

/** The options of `deploy` (the command that deploys): yargs option definitions. */
const DEPLOY_OPTIONS = {
  rev: {
    type: 'string',
    describe: 'Commit (full or 7+ hex), tag or branch of the app repository',
  },
  bundle: {
    type: 'string',
    describe: 'Deploy from a bundle made by `deploy bundle` instead of from git',
  },
  sha256: {
    type: 'string',
    describe: 'With --bundle: the sha256 of the whole bundle file, as published',
  },
  'sha256-file': {
    type: 'string',
    describe:
      'With --bundle: a sha256sum file giving it (`deploy bundle` writes F.sha256 beside F)',
  },
  'insecure-unpinned-bundle': {
    type: 'boolean',
    default: false,
    describe: 'With --bundle: accept it on its own inner checksums alone, with no pin',
  },
  repo: {
    type: 'string',
    describe: 'App repository: http(s) URL or local path (remembered after the first deploy)',
  },
  'vendor-repo': {
    type: 'string',
    describe: 'Fetch the pinned vendor commit from here instead (e.g. an internal mirror)',
  },
  'release-id': {
    type: 'string',
    describe: 'Release id to use (give every host of a fleet the same one)',
  },
  maintenance: {
    type: 'boolean',
    default: false,
    describe:
      'Maintenance mode for the duration of the deploy, cleared once the health check passes',
  },
  'fresh-install': {
    type: 'boolean',
    default: false,
    describe:
      "Run the installer even when the previous release's installed dependencies could be copied",
  },
  'dry-run': {
    type: 'boolean',
    default: false,
    describe: 'Print the plan (what would be fetched, installed, switched, pruned); change nothing',
  },
  force: {
    type: 'boolean',
    default: false,
    describe: 'Deploy even when that changeset is already live (a new release of the same sha)',
  },
  ...SIGNING_POLICY_OPTION,
} as const satisfies Record<string, Options>;

export function deployCommand(ctx: CliContext): CommandModule<object, DeployArgs> {
  return {
    command: '$0',
    describe: 'Deploy a pinned changeset of the app (and its vendor repo) to this node',
    builder: y =>
      withHelp(withJson(withRoot(y)).options(DEPLOY_OPTIONS), {
        usage: 'deploy --rev <rev> [--repo <url>] [--root <dir>] [options]  (or --bundle <file>)',
        examples: [
          [
            'deploy --rev v1.4.0 --repo https://git.example/app.git --root /srv/app',
            'First deploy: the repository is remembered in the root',
          ],
          ['deploy --rev 3f2c1a9 --root /srv/app', 'Deploy another commit of the same app'],
          ['deploy --rev v1.5.0 --root /srv/app --dry-run', 'Print the plan; change nothing'],
        ],
        doc: 'docs/getting-started.md',
      }),
    handler: argv => runDeploy(ctx, argv),
  };
}

/** `deploy --rev X`: the dry run's plan, or the deploy and its summary. */
async function runDeploy(ctx: CliContext, argv: DeployArgs): Promise<void> {
  // Here rather than in a yargs check(), which would also fire for `deploy --help`.
  if (!argv.rev && !argv.bundle)
    throw new UsageError('Missing --rev (or --bundle).', 'See deploy --help.');
  const pinned = argv.sha256 ?? argv['sha256-file'] ?? argv['insecure-unpinned-bundle'];
  if (!argv.bundle && pinned) {
    throw new UsageError(
      '--sha256, --sha256-file and --insecure-unpinned-bundle pin a bundle: they need --bundle.',
    );
  }
  const options = deployOptions(ctx, argv);
  if (argv['dry-run']) {
    if (argv.bundle) {
      throw new UsageError(
        '--dry-run is for deploys from git; a bundle is checked whole before any deploy.',
      );
    }
    const plan = await planDeploy(options, ctx.deps());
    const refused = plan.signatures !== null && 'refused' in plan.signatures;
    if (argv.json) writeJson(ctx.stdout, {ok: !refused, command: 'deploy', dryRun: true, ...plan});
    else ctx.stdout.write(formatPlan(plan));
    // The plan says why; the exit says a deploy would be refused, as the deploy itself would.
    if (refused) ctx.exitCode = ExitCode.signature;
    return;
  }
  const result = await deploy(options, ctx.deps());
  if (argv.json) writeJson(ctx.stdout, {ok: true, command: 'deploy', ...result});
  else ctx.stdout.write(formatResult(result));
}

function deployOptions(ctx: CliContext, argv: DeployArgs): DeployOptions {
  return {
    root: requireRoot(argv, ctx),
    rev: argv.rev ?? path.basename(argv.bundle ?? ''),
    bundle: argv.bundle,
    bundlePin: {
      sha256: argv.sha256,
      sha256File: argv['sha256-file'],
      unpinned: argv['insecure-unpinned-bundle'],
    },
    repo: argv.repo,
    vendorRepo: argv['vendor-repo'],
    releaseId: argv['release-id'],
    maintenance: argv.maintenance,
    freshInstall: argv['fresh-install'],
    force: argv.force,
    signingPolicy: signingPolicy(argv, ctx),
  };
}

function formatResult(result: DeployResult): string {
  if (!result.changed) {
    return `release ${result.releaseId} of ${result.app.sha} is already live: nothing to do (--force deploys it again)\n`;
  }
  const fetched = result.app.fetch.bytes + (result.vendor?.fetch.bytes ?? 0);
  return [
    `deployed ${result.releaseId}`,
    `  app     ${result.app.sha}  (${result.requestedRev})`,
    `  vendor  ${result.vendor ? `${result.vendor.sha}  (${result.vendor.source})` : 'none'}`,
    ...(result.signatures
      ? [
          `  signed  app: ${describeSigner(result.signatures.app)}`,
          ...(result.signatures.vendor
            ? [`  signed  vendor: ${describeSigner(result.signatures.vendor)}`]
            : []),
        ]
      : []),
    `  fetched ${formatBytes(fetched)}; took ${(result.durationMs / 1000).toFixed(1)} s`,
    `  current -> releases/${result.releaseId}` +
      (result.previousReleaseId ? ` (was ${result.previousReleaseId})` : ''),
    '',
  ].join('\n');
}
