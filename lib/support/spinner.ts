import type {Writable} from 'node:stream';

/** The live line of the phases running on a terminal, innermost shown. */
export interface Spinner {
  /** A phase starts: show it (once it has run a little) until `end`. */
  push(name: string): {end(): void};
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
  const running: Array<{name: string; started: number}> = [];
  let frame = 0;
  let shown = false;
  let timer: NodeJS.Timeout | undefined;
  const draw = () => {
    const top = running.at(-1);
    if (!top) return;
    const elapsed = ((clock() - top.started) / 1000).toFixed(1);
    stream.write(`${CLEAR_LINE}${FRAMES[frame++ % FRAMES.length]} ${top.name}  ${elapsed} s`);
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
      const entry = {name, started: clock()};
      running.push(entry);
      if (!timer) {
        timer = setInterval(draw, INTERVAL_MS);
        // A spinner never keeps the process alive on its own.
        timer.unref();
      }
      let ended = false;
      return {
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
