import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {appendLineDurable} from './fsutil.js';
import {redact} from './redact.js';

export const HISTORY_FILE = 'history.jsonl';

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
};

/** Append `record` to the root's history (fsynced, secrets removed). */
export async function appendHistory(root: string, record: HistoryRecord): Promise<void> {
  await fsp.mkdir(root, {recursive: true});
  await appendLineDurable(path.join(root, HISTORY_FILE), redact(JSON.stringify(record)));
}

/** Every record of the root's history, oldest first; lines that do not parse are skipped. */
export async function readHistory(root: string): Promise<HistoryRecord[]> {
  let text: string;
  try {
    text = await fsp.readFile(path.join(root, HISTORY_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const out: HistoryRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as HistoryRecord);
    } catch {
      // A line cut by a crash mid-append: the records around it still count.
    }
  }
  return out;
}
