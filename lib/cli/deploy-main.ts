import yargs from 'yargs';
import {bundleCommand} from './commands/bundle.js';
import {checkCommand} from './commands/check.js';
import {deployCommand} from './commands/deploy.js';
import {maintenanceCommand} from './commands/maintenance.js';
import {
  pruneCommand,
  releasesCommand,
  rollbackCommand,
  unlockCommand,
} from './commands/lifecycle.js';
import {statusCommand} from './commands/status.js';
import {defaultContext, type CliContext} from './io.js';
import {runCli} from './run.js';

/** The words after `deploy` that name a command (the default one deploys). */
const DEPLOY_COMMANDS = [
  'status',
  'check',
  'rollback',
  'prune',
  'releases',
  'unlock',
  'maintenance',
  'bundle',
  'completion',
] as const;

/**
 * The `deploy` command. Returns the exit code; `bin/deploy.js` sets it.
 *
 * @example
 * process.exitCode = await main(process.argv.slice(2))
 */
export async function main(args: string[], ctx: CliContext = defaultContext()): Promise<number> {
  return runCli(args, ctx, {bin: 'deploy', commands: DEPLOY_COMMANDS, envPrefix: 'DEPLOY'}, () =>
    yargs(args)
      .scriptName('deploy')
      .command(deployCommand(ctx))
      .command(statusCommand(ctx))
      .command(checkCommand(ctx))
      .command(rollbackCommand(ctx))
      .command(pruneCommand(ctx))
      .command(releasesCommand(ctx))
      .command(unlockCommand(ctx))
      .command(maintenanceCommand(ctx))
      .command(bundleCommand(ctx)),
  );
}
