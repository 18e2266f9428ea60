import type {Argv} from 'yargs';
import {
  asDeployError,
  DeployError,
  ExitCode,
  SignatureError,
  UsageError,
} from '../support/errors.js';
import {redact} from '../support/redact.js';
import {TOOL_VERSION} from '../support/version.js';
import type {CliContext} from './io.js';
import {writeJson} from './io.js';
import {withEnv} from './env.js';
import {checkCommandName} from './suggest.js';

/**
 * The bin's name and its command words, for the usage line and typo suggestions; the prefix of
 * the environment variables that stand for its options (DEPLOY: DEPLOY_REV for --rev).
 */
export type CliSpec = {bin: string; commands: readonly string[]; envPrefix: string};

/**
 * Parse and run a command line; the one place that prints errors and picks the exit code.
 * Known failures print their message and hint; anything else prints its stack and exits 70.
 */
export async function runCli(
  args: string[],
  ctx: CliContext,
  spec: CliSpec,
  build: () => Argv,
): Promise<number> {
  // Read before yargs parses, for errors it raises itself; the variable too (DEPLOY_JSON=true).
  const json = args.includes('--json') || envFlag(ctx.env, spec.envPrefix, 'JSON');
  try {
    checkCommandName(args, spec.bin, spec.commands);
    // By hand: the default command ($0) would also run after yargs printed the script.
    // yargs would print the script, then refuse "completion" as an argument of the default command.
    if (args[0] === 'completion' && args.slice(1).some(a => a === '-h' || a === '--help')) {
      ctx.stdout.write(completionHelp(spec.bin));
      return ExitCode.ok;
    }
    if (args[0] === 'completion' && args.length === 1) {
      ctx.stdout.write(await completionScript(build));
      return ExitCode.ok;
    }
    // Before any handler asks for its deps, which pick the reporter.
    ctx.quiet =
      args.includes('-q') || args.includes('--quiet') || envFlag(ctx.env, spec.envPrefix, 'QUIET');
    ctx.verbose =
      args.includes('-v') ||
      args.includes('--verbose') ||
      envFlag(ctx.env, spec.envPrefix, 'VERBOSE');
    ctx.json = json;
    await withEnv(build(), spec.envPrefix, args)
      .strict()
      .exitProcess(false)
      .wrap(Math.min(100, process.stdout.columns || 100))
      // Given, not guessed: yargs looks for package.json above the part of its own path before
      // "node_modules", else above the working directory. Bundled into dist/bin and installed
      // globally, that is <prefix>/lib/, where no package.json names repodeploy ("unknown").
      .version(TOOL_VERSION)
      .alias('V', 'version')
      .help()
      .alias('h', 'help')
      .option('quiet', {
        alias: 'q',
        type: 'boolean',
        global: true,
        describe: 'Print only the result, warnings and errors',
      })
      .option('verbose', {
        alias: 'v',
        type: 'boolean',
        global: true,
        describe: 'Print the detail of every phase too (the command run, counts, times in ms)',
      })
      .conflicts('quiet', 'verbose')
      .completion('completion', 'Print a bash completion script (add it to ~/.bashrc)')
      .fail((message: string | undefined, error: Error | undefined) => {
        throw error ?? new UsageError(message ?? 'Invalid command line.', 'See --help.');
      })
      .parseAsync();
    return ctx.exitCode ?? ExitCode.ok;
  } catch (thrown) {
    const error = asDeployError(thrown);
    if (error instanceof DeployError) {
      const message = redact(error.message);
      const hint = error.hint ? redact(error.hint) : undefined;
      ctx.stderr.write(`error: ${message}\n${hint ? `hint: ${hint}\n` : ''}`);
      if (json) {
        writeJson(ctx.stdout, {
          ok: false,
          error: {
            code: error.code,
            exitCode: error.exitCode,
            message,
            hint: hint ?? null,
            // Why a signing policy refused it (docs/signing.md), for scripts that act on it.
            ...(error instanceof SignatureError ? {reason: error.reason} : {}),
          },
        });
      }
      return error.exitCode;
    }
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    ctx.stderr.write(
      `internal error: ${redact(text)}\nhint: this is a bug in repodeploy; please report it with the output above.\n`,
    );
    if (json) {
      writeJson(ctx.stdout, {
        ok: false,
        error: {code: 'EINTERNAL', exitCode: ExitCode.internal, message: redact(String(error))},
      });
    }
    return ExitCode.internal;
  }
}

/** Whether PREFIX_NAME sets a boolean option, as yargs reads it: only "true" does. */
function envFlag(env: NodeJS.ProcessEnv, prefix: string, name: string): boolean {
  return env[`${prefix}_${name}`] === 'true';
}

/** `completion --help`: the same parts as every other command's help. */
function completionHelp(bin: string): string {
  return [
    `Usage: ${bin} completion`,
    '',
    'Print a bash completion script for the commands and options.',
    '',
    'Examples:',
    `  ${bin} completion >> ~/.bashrc    Complete ${bin}'s commands in every new shell`,
    `  source <(${bin} completion)       In this shell only`,
    '',
    'Docs: README.md (in the repodeploy package and its repository)',
    '',
  ].join('\n');
}

/** The bash completion script yargs writes for this parser. */
async function completionScript(build: () => Argv): Promise<string> {
  let text = '';
  const parser = build().completion('completion', false);
  /* eslint-disable no-console -- yargs offers the script only through console.log */
  const original = console.log;
  // yargs writes the script with console.log; capture it for the context's stdout.
  console.log = (line: string) => {
    text += `${line}\n`;
  };
  try {
    parser.showCompletionScript();
  } finally {
    console.log = original;
  }
  /* eslint-enable no-console */
  return Promise.resolve(text);
}
