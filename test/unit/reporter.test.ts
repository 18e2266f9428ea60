import {PassThrough} from 'node:stream';
import test from 'ava';
import {phaseLine, streamReporter, type Verbosity} from '../../lib/support/reporter.js';

function capture(verbosity: Verbosity, live = false) {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  let now = 0;
  const reporter = streamReporter(stream, {verbosity, live, clock: () => now});
  return {reporter, text: () => text, advance: (ms: number) => (now += ms)};
}

test('a phase is one line: name, result, time; a skipped one says why', async t => {
  const out = capture('normal');
  await out.reporter.phase(
    'fetch app',
    () => {
      out.reporter.detail('resolve main in /srv/app.git');
      out.advance(420);
      return Promise.resolve(12);
    },
    n => `${n} objects, 3.1 KiB`,
  );
  out.reporter.skipped('reuse install', 'the lockfile changed');
  t.is(
    out.text(),
    'fetch app           12 objects, 3.1 KiB  0.4 s\nreuse install       skipped: the lockfile changed\n',
  );
});

test('verbose: the detail lines under their phase, times in ms; quiet: warnings only', async t => {
  const verbose = capture('verbose');
  await verbose.reporter.phase('install', () => {
    verbose.reporter.detail('run npm ci in .');
    verbose.advance(1234);
    return Promise.resolve();
  });
  t.is(verbose.text(), 'install             1234 ms\n  run npm ci in .\n');
  const quiet = capture('quiet');
  await quiet.reporter.phase('install', () => Promise.resolve());
  quiet.reporter.info('pruned a');
  quiet.reporter.warn('disk nearly full');
  t.is(quiet.text(), 'warning: disk nearly full\n');
});

test('a failed phase prints no result line, but its detail lines', async t => {
  const out = capture('verbose');
  await t.throwsAsync(
    out.reporter.phase('install', () => {
      out.reporter.detail('run npm ci in .');
      return Promise.reject(new Error('boom'));
    }),
  );
  t.is(out.text(), '  run npm ci in .\n');
});

test('live: a spinner redrawn in place at most 10 times a second, cleared for the result', async t => {
  const out = capture('normal', true);
  await out.reporter.phase('install', async () => {
    await new Promise(resolve => setTimeout(resolve, 350));
  });
  const text = out.text();
  const redraws = text.split('\r\x1b[2K').length - 1;
  // About 3 frames in 350 ms, each cleared once more before the result line.
  t.true(redraws >= 2 && redraws <= 8, JSON.stringify(text));
  t.regex(text, /⠋ install {2}0\.0 s/);
  t.true(text.endsWith('\r\x1b[2Kinstall             0.0 s\n'), JSON.stringify(text));
});

test('phaseLine pads the name so the results line up', t => {
  t.is(phaseLine('push', 'main'), 'push                main');
  t.is(phaseLine('a-very-long-phase-name', 'x', 50, true), 'a-very-long-phase-name  x  50 ms');
});

test('live: what a phase says of its progress is in its live line, not in the log', async t => {
  const out = capture('normal', true);
  await out.reporter.phase('fetch app', async progress => {
    progress('12 objects, 3.1 KiB');
    await new Promise(resolve => setTimeout(resolve, 150));
  });
  t.regex(out.text(), /⠋ fetch app {2}12 objects, 3\.1 KiB {2}0\.0 s/);
  const plain = capture('normal');
  await plain.reporter.phase('fetch app', progress => {
    progress('12 objects');
    return Promise.resolve();
  });
  t.is(plain.text(), 'fetch app           0.0 s\n');
});
