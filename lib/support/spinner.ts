import type {Writable} from 'node:stream';

/** The live line of the phases running on a terminal, innermost shown. */
export interface Spinner {
  /** A phase starts: show it (once it has run a little), with how far it is, until `end`. */
  push(name: string): {status(text: string): void; end(): void};
  /** Clear the live line before a line of output; whether it was shown (to redraw it after). */
  clear(): boolean;
  redraw(): void;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/** At most 10 redraws a second: more only costs a remote terminal bandwidth. */
const INTERVAL_MS = 100;
// Carriage return, then erase the line (ECMA-48 EL 2): the live line is redrawn in place.
const CLEAR_LINE = '\r\x1b[2K';

/**
 * A spinner with the phase's name and its elapsed time, redrawn in place. A phase shorter than
 * one interval never shows: its result line is all that is printed.
 */
export function startSpinner(stream: Writable, clock: () => number): Spinner {
  const running: Array<{name: string; started: number; status: string}> = [];
  let frame = 0;
  let shown = false;
  let timer: NodeJS.Timeout | undefined;
  const draw = () => {
    const top = running.at(-1);
    if (!top) return;
    const elapsed = ((clock() - top.started) / 1000).toFixed(1);
    const status = top.status ? `  ${top.status}` : '';
    const line = `${FRAMES[frame++ % FRAMES.length]} ${top.name}${status}  ${elapsed} s`;
    // A line that wraps could not be erased in place: cut it to the terminal's width.
    const width = (stream as Writable & {columns?: number}).columns;
    stream.write(`${CLEAR_LINE}${width ? line.slice(0, width - 1) : line}`);
    shown = true;
  };
  const clear = () => {
    const was = shown;
    if (shown) stream.write(CLEAR_LINE);
    shown = false;
    return was;
  };
  return {
    push(name) {
      const entry = {name, started: clock(), status: ''};
      running.push(entry);
      if (!timer) {
        timer = setInterval(draw, INTERVAL_MS);
        // A spinner never keeps the process alive on its own.
        timer.unref();
      }
      let ended = false;
      return {
        // Drawn at the next tick: a status said a thousand times a second costs no more.
        status(text) {
          entry.status = text;
        },
        end() {
          if (ended) return;
          ended = true;
          running.splice(running.indexOf(entry), 1);
          clear();
          if (running.length === 0 && timer) {
            clearInterval(timer);
            timer = undefined;
          }
        },
      };
    },
    clear,
    redraw: () => {
      if (running.length > 0 && timer) draw();
    },
  };
}
