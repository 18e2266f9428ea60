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
  /** Why a failed or bad release is so. */
  error: string | null;
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
  const releases: ReleaseSummary[] = listed.map(({id, meta, unreadable}) => ({
    id,
    state: meta?.state ?? 'unknown',
    current: id === currentId,
    appSha: meta?.app.sha ?? null,
    vendorSha: meta?.vendor?.sha ?? null,
    requestedRev: meta?.app.requested ?? null,
    createdAt: meta?.createdAt ?? null,
    error: meta ? (meta.error ?? null) : (unreadable ?? NO_METADATA),
    signatures: meta?.signatures ?? null,
  }));
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
