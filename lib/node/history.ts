import {promises as fsp} from 'node:fs';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import type {RecordedSigners} from '../signing/recorded.js';
import {appendLineDurable} from '../support/fs.js';
import {redact} from '../support/redact.js';
import {HISTORY_FILE} from './layout.js';

/** One line of `<root>/history.jsonl`: every attempt, successful or not. */
export type HistoryRecord = {
  time: string;
  command: string;
  user: string;
  host: string;
  outcome: 'success' | 'failure';
  requestedRev?: string;
  appSha?: string;
  vendorSha?: string;
  releaseId?: string;
  previousReleaseId?: string;
  durationMs?: number;
  /** Rollback: why the release left was marked bad. */
  reason?: string;
  /** Releases a prune removed. */
  pruned?: string[];
  error?: {code: string; message: string};
  /** Who signed the changeset, when a signing policy verified it. */
  signatures?: RecordedSigners;
};

/** Append `record` to the root's history (fsynced, secrets removed). */
export async function appendHistory(root: string, record: HistoryRecord): Promise<void> {
  await fse.ensureDir(root);
  await appendLineDurable(path.join(root, HISTORY_FILE), redact(JSON.stringify(record)));
}

/** The root's history, and the lines of it that could not be read (a line cut by a crash). */
export type HistoryReport = {records: HistoryRecord[]; skippedLines: number[]};

/** Every record of the root's history, oldest first; lines that do not parse are skipped. */
export async function readHistory(root: string): Promise<HistoryRecord[]> {
  return (await readHistoryReport(root)).records;
}

/**
 * Every record of the root's history, oldest first, and the numbers (from 1) of the lines that
 * do not parse: a record cut short by a crash mid-append is skipped, the records around it still
 * count, and the cut is reported rather than hidden.
 */
export async function readHistoryReport(root: string): Promise<HistoryReport> {
  let text: string;
  try {
    text = await fsp.readFile(path.join(root, HISTORY_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {records: [], skippedLines: []};
    throw error;
  }
  const records: HistoryRecord[] = [];
  const skippedLines: number[] = [];
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    try {
      records.push(JSON.parse(line) as HistoryRecord);
    } catch {
      skippedLines.push(index + 1);
    }
  });
  return {records, skippedLines};
}
