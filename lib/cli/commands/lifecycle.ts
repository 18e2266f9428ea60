import type {CommandModule} from 'yargs';
import {breakLock, describeHolder, readLock} from '../../node/lock.js';
import {prune, rollback, type PruneResult} from '../../node/lifecycle.js';
import {status} from '../../node/status.js';
import type {CliContext} from '../io.js';
import {writeJson} from '../io.js';
import {withHelp, type CommandHelp} from '../help.js';
import {requireExistingRoot, withJson, withRoot} from '../options.js';

type RootArgs = {root?: string; json: boolean};

const ROLLBACK_HELP: CommandHelp = {
  usage: 'deploy rollback [--root <dir>] [--to <release|rev>] [--reason <text>] [--dry-run]',
  examples: [
    ['deploy rollback --root /srv/app --reason "500s after v1.5"', 'Back to the last good release'],
    ['deploy rollback --root /srv/app --to v1.3.0', 'Back to the release of that rev'],
    ['deploy rollback --root /srv/app --dry-run', 'Say where it would go; change nothing'],
  ],
  doc: 'docs/lifecycle.md',
};

const PRUNE_HELP: CommandHelp = {
  usage: 'deploy prune [--root <dir>] [--keep <n>] [--dry-run] [--remove-unknown]',
  examples: [
    ['deploy prune --root /srv/app --dry-run', 'List what would be removed'],
    ['deploy prune --root /srv/app --keep 3', 'Keep three releases to roll back to'],
  ],
  doc: 'docs/lifecycle.md',
};

const RELEASES_HELP: CommandHelp = {
  usage: 'deploy releases [--root <dir>] [--json]',
  examples: [
    ['deploy releases --root /srv/app', 'One line a release; * marks the live one'],
    ['deploy releases --root /srv/app --json', 'The same as JSON'],
  ],
  doc: 'docs/lifecycle.md',
};

const UNLOCK_HELP: CommandHelp = {
  usage: 'deploy unlock [--root <dir>] [--force]',
  examples: [
    ['deploy unlock --root /srv/app', 'Remove the lock of a deploy that died'],
    ['deploy unlock --root /srv/app --force', 'Remove it even if its owner may still run'],
  ],
  doc: 'docs/lifecycle.md',
};

export function rollbackCommand(
  ctx: CliContext,
): CommandModule<object, RootArgs & {to?: string; reason?: string; 'dry-run': boolean}> {
  return {
    command: 'rollback',
    describe:
      'Switch back to the newest earlier release that was live and good; mark the one left bad',
    builder: y =>
      withHelp(
        withJson(withRoot(y))
          .option('to', {type: 'string', describe: 'Release id or app rev to switch to'})
          .option('reason', {
            type: 'string',
            describe: 'Why: recorded on the release left and in the history',
          })
          .option('dry-run', {
            type: 'boolean',
            default: false,
            describe: 'Print the plan; change nothing',
          }),
        ROLLBACK_HELP,
      ),
    handler: async argv => {
      const result = await rollback(
        {
          root: await requireExistingRoot(argv, ctx),
          to: argv.to,
          reason: argv.reason,
          dryRun: argv['dry-run'],
        },
        ctx.deps(),
      );
      if (argv.json) writeJson(ctx.stdout, {ok: true, command: 'rollback', ...result});
      else {
        ctx.stdout.write(
          `${result.dryRun ? 'would roll back' : 'rolled back'}: current ${result.dryRun ? 'would point' : 'points'} at releases/${result.to} (was ${result.from}, ${result.dryRun ? 'to be ' : ''}marked bad: ${result.reason})\n`,
        );
      }
    },
  };
}

export function pruneCommand(
  ctx: CliContext,
): CommandModule<
  object,
  RootArgs & {keep?: number; 'dry-run': boolean; 'remove-unknown': boolean}
> {
  return {
    command: 'prune',
    describe: 'Remove old releases: failed ones beyond a few first, then good ones beyond --keep',
    builder: y =>
      withHelp(
        withJson(withRoot(y))
          .option('keep', {
            type: 'number',
            describe:
              'Releases that can be rolled back to, to keep (default: node.json keepReleases, else 5)',
          })
          .option('dry-run', {
            type: 'boolean',
            default: false,
            describe: 'Print what would be removed; change nothing',
          })
          .option('remove-unknown', {
            type: 'boolean',
            default: false,
            describe: 'Also remove directories of releases/ that have no .repodeploy/release.json',
          }),
        PRUNE_HELP,
      ),
    handler: async argv => {
      const result = await prune(
        {
          root: await requireExistingRoot(argv, ctx),
          keep: argv.keep,
          dryRun: argv['dry-run'],
          removeUnknown: argv['remove-unknown'],
        },
        ctx.deps(),
      );
      if (argv.json) writeJson(ctx.stdout, {ok: true, command: 'prune', ...result});
      else ctx.stdout.write(formatPrune(result));
    },
  };
}

function formatPrune(result: PruneResult): string {
  const verb = result.dryRun ? 'would remove' : 'removed';
  const lines = [
    result.removed.length === 0 ? 'nothing to prune' : `${verb} ${result.removed.join(', ')}`,
    ...result.unreadable.map(
      r => `kept ${r.id}: ${r.why}; this version never deletes a release it cannot read`,
    ),
    ...result.unknown.map(
      id => `kept ${id}: no .repodeploy/release.json (--remove-unknown removes it)`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

export function releasesCommand(ctx: CliContext): CommandModule<object, RootArgs> {
  return {
    command: 'releases',
    describe: 'List the releases on this node with their state, shas and times',
    builder: y => withHelp(withJson(withRoot(y)), RELEASES_HELP),
    handler: async argv => {
      const {releases} = await status({root: await requireExistingRoot(argv, ctx), cwd: ctx.cwd});
      if (argv.json) {
        writeJson(ctx.stdout, {ok: true, command: 'releases', releases});
        return;
      }
      const lines = releases.map(
        r =>
          `${r.current ? '*' : ' '} ${r.id.padEnd(28)} ${r.state.padEnd(8)} app ${(r.appSha ?? '-').slice(0, 12).padEnd(12)} vendor ${(r.vendorSha ?? '-').slice(0, 12).padEnd(12)} ${r.createdAt ?? ''}${r.signatures ? `  signed by ${r.signatures.app.principal}` : ''}${r.cause ? `  (${r.cause})` : ''}`,
      );
      ctx.stdout.write(`${lines.length > 0 ? lines.join('\n') : '(no releases)'}\n`);
    },
  };
}

export function unlockCommand(ctx: CliContext): CommandModule<object, RootArgs & {force: boolean}> {
  return {
    command: 'unlock',
    describe: "Show the root's lock and remove it if its owner is gone (--force: in any case)",
    builder: y =>
      withHelp(
        withJson(withRoot(y)).option('force', {
          type: 'boolean',
          default: false,
          describe: 'Remove even a lock whose owner may still run',
        }),
        UNLOCK_HELP,
      ),
    handler: async argv => {
      const root = await requireExistingRoot(argv, ctx);
      const before = await readLock(root);
      const removed = await breakLock(root, argv.force);
      if (argv.json)
        writeJson(ctx.stdout, {
          ok: true,
          command: 'unlock',
          state: before.state,
          owner: before.owner,
          removed: removed.state !== 'free',
        });
      else if (removed.state === 'free') ctx.stdout.write('not locked\n');
      else
        ctx.stdout.write(
          `removed the lock of ${describeHolder(removed.owner)} (${removed.state === 'dead' ? 'no longer running' : 'forced'})\n`,
        );
    },
  };
}
