import type {Writable} from 'node:stream';
import {redact} from './redact.js';
import {startSpinner, type Spinner} from './spinner.js';

/**
 * Where `lib/` says what it is doing. Nothing in `lib/` writes to the console directly.
 * A phase prints one line when it ends, with its result; what it did in detail goes to
 * {@link Reporter.detail}, printed with `--verbose` only (docs/output.md).
 */
export interface Reporter {
  /** A line that stands on its own (`pruned …`, `maintenance mode on`): not with `--quiet`. */
  info(message: string): void;
  /** A detail of the phase running (counts, the command run): with `--verbose` only. */
  detail(message: string): void;
  warn(message: string): void;
  /**
   * Run one phase of work and print one line when it ends: its name, what `summarize` says of
   * its result, and how long it took. A failed phase prints nothing: the error says it. `work`
   * may say how far it is (`12 objects, 3.1 KiB`): shown in the live line on a terminal only.
   */
  phase<T>(
    name: string,
    work: (progress: (status: string) => void) => Promise<T>,
    summarize?: (result: T) => string,
  ): Promise<T>;
  /** A phase that did not happen, in its one line with the reason. */
  skipped(name: string, reason: string): void;
}

export type Verbosity = 'quiet' | 'normal' | 'verbose';

export type StreamReporterOptions = {
  verbosity?: Verbosity;
  /** Redraw a live line for a running phase (a terminal, not CI, not `--json`). */
  live?: boolean;
  clock?: () => number;
};

/** The width of the phase-name column: the results line up under one another. */
const NAME_WIDTH = 18;

/** One phase's line: `fetch app          70d28ea8c289 (tag v1.0); fetched 12 objects  0.4 s`. */
export function phaseLine(name: string, summary: string, ms?: number, verbose = false): string {
  const time = ms === undefined ? '' : verbose ? `${Math.round(ms)} ms` : formatSeconds(ms);
  return [name.padEnd(NAME_WIDTH), summary, time].filter(Boolean).join('  ').trimEnd();
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Lines on a stream (stderr for a command whose stdout is its result). */
export function streamReporter(stream: Writable, options: StreamReporterOptions = {}): Reporter {
  const verbosity = options.verbosity ?? 'normal';
  const clock = options.clock ?? Date.now;
  const spinner: Spinner | undefined = options.live ? startSpinner(stream, clock) : undefined;
  const write = (line: string) => {
    const wasShown = spinner?.clear() ?? false;
    stream.write(`${redact(line)}\n`);
    if (wasShown) spinner?.redraw();
  };
  const loud = verbosity !== 'quiet';
  // The detail lines of the phases running, printed under each one's line when it ends.
  const running: string[][] = [];
  const flush = (lines: string[]) => {
    for (const line of lines.splice(0)) write(`  ${line}`);
  };
  return {
    info: message => {
      if (loud) write(message);
    },
    detail: message => {
      if (verbosity !== 'verbose') return;
      const top = running.at(-1);
      if (top) top.push(message);
      else write(`  ${message}`);
    },
    warn: message => {
      write(`warning: ${message}`);
    },
    async phase(name, work, summarize) {
      if (!loud) return work(ignore);
      const started = clock();
      const live = spinner?.push(name);
      const details: string[] = [];
      running.push(details);
      try {
        const result = await work(status => live?.status(status));
        live?.end();
        write(
          phaseLine(name, summarize?.(result) ?? '', clock() - started, verbosity === 'verbose'),
        );
        return result;
      } finally {
        live?.end();
        running.splice(running.indexOf(details), 1);
        flush(details);
      }
    },
    skipped: (name, reason) => {
      if (loud) write(phaseLine(name, `skipped: ${reason}`));
    },
  };
}

/** A reporter that records nothing: for callers that want only the result. */
export const silentReporter: Reporter = {
  info: () => undefined,
  detail: () => undefined,
  warn: () => undefined,
  phase: (_name, work) => work(ignore),
  skipped: () => undefined,
};

function ignore(): void {
  return undefined;
}

/** `--quiet`: warnings (and, from `main()`, errors) only; the phases run without a line. */
export function quietReporter(stream: Writable): Reporter {
  return streamReporter(stream, {verbosity: 'quiet'});
}

/**
 * The same reporter with its `info` lines turned into detail lines: for a module whose lines
 * are the inner workings of a phase (the file counts of a tree written, lib/deploy/writer.ts).
 */
export function detailsOnly(reporter: Reporter): Reporter {
  return {
    ...reporter,
    info: message => {
      reporter.detail(message.trimStart());
    },
  };
}
