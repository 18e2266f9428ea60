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

/** The reporter for a command's progress lines on stderr, quiet or not. */
export function cliReporter(ctx: Pick<CliContext, 'stderr' | 'quiet'>): Reporter {
  return ctx.quiet ? quietReporter(ctx.stderr) : streamReporter(ctx.stderr);
}

export function writeJson(stream: Writable, value: unknown): void {
  stream.write(`${JSON.stringify(value, null, 2)}\n`);
}
