import type {CommandModule} from 'yargs';
import {status, type ReleaseSummary} from '../../node/status.js';
import {describeSigner} from '../../signing/recorded.js';
import type {CliContext} from '../io.js';
import {writeJson} from '../io.js';
import {withHelp} from '../help.js';
import {requireExistingRoot, withJson, withRoot} from '../options.js';

type StatusArgs = {root?: string; json: boolean};

export function statusCommand(ctx: CliContext): CommandModule<object, StatusArgs> {
  return {
    command: 'status',
    describe: 'Show the current release and the releases present on this node',
    builder: y =>
      withHelp(withJson(withRoot(y)), {
        usage: 'deploy status [--root <dir>] [--json]',
        examples: [
          ['deploy status --root /srv/app', 'The live release, the last attempt, every release'],
          ['DEPLOY_ROOT=/srv/app deploy status --json', 'The same as one JSON object'],
        ],
        doc: 'docs/lifecycle.md',
      }),
    handler: async argv => {
      const result = await status({root: await requireExistingRoot(argv, ctx), cwd: ctx.cwd});
      if (argv.json) {
        writeJson(ctx.stdout, {ok: true, command: 'status', ...result});
        return;
      }
      const lines = [`root     ${result.root}`, `repo     ${result.repo ?? '(none yet)'}`];
      lines.push(
        result.current
          ? `current  ${result.current.id}  app ${short(result.current.appSha)}  vendor ${short(result.current.vendorSha)}  since ${result.current.createdAt ?? '?'}`
          : 'current  (none)',
      );
      const signed = result.current?.signatures;
      if (signed) {
        lines.push(`signed   app: ${describeSigner(signed.app)}`);
        if (signed.vendor) lines.push(`signed   vendor: ${describeSigner(signed.vendor)}`);
      }
      if (result.lastAttempt) {
        const a = result.lastAttempt;
        lines.push(
          `last     ${a.time}  ${a.outcome}  rev ${a.requestedRev ?? '?'}${a.cause ? `  error: ${a.cause}` : ''}`,
        );
      }
      lines.push('releases');
      if (result.releases.length === 0) lines.push('  (none)');
      for (const r of result.releases) lines.push(formatRelease(r));
      for (const warning of result.warnings) lines.push(`warning  ${warning}`);
      ctx.stdout.write(`${lines.join('\n')}\n`);
    },
  };
}

function formatRelease(r: ReleaseSummary): string {
  return `  ${r.current ? '*' : ' '} ${r.id.padEnd(28)} ${r.state.padEnd(8)} app ${short(r.appSha)}  vendor ${short(r.vendorSha)}${r.cause ? `  (${r.cause})` : ''}`;
}

function short(sha: string | null): string {
  return sha ? sha.slice(0, 12) : '-'.padEnd(12);
}
