import {spawn} from 'node:child_process';

/** One timed run of a command: its wall time, and its peak RSS as GNU time reports it. */
export type Sample = {seconds: number; rssMb: number | null};

/** Run a command under GNU time for its peak RSS; resolve its wall time. */
export async function timed(
  command: string,
  args: string[],
  options: {cwd?: string; env?: NodeJS.ProcessEnv} = {},
): Promise<Sample> {
  const started = performance.now();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'RSS_KB=%M', command, ...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', code => {
      if (code === 0) resolve(stderr);
      else
        reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${stderr.slice(-2000)}`));
    });
  });
  const rss = /RSS_KB=(\d+)/.exec(out)?.[1];
  return {seconds: (performance.now() - started) / 1000, rssMb: rss ? Number(rss) / 1024 : null};
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Every run's figure and their min, median and max: a good run and a bad one both show. */
export type Spread = {min: number; median: number; max: number; runs: number[]};

export function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return {min: sorted[0] ?? 0, median: median(values), max: sorted.at(-1) ?? 0, runs: values};
}

/** Run i of `ours` over run i of `theirs`: paired in the same run, so load hits both alike. */
export function ratios(ours: number[], theirs: number[]): number[] {
  return ours.map((o, i) => o / (theirs[i] ?? Number.NaN));
}
