import type {Writable} from 'node:stream';
import {redact} from './redact.js';
import {formatDuration} from './format.js';

/** Where `lib/` says what it is doing. Nothing in `lib/` writes to the console directly. */
export interface Reporter {
  info(message: string): void;
  warn(message: string): void;
  /** Run one phase of work, reporting its start and its duration. */
  phase<T>(name: string, work: () => Promise<T>): Promise<T>;
}

/** Plain lines on a stream (stderr for a command whose stdout is its result). */
export function streamReporter(stream: Writable, clock: () => number = Date.now): Reporter {
  const write = (line: string) => stream.write(`${redact(line)}\n`);
  return {
    info: write,
    warn: message => write(`warning: ${message}`),
    async phase(name, work) {
      const started = clock();
      write(`- ${name}`);
      const result = await work();
      write(`  ${name}: done in ${formatDuration(clock() - started)}`);
      return result;
    },
  };
}

/** A reporter that records nothing: for callers that want only the result. */
export const silentReporter: Reporter = {
  info: () => undefined,
  warn: () => undefined,
  phase: (_name, work) => work(),
};

/** `--quiet`: warnings (and, from `main()`, errors) only; the phases run without a line. */
export function quietReporter(stream: Writable): Reporter {
  const loud = streamReporter(stream);
  return {
    info: () => undefined,
    warn: message => {
      loud.warn(message);
    },
    phase: (_name, work) => work(),
  };
}
