import type {CommandModule, Options} from 'yargs';
import {UsageError} from '../../support/errors.js';
import {maintenanceStatus, serveMaintenance, setMaintenance} from '../../node/maintenance.js';
import type {CliContext} from '../io.js';
import {writeJson} from '../io.js';
import {withHelp} from '../help.js';
import {requireExistingRoot, withJson, withRoot} from '../options.js';

type Args = {
  action: string;
  root?: string;
  json: boolean;
  reason?: string;
  port: number;
  host: string;
  backoff: number;
};

/** The options of `deploy maintenance`: yargs option definitions. */
const MAINTENANCE_OPTIONS = {
  reason: {type: 'string', describe: 'Why (recorded in the flag file)'},
  port: {type: 'number', default: 8503, describe: 'serve: port to listen on (0: any free port)'},
  host: {type: 'string', default: '127.0.0.1', describe: 'serve: address to listen on'},
  backoff: {
    type: 'number',
    default: 300,
    describe: 'serve: seconds for Retry-After and X-Weave-Backoff',
  },
} as const satisfies Record<string, Options>;

export function maintenanceCommand(ctx: CliContext): CommandModule<object, Args> {
  return {
    command: 'maintenance <action>',
    describe:
      'Maintenance mode: on | off | status (a flag file the web front end tests) | serve (a 503 responder)',
    builder: y =>
      withHelp(
        withJson(withRoot(y))
          .positional('action', {
            choices: ['on', 'off', 'status', 'serve'] as const,
            type: 'string',
            demandOption: true,
          })
          .options(MAINTENANCE_OPTIONS),
        {
          usage: 'deploy maintenance <on|off|status|serve> [--root <dir>] [options]',
          examples: [
            [
              'deploy maintenance on --root /srv/app --reason "database migration"',
              'Raise the flag',
            ],
            ['deploy maintenance off --root /srv/app', 'Clear it'],
            ['deploy maintenance serve --port 8503', 'Answer 503 while the app is down'],
          ],
          doc: 'docs/lifecycle.md',
        },
      ),
    handler: argv => (argv.action === 'serve' ? serve(ctx, argv) : setOrShow(ctx, argv)),
  };
}

/** `maintenance serve`: the 503 responder, until SIGINT or SIGTERM. */
async function serve(ctx: CliContext, argv: Args): Promise<void> {
  if (!(Number.isInteger(argv.backoff) && argv.backoff >= 0))
    throw new UsageError('--backoff must be a whole number of seconds.');
  const server = await serveMaintenance({
    port: argv.port,
    host: argv.host,
    backoffSeconds: argv.backoff,
  });
  ctx.stdout.write(`maintenance responder on ${server.url} (503, Retry-After: ${argv.backoff})\n`);
  await new Promise<void>(resolve => {
    const stop = () => {
      void server.close().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

/** `maintenance on|off|status`: set or read the flag file, and say what it is now. */
async function setOrShow(ctx: CliContext, argv: Args): Promise<void> {
  const root = await requireExistingRoot(argv, ctx);
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
}
