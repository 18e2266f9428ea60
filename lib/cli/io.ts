import type {Writable} from 'node:stream';
import {defaultDeps, type Deps} from '../support/deps.js';
import {streamReporter} from '../support/reporter.js';

/** What a command handler may touch: its streams, the environment, and the lib dependencies. */
export type CliContext = {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  cwd: string;
  deps: (overrides?: Partial<Deps>) => Deps;
  /** Set by a handler whose outcome is not success yet is no error (a check that found problems). */
  exitCode?: number;
};

export function defaultContext(overrides: Partial<Omit<CliContext, 'deps'>> = {}): CliContext {
  const stdout = overrides.stdout ?? process.stdout;
  const stderr = overrides.stderr ?? process.stderr;
  const env = overrides.env ?? process.env;
  const cwd = overrides.cwd ?? process.cwd();
  return {
    stdout,
    stderr,
    env,
    cwd,
    deps: extra => defaultDeps({env, cwd, reporter: streamReporter(stderr), ...extra}),
  };
}

export function writeJson(stream: Writable, value: unknown): void {
  stream.write(`${JSON.stringify(value, null, 2)}\n`);
}
