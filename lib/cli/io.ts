import type {Writable} from 'node:stream';
import {defaultDeps, type Deps} from '../support/deps.js';
import {quietReporter, streamReporter, type Reporter} from '../support/reporter.js';

/** What a command handler may touch: its streams, the environment, and the lib dependencies. */
export type CliContext = {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  cwd: string;
  deps: (overrides?: Partial<Deps>) => Deps;
  /** Set by a handler whose outcome is not success yet is no error (a check that found problems). */
  exitCode?: number;
  /** `--quiet`: only the result and errors. */
  quiet?: boolean;
  /** `--verbose`: every phase's detail lines too. */
  verbose?: boolean;
  /** `--json`: the result is for a program; no live line on stderr either. */
  json?: boolean;
};

export function defaultContext(overrides: Partial<Omit<CliContext, 'deps'>> = {}): CliContext {
  const stdout = overrides.stdout ?? process.stdout;
  const stderr = overrides.stderr ?? process.stderr;
  const env = overrides.env ?? process.env;
  const cwd = overrides.cwd ?? process.cwd();
  const ctx: CliContext = {
    stdout,
    stderr,
    env,
    cwd,
    deps: extra => defaultDeps({env, cwd, reporter: cliReporter(ctx), ...extra}),
  };
  return ctx;
}

/**
 * The reporter for a command's progress lines on stderr: quiet, normal or verbose; with a live
 * line for the phase running only on a terminal, and not in CI or under `--json` (whose readers
 * are programs: a log file, Ansible, a test).
 */
export function cliReporter(
  ctx: Pick<CliContext, 'stderr' | 'env' | 'quiet' | 'verbose' | 'json'>,
): Reporter {
  if (ctx.quiet) return quietReporter(ctx.stderr);
  return streamReporter(ctx.stderr, {
    verbosity: ctx.verbose ? 'verbose' : 'normal',
    live: liveTerminal(ctx),
  });
}

/** Whether stderr is a person's terminal, where a line may be redrawn in place. */
export function liveTerminal(ctx: Pick<CliContext, 'stderr' | 'env' | 'json'>): boolean {
  const terminal = (ctx.stderr as Writable & {isTTY?: boolean}).isTTY === true;
  return terminal && !ctx.json && !isCi(ctx.env);
}

/** CI services set CI (GitHub Actions, GitLab, CircleCI, Travis, Buildkite …). */
function isCi(env: NodeJS.ProcessEnv): boolean {
  const ci = env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

export function writeJson(stream: Writable, value: unknown): void {
  stream.write(`${JSON.stringify(value, null, 2)}\n`);
}
