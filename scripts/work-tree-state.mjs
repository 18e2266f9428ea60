// What `git status` shows of a work tree, with a digest of each file it lists: taken before and
// after a test run, the difference is what the run changed (scripts/run-tests.mjs).
import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {readFileSync} from 'node:fs';
import path from 'node:path';

function digest(file) {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return 'absent';
  }
}

/**
 * Map of path -> "<XY status> <sha256 of the file>" for every path `git status --porcelain`
 * lists (untracked files one by one); undefined when `cwd` is not in a git work tree.
 */
export function workTreeState(cwd = process.cwd()) {
  let out;
  try {
    out = execFileSync('git', ['status', '--porcelain=v1', '-z', '--untracked-files=all'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return undefined;
  }
  const state = new Map();
  const entries = out.split('\0');
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    if (!entry) continue;
    const status = entry.slice(0, 2);
    const file = entry.slice(3);
    // With -z a rename or copy is followed by its source path.
    if (status[0] === 'R' || status[0] === 'C') i++;
    state.set(file, `${status} ${digest(path.join(cwd, file))}`);
  }
  return state;
}

/** The paths whose status or content differs between two states, as porcelain-like lines. */
export function changedFiles(before, after) {
  const lines = [];
  for (const [file, now] of after) {
    if (before.get(file) !== now) lines.push(`${now.slice(0, 2)} ${file}`);
  }
  for (const [file, was] of before) {
    if (!after.has(file)) lines.push(`${was.slice(0, 2)} ${file} (no longer listed)`);
  }
  return lines.sort();
}
