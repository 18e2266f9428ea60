#!/usr/bin/env node
// Writes docs/reliability.md from a test run: every case of the reliability list, the tests tagged
// [Rn] for it, and how they went, plus the figures the tests recorded. Not written by hand.
//   node scripts/reliability-table.mjs test-results/tap.txt test-results/figures.jsonl docs/reliability.md
import {existsSync, readFileSync, writeFileSync} from 'node:fs';

const [
  tapFile = 'test-results/tap.txt',
  figuresFile = 'test-results/figures.jsonl',
  out = 'docs/reliability.md',
] = process.argv.slice(2);

const cases = [
  [
    1,
    'A',
    'SIGKILL at each phase: current is an old or new complete release; the next run cleans up',
  ],
  [2, 'A', 'a reader stat()s current/... through 1000 switches and rollbacks: zero ENOENT'],
  [
    3,
    'A',
    'stale temp link from a killed run (even to a directory): the switch still works, no link inside a release',
  ],
  [4, 'A', 'current is a real dir / regular file / dangling link: refuse, never rm -rf'],
  [
    5,
    'A',
    'rollback when the previous release is unfinished / bad / pruned: skip to the last good or fail clearly',
  ],
  [
    6,
    'A',
    "prune after rollback and after N failed deploys: current's target and the last good release survive",
  ],
  [7, 'A', 'fetch/auth fails before the release dir exists: releases/ byte-for-byte unchanged'],
  [
    8,
    'A',
    'redeploy the same sha with a partial dir present: new id or error, never reuse the partial dir',
  ],
  [9, 'B', 'deploys racing behind a barrier: exactly one proceeds, the others name the holder'],
  [10, 'B', 'deploy, rollback, prune at once: serialized'],
  [11, 'B', 'holder SIGKILLed: stale takeover is atomic; a live holder is never robbed'],
  [12, 'B', "the loser's failure path never deletes the winner's lock"],
  [
    13,
    'C',
    'tree entries .., ., .git and its case/Unicode/NTFS variants, names with / or \\: rejected',
  ],
  [
    14,
    'C',
    'symlink to outside, then files under it in the next commit: nothing written outside the release',
  ],
  [
    15,
    'C',
    'symlinks in the app/vendor tree resolving outside (package-lock.json -> /etc/passwd): rejected before reading',
  ],
  [16, 'C', 'duplicate tree entries / file and directory of the same name: error'],
  [17, 'C', 'delta with a huge declared size, huge blob, zlib bomb: bounded memory, error'],
  [18, 'C', 'archives with ../x, /abs, hard links, symlink-then-write: nothing escapes'],
  [19, 'C', 'wheel with a sibling-prefix path or RECORD ../: rejected'],
  [20, 'C', 'gzip/zip bomb, huge sizes, 1M entries: caps trigger'],
  [
    21,
    'C',
    'vendor-sync gets Content-Disposition ../../x or an asset name with /: basename only, allowlisted',
  ],
  [22, 'D', 'one bit flipped in a vendored file: hash mismatch before npm/pip runs'],
  [
    23,
    'D',
    'lockfile resolved to another host / http: / git+ / sha1-only / no integrity: rejected before install',
  ],
  [24, 'D', 'requirement unhashed or unpinned: refused'],
  [25, 'D', '--rev abbreviated/branch: resolved to the full sha and recorded'],
  [
    26,
    'D',
    'upstream re-publishes a version with different bytes: vendor-sync refuses to overwrite',
  ],
  [27, 'E', 'token absent from .git/config, logs, error objects, argv, installer env'],
  [28, 'E', 'cross-host redirect / https->http downgrade: no Authorization forwarded'],
  [29, 'E', 'repeated 401: bounded, no loop'],
  [30, 'F', 'reset mid-pack, truncated pack: no pack kept, nothing checked out'],
  [31, 'F', 'server stalls after headers: timeout fires'],
  [
    32,
    'F',
    '5xx, 429/403 with retry-after / x-ratelimit-reset: honoured, give up after N, clear error',
  ],
  [33, 'F', 'ENOSPC during fetch, checkout, install: cleaned up, current untouched'],
  [
    34,
    'G',
    'a deploy.json path (shared entry, install directory, venv, requirements, hook cwd) that goes through a symlink of the app tree, or names .repodeploy: refused before anything is removed or written; nothing outside the release or in another release touched',
  ],
  [
    35,
    'G',
    'credentials go only to origins the node or CI names; never to a host a changeset names (deploy.json vendor.url, .gitmodules); never over plain http except loopback',
  ],
  [
    36,
    'G',
    'a requirements or lockfile line that the check reads differently than pip/npm do (comment ending in "\\", option lines, -r/-c, ".."): refused; the installer cannot reach any index whatever the file says',
  ],
  [
    37,
    'G',
    'a live lock owner in another PID namespace or on another host with the same name: not taken over (exit 7)',
  ],
  [
    38,
    'G',
    'clock stepped back or forward between deploys: rollback and prune follow the recorded order of what was live',
  ],
  [
    39,
    'G',
    'a release whose release.json exists but cannot be read (newer format, unknown state): kept and reported, never deleted; unknown dirs reported',
  ],
  [
    40,
    'G',
    'SIGTERM/SIGINT mid-install or mid-hook: signal forwarded to the process group, release marked failed, history written, lock released; a timeout stops the whole process group',
  ],
  [41, 'G', 'history.jsonl ending in a cut line: the next record starts on its own line'],
  [
    43,
    'G',
    'a bundle is accepted only against a checksum or signature the node pins, not only one it carries',
  ],
];

const tests = new Map(cases.map(([n]) => [n, []]));
let total = 0;
if (existsSync(tapFile)) {
  for (const line of readFileSync(tapFile, 'utf8').split('\n')) {
    const m = /^(not ok|ok) \d+ - (.*)$/.exec(line);
    if (!m) continue;
    total++;
    const [, result, title] = m;
    for (const tag of title.matchAll(/\[R(\d+)\]/g)) {
      tests.get(Number(tag[1]))?.push({
        title: title.replace(/\s*\[R\d+\]/g, ''),
        ok: result === 'ok' && !/# SKIP/i.test(title),
      });
    }
  }
}
const figures = existsSync(figuresFile)
  ? readFileSync(figuresFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(l => JSON.parse(l))
  : [];

const esc = s => s.replace(/\|/g, '\\|');
const rows = cases.map(([n, group, text]) => {
  const list = tests.get(n);
  const result =
    list.length === 0
      ? 'no test yet'
      : list.every(t => t.ok)
        ? `pass (${list.length})`
        : `**FAIL** (${list.filter(t => !t.ok).length} of ${list.length})`;
  const names =
    list.length === 0 ? '—' : list.map(t => `${t.ok ? '✔' : '✘'} ${esc(t.title)}`).join('<br>');
  return `| ${n} | ${group} | ${esc(text)} | ${names} | ${result} |`;
});
const covered = cases.filter(([n]) => tests.get(n).length > 0).length;
const failing = cases.filter(([n]) => tests.get(n).some(t => !t.ok)).length;
const lines = [
  '# Reliability: cases, tests, results',
  '',
  'Generated by `scripts/reliability-table.mjs` from the last test run (`npm test`, or `npm run test:stress`',
  'for the long loops). Each case of the reliability list, the tests tagged `[Rn]` for it, and how they went.',
  '',
  `Cases with tests: ${covered} of ${cases.length}; cases with a failing test: ${failing}; tests in the run: ${total}.`,
  '',
  '| # | group | case | tests | result |',
  '| --- | --- | --- | --- | --- |',
  ...rows,
  '',
  '## Figures measured by the run',
  '',
  figures.length === 0
    ? 'None recorded in this run.'
    : '| case | figure | value |\n| --- | --- | --- |',
  ...figures.map(f => `| ${f.case} | ${esc(f.name)} | ${f.value} |`),
  '',
];
writeFileSync(out, lines.join('\n'));
