import type {CommandModule} from 'yargs';
import path from 'node:path';
import {formatBytes} from '../../support/format.js';
import {UsageError} from '../../support/errors.js';
import {deploy} from '../../deploy/deploy.js';
import {formatPlan, planDeploy} from '../../deploy/plan.js';
import type {CliContext} from '../io.js';
import {writeJson} from '../io.js';
import {requireRoot, withJson, withRoot} from '../options.js';

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
  root?: string;
  json: boolean;
};

export function deployCommand(ctx: CliContext): CommandModule<object, DeployArgs> {
  return {
    command: '$0',
    describe: 'Deploy a pinned changeset of the app (and its vendor repo) to this node',
    builder: y =>
      withJson(withRoot(y))
        .option('rev', {
          type: 'string',
          describe: 'Commit (full or 7+ hex), tag or branch of the app repository',
        })
        .option('bundle', {
          type: 'string',
          describe: 'Deploy from a bundle made by `deploy bundle` instead of from git',
        })
        .option('sha256', {
          type: 'string',
          describe: 'With --bundle: the sha256 of the whole bundle file, as published',
        })
        .option('sha256-file', {
          type: 'string',
          describe:
            'With --bundle: a sha256sum file giving it (`deploy bundle` writes F.sha256 beside F)',
        })
        .option('insecure-unpinned-bundle', {
          type: 'boolean',
          default: false,
          describe: 'With --bundle: accept it on its own inner checksums alone, with no pin',
        })
        .option('repo', {
          type: 'string',
          describe: 'App repository: http(s) URL or local path (remembered after the first deploy)',
        })
        .option('vendor-repo', {
          type: 'string',
          describe: 'Fetch the pinned vendor commit from here instead (e.g. an internal mirror)',
        })
        .option('release-id', {
          type: 'string',
          describe: 'Release id to use (give every host of a fleet the same one)',
        })
        .option('maintenance', {
          type: 'boolean',
          default: false,
          describe:
            'Maintenance mode for the duration of the deploy, cleared once the health check passes',
        })
        .option('fresh-install', {
          type: 'boolean',
          default: false,
          describe:
            "Run the installer even when the previous release's installed dependencies could be copied",
        })
        .option('dry-run', {
          type: 'boolean',
          default: false,
          describe:
            'Print the plan (what would be fetched, installed, switched, pruned); change nothing',
        }),
    handler: async argv => {
      // Here rather than in a yargs check(), which would also fire for `deploy --help`.
      if (!argv.rev && !argv.bundle)
        throw new UsageError('Missing --rev (or --bundle).', 'See deploy --help.');
      const rev = argv.rev ?? path.basename(argv.bundle ?? '');
      const pinned = argv.sha256 ?? argv['sha256-file'] ?? argv['insecure-unpinned-bundle'];
      if (!argv.bundle && pinned) {
        throw new UsageError(
          '--sha256, --sha256-file and --insecure-unpinned-bundle pin a bundle: they need --bundle.',
        );
      }
      if (argv['dry-run']) {
        if (argv.bundle) {
          throw new UsageError(
            '--dry-run is for deploys from git; a bundle is checked whole before any deploy.',
          );
        }
        const plan = await planDeploy(
          {
            root: requireRoot(argv, ctx),
            rev,
            repo: argv.repo,
            vendorRepo: argv['vendor-repo'],
            releaseId: argv['release-id'],
          },
          ctx.deps(),
        );
        if (argv.json) writeJson(ctx.stdout, {ok: true, command: 'deploy', dryRun: true, ...plan});
        else ctx.stdout.write(formatPlan(plan));
        return;
      }
      const result = await deploy(
        {
          root: requireRoot(argv, ctx),
          rev,
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
        },
        ctx.deps(),
      );
      if (argv.json) {
        writeJson(ctx.stdout, {ok: true, command: 'deploy', ...result});
        return;
      }
      const fetched = result.app.fetch.bytes + (result.vendor?.fetch.bytes ?? 0);
      ctx.stdout.write(
        [
          `deployed ${result.releaseId}`,
          `  app     ${result.app.sha}  (${result.requestedRev})`,
          `  vendor  ${result.vendor ? `${result.vendor.sha}  (${result.vendor.source})` : 'none'}`,
          `  fetched ${formatBytes(fetched)}; took ${(result.durationMs / 1000).toFixed(1)} s`,
          `  current -> releases/${result.releaseId}` +
            (result.previousReleaseId ? ` (was ${result.previousReleaseId})` : ''),
          '',
        ].join('\n'),
      );
    },
  };
}
