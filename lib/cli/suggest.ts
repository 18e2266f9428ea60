import {UsageError} from '../support/errors.js';

/**
 * Refuse a first word that names no command, suggesting the closest one (`deploy staus`: did
 * you mean status?), as `npm instll` does. yargs' own recommendCommands never fires here: each
 * bin has a default command (`$0`), which takes the typo for a stray argument, or asks for its
 * own required options first (`vendor-sync outdate` said "Missing required argument: app").
 *
 * @example
 * checkCommandName(['staus'], 'deploy', ['status', 'releases']) // throws UsageError
 */
export function checkCommandName(args: string[], bin: string, commands: readonly string[]): void {
  const word = args[0];
  if (word === undefined || word.startsWith('-') || commands.includes(word)) return;
  const near = closest(word, commands);
  throw new UsageError(
    `Unknown command "${word}".`,
    near ? `Did you mean "${bin} ${near}"? See ${bin} --help.` : `See ${bin} --help.`,
  );
}

/** The command nearest `word` by edit distance, if it is near enough to be a typo of it. */
function closest(word: string, commands: readonly string[]): string | undefined {
  let best: {name: string; distance: number} | undefined;
  for (const name of commands) {
    const distance = editDistance(word, name);
    if (!best || distance < best.distance) best = {name, distance};
  }
  // A third of the name: `outdate`, `staus`, `rolback` match; `foo` suggests nothing.
  return best && best.distance <= Math.max(1, Math.floor(best.name.length / 3))
    ? best.name
    : undefined;
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({length: b.length + 1}, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (row[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + cost,
      );
    }
    previous = row;
  }
  return previous[b.length] ?? 0;
}
