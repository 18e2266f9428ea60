import type {Argv} from 'yargs';

/** What `--help` shows for one command beside its options: a usage line, examples, the doc. */
export type CommandHelp = {
  /** The usage line: `<arg>` is required, `[arg]` is not (as git and npm write theirs). */
  usage: string;
  /** Command lines a user can copy, each with what it does. */
  examples: readonly (readonly [string, string])[];
  /** The page of docs/ that explains the command. */
  doc: string;
};

/**
 * Add a command's usage line, examples and doc page to its `--help`. Called from each builder, so
 * the top-level help stays a list of commands and each command's help says how to run it.
 */
export function withHelp<T>(y: Argv<T>, help: CommandHelp): Argv<T> {
  let out = y.usage(`Usage: ${help.usage}`);
  for (const [command, description] of help.examples) out = out.example(command, description);
  // docs/ ships in the package: the page is beside the bin, wherever it is installed.
  return out.epilogue(
    `${envLine(help.usage)}\nDocs: ${help.doc} (in the repodeploy package and its repository)`,
  );
}

/**
 * How options come from the environment (lib/cli/env.ts), with the bin's own prefix:
 * `--vendor-repo` as `DEPLOY_VENDOR_REPO` for `deploy`, `--vendor` as `VENDOR_SYNC_VENDOR`.
 */
function envLine(usage: string): string {
  const bin = usage.split(' ')[0] ?? '';
  const prefix = bin.toUpperCase().replace(/-/g, '_');
  const [option, variable] =
    bin === 'vendor-sync' ? ['--vendor', 'VENDOR_SYNC_VENDOR'] : ['--root', 'DEPLOY_ROOT'];
  return `Every option can also be set in the environment as ${prefix}_<OPTION> (${option} as ${variable}); a flag given wins.`;
}
