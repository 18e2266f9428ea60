import test from 'ava';
import {MAX_MARKER_STEPS, neededMarkers, type LockNode} from '../../lib/pins/python-lock.js';
import {IntegrityError} from '../../lib/support/errors.js';

/** `layers` rows of `width` packages, each depending on every package of the next row. */
function layered(layers: number, width: number, marked: boolean): Map<string, LockNode> {
  const nodes = new Map<string, LockNode>();
  const name = (l: number, w: number) => `p${l}-${w}`;
  nodes.set('root', {name: 'root', version: '1', hashes: [], artifact: false, edges: []});
  for (let l = 0; l < layers; l++) {
    for (let w = 0; w < width; w++) {
      const edges =
        l + 1 < layers
          ? Array.from({length: width}, (_, v) => ({
              to: name(l + 1, v),
              marker: marked ? `python_version >= '3.${(l * width + v) % 97}'` : undefined,
            }))
          : [];
      nodes.set(name(l, w), {name: name(l, w), version: '1', hashes: [], artifact: true, edges});
    }
  }
  const root = nodes.get('root');
  for (let w = 0; w < width; w++) root?.edges.push({to: name(0, w), marker: undefined});
  return nodes;
}

test('the marker walk of a lock without markers is linear: every package needed everywhere', t => {
  const markers = neededMarkers(layered(50, 20, false), ['root']);
  t.is(markers.size, 1 + 50 * 20);
  t.true([...markers.values()].every(m => m === undefined));
});

test('a lock whose markers would take past the cap to combine is refused, not walked for minutes', t => {
  const error = t.throws(() => neededMarkers(layered(50, 20, true), ['root']), {
    instanceOf: IntegrityError,
  });
  t.regex(error.message, new RegExp(`more than ${MAX_MARKER_STEPS} steps`));
});
