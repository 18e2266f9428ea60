import type {CommandModule} from 'yargs';
import {UsageError} from '../../support/errors.js';
import {maintenanceStatus, serveMaintenance, setMaintenance} from '../../node/maintenance.js';
import type {CliContext} from '../io.js';
import {writeJson} from '../io.js';
import {requireRoot, withJson, withRoot} from '../options.js';

type Args = {
  action: string;
  root?: string;
  json: boolean;
  reason?: string;
  port: number;
  host: string;
  backoff: number;
};

export function maintenanceCommand(ctx: CliContext): CommandModule<object, Args> {
  return {
    command: 'maintenance <action>',
    describe:
      'Maintenance mode: on | off | status (a flag file the web front end tests) | serve (a 503 responder)',
    builder: y =>
      withJson(withRoot(y))
        .positional('action', {
          choices: ['on', 'off', 'status', 'serve'] as const,
          type: 'string',
          demandOption: true,
        })
        .option('reason', {type: 'string', describe: 'Why (recorded in the flag file)'})
        .option('port', {
          type: 'number',
          default: 8503,
          describe: 'serve: port to listen on (0: any free port)',
        })
        .option('host', {
          type: 'string',
          default: '127.0.0.1',
          describe: 'serve: address to listen on',
        })
        .option('backoff', {
          type: 'number',
          default: 300,
          describe: 'serve: seconds for Retry-After and X-Weave-Backoff',
        }),
    handler: async argv => {
      if (argv.action === 'serve') {
        if (!(Number.isInteger(argv.backoff) && argv.backoff >= 0))
          throw new UsageError('--backoff must be a whole number of seconds.');
        const server = await serveMaintenance({
          port: argv.port,
          host: argv.host,
          backoffSeconds: argv.backoff,
        });
        ctx.stdout.write(
          `maintenance responder on ${server.url} (503, Retry-After: ${argv.backoff})\n`,
        );
        await new Promise<void>(resolve => {
          const stop = () => {
            void server.close().then(resolve);
          };
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        return;
      }
      const root = requireRoot(argv, ctx);
      const deps = ctx.deps();
      const state =
        argv.action === 'status'
          ? await maintenanceStatus(root)
          : await setMaintenance(root, argv.action === 'on', {
              by: deps.identity.user,
              reason: argv.reason,
              now: deps.clock(),
            });
      if (argv.json) writeJson(ctx.stdout, {ok: true, command: 'maintenance', ...state});
      else
        ctx.stdout.write(
          state.on
            ? `maintenance on since ${state.since ?? '?'} (${state.file})\n`
            : 'maintenance off\n',
        );
    },
  };
}
