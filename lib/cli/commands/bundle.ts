import type {CommandModule} from 'yargs';
import {createBundle} from '../../bundle/bundle.js';
import {formatBytes} from '../../support/format.js';
import type {CliContext} from '../io.js';
import {writeJson} from '../io.js';
import {withHelp} from '../help.js';
import {signingPolicy, SIGNING_POLICY_OPTION, withChangeset, withJson} from '../options.js';

type BundleArgs = {
  rev: string;
  repo: string;
  'vendor-repo'?: string;
  out: string;
  json: boolean;
  'signing-policy'?: string;
};

export function bundleCommand(ctx: CliContext): CommandModule<object, BundleArgs> {
  return {
    command: 'bundle',
    describe:
      'Pack a changeset and its vendor tree into one verified archive, for nodes that cannot reach git',
    builder: y =>
      withHelp(
        withChangeset(withJson(y))
          .option('out', {
            type: 'string',
            demandOption: true,
            describe: 'Where to write the .tar.gz',
          })
          .options(SIGNING_POLICY_OPTION),
        {
          usage: 'deploy bundle --rev <rev> --repo <url> --out <file> [options]',
          examples: [
            [
              'deploy bundle --rev v1.4.0 --repo https://git.example/app.git --out app-v1.4.0.tar.gz',
              'Pack the changeset and its vendor tree',
            ],
            [
              'deploy --bundle app-v1.4.0.tar.gz --sha256-file app-v1.4.0.tar.gz.sha256 --root /srv/app',
              'Deploy it on a node without git access',
            ],
          ],
          doc: 'docs/fleet.md',
        },
      ),
    handler: async argv => {
      const result = await createBundle(
        {
          rev: argv.rev,
          repo: argv.repo,
          vendorRepo: argv['vendor-repo'],
          out: argv.out,
          signingPolicy: signingPolicy(argv, ctx),
        },
        ctx.deps(),
      );
      if (argv.json) writeJson(ctx.stdout, {ok: true, command: 'bundle', ...result});
      else
        ctx.stdout.write(
          `wrote ${result.out}: app ${result.appSha}, vendor ${result.vendorSha ?? 'none'}, ${result.files} files (${formatBytes(result.bytes)})\n` +
            (result.signatures
              ? `  signed by ${result.signatures.app.principal} (${result.signatures.app.key}), recorded in the bundle\n`
              : '') +
            `  sha256 ${result.sha256}, in ${result.sha256File}: publish it beside the bundle; nodes deploy with --sha256-file or --sha256\n`,
        );
    },
  };
}
