import {spawn} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {InstallError} from '../errors.js';
import {recordChild} from '../processes.js';

/** The PATH installers get when the node's environment has none. */
export const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

/**
 * The environment an installer runs in: built from nothing, not inherited. Only PATH and locale
 * come from the node; HOME is an empty directory of our own, so no `~/.npmrc`, `pip.conf` or
 * credentials of the node's user reach the installer, and no token from our own environment does.
 */
export function hermeticEnv(
  base: NodeJS.ProcessEnv,
  home: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = {
    PATH: base.PATH ?? DEFAULT_PATH,
    HOME: home,
    TMPDIR: path.join(home, 'tmp'),
  };
  for (const key of ['LANG', 'LC_ALL', 'LC_CTYPE', 'TZ']) {
    const value = base[key];
    if (value !== undefined) env[key] = value;
  }
  return {...env, ...extra};
}

/**
 * A scratch directory with an empty HOME and TMPDIR for one installer run, under `base` (a
 * deploy passes `<root>/.scratch`, which its next run empties: a run killed mid-install leaves
 * nothing behind for good).
 */
export async function makeScratch(
  prefix: string,
  base: string = os.tmpdir(),
): Promise<{dir: string; home: string; cleanup: () => Promise<void>}> {
  // Not recursive: on a full disk a recursive mkdir reports ENOENT instead of ENOSPC.
  await fsp.mkdir(base, {mode: 0o700}).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  });
  const dir = await fsp.mkdtemp(path.join(base, prefix));
  const home = path.join(dir, 'home');
  await fsp.mkdir(path.join(home, 'tmp'), {recursive: true});
  return {dir, home, cleanup: () => fsp.rm(dir, {recursive: true, force: true})};
}

export type RunOptions = {
  cwd: string;
  env: Record<string, string>;
  /** Output of the command is appended here. */
  logFile: string;
  /** What to call the step in errors, e.g. "npm ci". */
  label: string;
  timeoutMs?: number;
  /**
   * Work to do while the command runs. If it fails, the command is stopped (SIGTERM, then
   * SIGKILL after 10 s) and that failure is thrown; if the command fails, this still finishes first.
   */
  alongside?: (() => Promise<void>) | undefined;
};

/**
 * Run a command without a shell, its output appended to `logFile`. A non-zero exit becomes an
 * {@link InstallError} quoting the last lines of the log and naming the log file.
 */
export async function runLogged(
  command: string,
  args: string[],
  options: RunOptions,
): Promise<void> {
  await fsp.mkdir(path.dirname(options.logFile), {recursive: true});
  const log = await fsp.open(options.logFile, 'a');
  await log.write(`\n$ ${[command, ...args].join(' ')}\n  (in ${options.cwd})\n`);
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', log.fd, log.fd],
  });
  // Beside the log: if this run is SIGKILLed, the next one stops the orphan (lib/processes.ts).
  const record = runningRecord(options.logFile);
  if (child.pid !== undefined) recordChild(record, child.pid, options.label);
  const ended = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    error?: Error;
  }>(resolve => {
    const timer = options.timeoutMs
      ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs)
      : undefined;
    child.on('error', error => {
      clearTimeout(timer);
      resolve({code: null, signal: null, error});
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({code, signal});
    });
  });
  let result: Awaited<typeof ended>;
  try {
    if (options.alongside) {
      try {
        await options.alongside();
      } catch (error) {
        child.kill('SIGTERM');
        const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await ended;
        clearTimeout(hard);
        throw error;
      }
    }
    result = await ended;
  } finally {
    await fsp.rm(record, {force: true});
    await log.close();
  }
  if (result.code === 0) return;
  const tail = await lastLines(options.logFile, 20);
  const why = result.error
    ? `could not start ${command}: ${result.error.message}`
    : result.signal
      ? `killed by ${result.signal}${options.timeoutMs ? ` (time limit ${Math.round(options.timeoutMs / 1000)} s)` : ''}`
      : `exit code ${result.code}`;
  throw new InstallError(
    `${options.label} failed (${why}).${tail ? `\nLast lines of the log:\n${tail}` : ''}`,
    `The full output is in ${options.logFile}.`,
  );
}

/** Where a running installer or hook is recorded: beside its log. */
export function runningRecord(logFile: string): string {
  return `${logFile}.running`;
}

/** Append `text` to an install log (created, with its directory, if missing). */
export async function appendLog(logFile: string, text: string): Promise<void> {
  await fsp.mkdir(path.dirname(logFile), {recursive: true});
  await fsp.appendFile(logFile, text);
}

async function lastLines(file: string, count: number): Promise<string> {
  const text = await fsp.readFile(file, 'utf8').catch(() => '');
  return text
    .trimEnd()
    .split('\n')
    .slice(-count)
    .map(line => `  | ${line}`)
    .join('\n');
}
