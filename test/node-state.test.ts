import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test from 'ava';
import {readHistoryReport} from '../lib/history.js';
import {status} from '../lib/status.js';
import {commitRelease, makeWorld, runDeploy, runDeployBin, type World} from './helpers/world.js';

/** Commit version `n` of an app whose install runs `command`, and deploy it. */
async function deployVersion(world: World, n: number, command: string[] = ['true']) {
  await commitRelease(world, n, {install: {command}});
  return runDeploy({root: world.root, rev: 'main', repo: world.appUrl});
}

test('a history.jsonl ending in a cut line: the next record starts on its own line, the cut one is reported [R41]', async t => {
  const world = await makeWorld(t);
  const first = await deployVersion(world, 1);
  const file = path.join(world.root, 'history.jsonl');
  const whole = await fsp.readFile(file, 'utf8');
  // A power loss mid-append: half of a second record made it to disk, without its newline.
  const cut = '{"time":"2026-12-01T10:00:00.000Z","command":"deploy","user":"op","outc';
  await fsp.writeFile(file, whole + cut);

  const second = await deployVersion(world, 2);
  const lines = (await fsp.readFile(file, 'utf8')).split('\n');
  t.is(lines[1], cut, 'the cut line is left as it was');
  t.like(JSON.parse(lines[2] ?? ''), {outcome: 'success', releaseId: second.releaseId});

  const report = await readHistoryReport(world.root);
  t.deepEqual(
    report.records.map(r => r.releaseId),
    [first.releaseId, second.releaseId],
  );
  t.deepEqual(report.skippedLines, [2]);
  const s = await status({root: world.root});
  t.is(s.lastAttempt?.outcome, 'success');
  t.deepEqual(s.warnings, [
    'history.jsonl line 2 is cut short or not JSON (a crash mid-write?); skipped',
  ]);
  const run = await runDeployBin(['status', '--root', world.root]);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /warning {2}history\.jsonl line 2 is cut short/);
});
