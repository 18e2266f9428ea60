import path from 'node:path';
import type {RecordedSigners} from '../signing/recorded.js';
import {readHistoryReport} from './history.js';
import {HISTORY_FILE} from './layout.js';
import {readNodeSettings} from './settings.js';
import {ReleaseStore, type ReleaseState} from './release-store.js';

const NO_METADATA =
  'no .repodeploy/release.json: not a release made here, or its metadata was removed (deploy prune --remove-unknown removes it)';

export type ReleaseSummary = {
  id: string;
  state: ReleaseState | 'unknown';
  current: boolean;
  appSha: string | null;
  vendorSha: string | null;
  requestedRev: string | null;
  createdAt: string | null;
  /** Why a failed or bad release is so: the whole message recorded. */
  error: string | null;
  /** The one line of {@link ReleaseSummary.error} that names the cause (see {@link failureCause}). */
  cause: string | null;
  /** Who signed its app and vendor commits, when a signing policy verified them. */
  signatures: RecordedSigners | null;
};

export type Status = {
  root: string;
  repo: string | null;
  current: ReleaseSummary | null;
  releases: ReleaseSummary[];
  lastAttempt: {
    time: string;
    outcome: string;
    requestedRev: string | null;
    error: string | null;
    /** The one line of the error that names the cause. */
    cause: string | null;
  } | null;
  /** What on the node could not be read and was left alone (history lines cut by a crash...). */
  warnings: string[];
};

/**
 * What is deployed under `root`: the current release, every release present, the last attempt.
 *
 * @example
 * const {current} = await status({root: '/srv/app'})
 */
export async function status(options: {root: string; cwd?: string}): Promise<Status> {
  const root = path.resolve(options.cwd ?? process.cwd(), options.root);
  const store = new ReleaseStore(root);
  const currentId = await store.current();
  const listed = await store.list();
  const releases: ReleaseSummary[] = listed.map(({id, meta, unreadable}) => {
    const error = meta ? (meta.error ?? null) : (unreadable ?? NO_METADATA);
    return {
      id,
      state: meta?.state ?? 'unknown',
      current: id === currentId,
      appSha: meta?.app.sha ?? null,
      vendorSha: meta?.vendor?.sha ?? null,
      requestedRev: meta?.app.requested ?? null,
      createdAt: meta?.createdAt ?? null,
      error,
      cause: error === null ? null : failureCause(error),
      signatures: meta?.signatures ?? null,
    };
  });
  const history = await readHistoryReport(root);
  const last = history.records.at(-1);
  const settings = await readNodeSettings(root);
  return {
    root,
    repo: settings.repo ?? null,
    current: releases.find(r => r.current) ?? null,
    releases,
    lastAttempt: last
      ? {
          time: last.time,
          outcome: last.outcome,
          requestedRev: last.requestedRev ?? null,
          error: last.error?.message ?? null,
          cause: last.error ? failureCause(last.error.message) : null,
        }
      : null,
    warnings: [
      ...listed.flatMap(r =>
        r.meta ? [] : [`releases/${r.id}: ${r.unreadable ?? NO_METADATA}; kept as it is`],
      ),
      ...history.skippedLines.map(
        n => `${HISTORY_FILE} line ${n} is cut short or not JSON (a crash mid-write?); skipped`,
      ),
    ],
  };
}

/** A line of an installer's log that says what went wrong (npm `npm error`, pip `ERROR:`). */
const LOG_ERROR = /\b(error|ERR!)\b/i;

/**
 * The one line of a recorded failure that names its cause, for the listings. A message is often
 * a heading and the list it introduces (`1 npm artifact problem; nothing was installed:` and
 * `- ms@2.1.2: not in the vendor repo`): then the first item, and how many more there are. An
 * installer's failure quotes its log: then the first line and the log's first error line.
 *
 * @example failureCause('2 npm artifact problems; nothing was installed:\n  - a@1: not in the vendor repo\n  - b@2: …')
 * // 'a@1: not in the vendor repo (and 1 more)'
 */
export function failureCause(message: string): string {
  const lines = message.split('\n').map(line => line.trim());
  const first = lines[0] ?? '';
  const items = lines.filter(line => line.startsWith('- ')).map(line => line.slice(2));
  if (first.endsWith(':') && items.length > 0) {
    const more = items.length - 1;
    return `${items[0] ?? ''}${more > 0 ? ` (and ${more} more)` : ''}`;
  }
  const log = lines.filter(line => line.startsWith('| ')).map(line => line.slice(2).trim());
  const logError = log.find(line => LOG_ERROR.test(line));
  return logError ? `${first} ${logError}` : first;
}
