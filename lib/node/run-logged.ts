import {spawn, type ChildProcess} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import {InstallError, type DeployError} from '../support/errors.js';
import {recordChild, stopGroup, throwIfInterrupted, trackGroup} from './processes.js';

/**
 * The commands the deployer runs on a node (installers, hooks, health-check commands): each in
 * a process group of its own, its output appended to the release's log, recorded beside that log
 * while it runs so the next run can stop it if this one is killed.
 */

/** The PATH commands get when the node's environment has none. */
export const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

export type RunOptions = {
  cwd: string;
  env: Record<string, string>;
  /** Output of the command is appended here. */
  logFile: string;
  /** What to call the step in errors, e.g. "npm ci". */
  label: string;
  timeoutMs?: number;
  /**
   * Work to do while the command runs. If it fails, the command's process group is stopped
   * (SIGTERM, then SIGKILL after a few seconds) and that failure is thrown; if the command fails, this still finishes first.
   */
  alongside?: (() => Promise<void>) | undefined;
  /** The error a failure is (default an InstallError): a hook's failure is a plain DeployError. */
  failAs?: (message: string, hint: string) => DeployError;
};

/**
 * Run a command without a shell, its output appended to `logFile`. A non-zero exit becomes an
 * {@link InstallError} quoting the last lines of the log and naming the log file. The command
 * leads a process group of its own, so that a timeout, a failure alongside or a SIGINT / SIGTERM
 * of this run stops everything it started (a `sleep` child would otherwise live on, writing into
 * the release); a signal of this run makes the failure an {@link InterruptedError}.
 */
export async function runLogged(
  command: string,
  args: string[],
  options: RunOptions,
): Promise<void> {
  await fse.ensureDir(path.dirname(options.logFile));
  const log = await fsp.open(options.logFile, 'a');
  await log.write(`\n$ ${[command, ...args].join(' ')}\n  (in ${options.cwd})\n`);
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', log.fd, log.fd],
    detached: true,
  });
  // Beside the log: if this run is SIGKILLed, the next one stops the orphan (lib/node/processes.ts).
  const record = runningRecord(options.logFile);
  const pid = child.pid ?? 0;
  if (child.pid !== undefined) recordChild(record, child.pid, options.label);
  const untrack = trackGroup(pid);
  let stopping: Promise<void> | undefined;
  const stop = (first: NodeJS.Signals) => (stopping ??= stopGroup(pid, first));
  const ended = childEnded(child, options.timeoutMs, () => void stop('SIGTERM'));
  let result: Awaited<typeof ended>;
  try {
    if (options.alongside) {
      try {
        await options.alongside();
      } catch (error) {
        await stop('SIGTERM');
        await ended;
        throw error;
      }
    }
    result = await ended;
    await stopping;
  } finally {
    untrack();
    await fsp.rm(record, {force: true});
    await log.close();
  }
  if (result.code === 0) return;
  throwIfInterrupted(options.label);
  throw await failure(command, options, result);
}

type Ended = {code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; error?: Error};

/** How `child` ended; `onTimeout` runs once `timeoutMs` has passed without its exit. */
function childEnded(
  child: ChildProcess,
  timeoutMs: number | undefined,
  onTimeout: () => void,
): Promise<Ended> {
  return new Promise(resolve => {
    let timedOut = false;
    const timer = timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          onTimeout();
        }, timeoutMs)
      : undefined;
    child.on('error', error => {
      clearTimeout(timer);
      resolve({code: null, signal: null, timedOut, error});
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({code, signal, timedOut});
    });
  });
}

async function failure(command: string, options: RunOptions, result: Ended): Promise<DeployError> {
  const tail = await lastLines(options.logFile, 20);
  const why = result.error
    ? `could not start ${command}: ${result.error.message}`
    : result.timedOut
      ? `timed out after ${Math.round((options.timeoutMs ?? 0) / 1000)} s; stopped with every process it started`
      : result.signal
        ? `killed by ${result.signal}`
        : `exit code ${result.code}`;
  const failAs = options.failAs ?? ((message, hint) => new InstallError(message, hint));
  return failAs(
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
  await fse.ensureDir(path.dirname(logFile));
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
