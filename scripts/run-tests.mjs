#!/usr/bin/env node
// Runs the ava suite under c8 (coverage) with the TAP reporter, passes its output through, and
// ends with the one line CI reads: "N passed, N failed[, N skipped]". Results go to test-results/
// only; a run that changes a file git sees (tracked or not ignored) fails, naming the files.
import {spawn} from 'node:child_process';
import {mkdirSync, openSync, writeFileSync, writeSync} from 'node:fs';
import {createInterface} from 'node:readline';
import {fileURLToPath} from 'node:url';
import {changedFiles, workTreeState} from './work-tree-state.mjs';

const extra = process.argv.slice(2);
// The whole suite covers about 94 % of the lines of lib/ and vendor-sync/ (c8, after source
// maps); CI fails below this, so that code added without tests shows up. A run of chosen files
// (`npm run test:stress`) covers less by design: the threshold holds for the full suite only.
const MIN_LINES_PERCENT = 92;
const coverageCheck =
  extra.length === 0 ? ['--check-coverage', `--lines=${MIN_LINES_PERCENT}`] : [];
const before = workTreeState();
// The TAP stream and the figures tests record feed docs/reliability.md when asked for it:
// `npm run reliability` (scripts/reliability-table.mjs) reads them from here.
mkdirSync('test-results', {recursive: true});
writeFileSync('test-results/figures.jsonl', '');
const tap = openSync('test-results/tap.txt', 'w');
process.env.REPODEPLOY_FIGURES = `${process.cwd()}/test-results/figures.jsonl`;
// c8 merges every process's raw V8 coverage in its own heap once the suite ends: each run of a
// bundled command writes about 11 MB, and the suite's 500-odd runs pass Node's default heap. The
// larger heap is c8's alone (its children, the tests, keep Node's default).
const c8 = fileURLToPath(new URL('../node_modules/c8/bin/c8.js', import.meta.url));
const child = spawn(
  process.execPath,
  [
    '--max-old-space-size=12288',
    c8,
    '--reporter=text-summary',
    '--reporter=lcov',
    '--all',
    '--src=dist/lib',
    '--src=dist/vendor-sync',
    '--exclude=dist/test/**',
    '--exclude=dist/examples/**',
    // The bins run bundles (dist/bin) whose source maps lead back to lib/ and vendor-sync/, and
    // into node_modules: filter after remapping, so coverage is that of our own sources.
    '--exclude=test/**',
    '--exclude=**/node_modules/**',
    '--exclude=dist/bin/**',
    '--exclude=bin/**',
    '--exclude-after-remap',
    ...coverageCheck,
    'ava',
    '--tap',
    ...extra,
  ],
  {stdio: ['ignore', 'pipe', 'inherit']},
);
let passed = 0;
let failed = 0;
let skipped = 0;
const lines = createInterface({input: child.stdout});
const linesDone = new Promise(resolve => lines.once('close', resolve));
lines.on('line', line => {
  process.stdout.write(`${line}\n`);
  writeSync(tap, `${line}\n`);
  if (/^not ok \d+/.test(line)) failed++;
  else if (/^ok \d+.*# (SKIP|TODO)/i.test(line)) skipped++;
  else if (/^ok \d+/.test(line)) passed++;
});
const code = await new Promise(resolve => child.on('close', resolve));
await linesDone;
if (code !== 0 && failed === 0) {
  // The runner itself failed: a crash, a timeout, or lines covered below the threshold.
  failed = 1;
  process.stdout.write(
    `the run failed outside the tests (exit code ${code}): a crash, a timeout, or coverage below ${MIN_LINES_PERCENT} % of lines (c8 says which, above)\n`,
  );
}
const changed = before ? changedFiles(before, workTreeState()) : [];
if (changed.length > 0) {
  // Counted as a failure: the tests must leave the checkout as they found it.
  failed++;
  process.stdout.write(
    `the test run changed files in the work tree (git status --porcelain):\n${changed.map(line => `  ${line}`).join('\n')}\n`,
  );
}
process.stdout.write(
  `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`,
);
process.exitCode = code === 0 && changed.length === 0 ? 0 : 1;
