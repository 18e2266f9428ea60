import path from 'node:path';
import {pathToFileURL} from 'node:url';
import test from 'ava';

type Markers = typeof import('../../scripts/protection-markers.mjs');
// The script is plain JavaScript outside the compiled tree: loaded from the package root, where
// ava runs its tests (as dist/test/ and as the unit lane's dist/unit/).
const markers = pathToFileURL(path.resolve('scripts', 'protection-markers.mjs')).href;
const {spanAfter} = (await import(markers)) as Markers;

// Compiled the way tsc writes it: four spaces a level, no blank lines.
const compiled = [
  'async switchTo(id) {',
  '    const tmp = next();',
  '    // protection R4-symlink: current must be a symlink',
  '    // a plain comment below the marker',
  '    if (!stat.isSymbolicLink()) {',
  '        throw new ConfigError(`${link} is a file`,',
  '            hint);',
  '    }',
  '    await fsp.rename(tmp, link);',
  '}',
];

test('a marker protects the statement after it: its lines, the deeper ones, its closing brace', t => {
  const [start, end] = spanAfter(compiled, 2);
  t.deepEqual(compiled.slice(start, end), compiled.slice(4, 8));
});

test('a one-line statement is its own span; a nested marker ends the span above it', t => {
  const lines = [
    '    // protection R1-building: a release left building is marked failed',
    '    if (building) {',
    '        // protection R1-stop-child: its installer is stopped first',
    '        await stop(child);',
    '        await markFailed(id);',
    '    }',
  ];
  t.deepEqual(spanAfter(lines, 0), [1, 2]);
  t.deepEqual(spanAfter(lines, 2), [3, 4]);
});
