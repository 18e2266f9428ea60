import {Writable} from 'node:stream';
import cliProgress from 'cli-progress';
import type {Reporter} from '../lib/support/reporter.js';

export interface Progress {
  tick(label: string): void;
  stop(): void;
}

/** A progress bar on a terminal; one plain line per item elsewhere (CI logs, pipes). */
export function createProgress(
  stream: Writable & {isTTY?: boolean},
  total: number,
  what: string,
): Progress {
  if (total === 0) return {tick: () => undefined, stop: () => undefined};
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${what} [{bar}] {value}/{total} {label}`,
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, {label: ''});
    let stopped = false;
    return {
      tick: label => {
        bar.increment({label});
      },
      stop: () => {
        if (!stopped) bar.stop();
        stopped = true;
      },
    };
  }
  let done = 0;
  return {
    tick: label => {
      done++;
      stream.write(`${what} ${done}/${total} ${label}\n`);
    },
    stop: () => undefined,
  };
}

/** A stream whose lines are the reporter's detail lines (printed with --verbose only). */
export function detailLines(reporter: Reporter): Writable {
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) reporter.detail(line);
      done();
    },
  });
}
