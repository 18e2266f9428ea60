// The markers scripts/protection-check.mjs keys its edits on. A protected statement in lib/ or
// vendor-sync/ carries a comment on the line before it:
//   // protection R4-symlink: current must be a symlink before a switch
// tsc keeps comments, so the marker is in the compiled file too, wherever that file is. An edit
// names the marker and applies to the statement after it (its span), not to a file path and the
// whole compiled text: moving a file, or reformatting anything else, leaves the check working.
import {readdirSync, readFileSync} from 'node:fs';
import path from 'node:path';

/** `// protection <key>: <what it protects>`; a key is the case and a name: R4-symlink. */
const MARKER = /^\s*\/\/ protection (R\d+-[a-z0-9-]+):/;
const SOURCE_DIRS = ['lib', 'vendor-sync'];
const COMPILED_DIRS = ['dist/lib', 'dist/vendor-sync'];

function filesUnder(dir, ending) {
  const found = [];
  for (const entry of readdirSync(dir, {withFileTypes: true})) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...filesUnder(full, ending));
    else if (entry.name.endsWith(ending)) found.push(full);
  }
  return found;
}

/** Each marker key in the files under `dirs` with its places (file:line), more than one is a fault. */
function markersIn(root, dirs, ending) {
  const places = new Map();
  for (const dir of dirs)
    for (const file of filesUnder(path.join(root, dir), ending)) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        const key = MARKER.exec(line)?.[1];
        if (key === undefined) return;
        const where = {file, line: i, rel: path.relative(root, file)};
        places.set(key, [...(places.get(key) ?? []), where]);
      });
    }
  return places;
}

export const sourceMarkers = root => markersIn(root, SOURCE_DIRS, '.ts');
export const compiledMarkers = root => markersIn(root, COMPILED_DIRS, '.js');

const indentOf = line => /^ */.exec(line)[0].length;

/**
 * The lines marker line `at` protects, as [start, end): the statement after it (past any other
 * comment lines right below the marker). That is its first line, the lines indented deeper, and
 * a closing `}`, `)` or `]` at the marker's own indentation. A nested marker ends the span: an
 * edit belongs to the nearest marker above it. tsc writes no blank lines, so indentation is what
 * tells where the statement ends.
 */
export function spanAfter(lines, at) {
  const indent = indentOf(lines[at]);
  let start = at + 1;
  while (start < lines.length && /^\s*\/\//.test(lines[start])) start++;
  let end = start + 1;
  while (end < lines.length && indentOf(lines[end]) > indent && !MARKER.test(lines[end])) end++;
  if (end < lines.length && indentOf(lines[end]) === indent && /^\s*[}\])]/.test(lines[end])) end++;
  return [start, end];
}

/**
 * Where edit `[where, find, replace]` applies: `where` is a marker key (its span in whichever
 * compiled file holds it), or a path under dist/ (the whole file, for code kept without
 * markers). `find` must occur exactly once there. Returns the file, its text, and the offsets
 * of `find` in it; throws saying what is wrong.
 */
export function locate(root, compiled, [where, find]) {
  let file;
  let from = 0;
  let to;
  let text;
  if (where.endsWith('.js')) {
    file = path.join(root, 'dist', where);
    text = readFileSync(file, 'utf8');
    to = text.length;
  } else {
    const places = compiled.get(where) ?? [];
    if (places.length !== 1)
      throw new Error(`marker ${where}: found ${places.length} times in dist/ (build first?)`);
    file = places[0].file;
    text = readFileSync(file, 'utf8');
    const lines = text.split('\n');
    const [start, end] = spanAfter(lines, places[0].line);
    from = lines.slice(0, start).join('\n').length + (start > 0 ? 1 : 0);
    to = from + lines.slice(start, end).join('\n').length;
  }
  const span = text.slice(from, to);
  const count = span.split(find).length - 1;
  if (count !== 1) {
    const what = where.endsWith('.js') ? where : `the statement after marker ${where}`;
    throw new Error(`${what}: expected the text once, found it ${count} times: ${find}`);
  }
  const at = from + span.indexOf(find);
  return {file, text, at, end: at + find.length};
}

/**
 * Faults in the markers and the checks' edits, as messages: a marker in the sources that no
 * check uses, a marker key twice in the sources, an edit whose marker is in no source, an edit
 * that does not apply to the compiled code. Empty when all is well.
 */
export function markerFaults(root, checks) {
  const faults = [];
  const sources = sourceMarkers(root);
  const compiled = compiledMarkers(root);
  const used = new Set();
  for (const check of checks)
    for (const edit of check.edits) {
      if (!edit[0].endsWith('.js')) used.add(edit[0]);
      if (!edit[0].endsWith('.js') && !sources.has(edit[0]))
        faults.push(`${check.case}: marker ${edit[0]} is in no source under lib/ or vendor-sync/`);
      try {
        locate(root, compiled, edit);
      } catch (error) {
        faults.push(`${check.case}: ${error.message}`);
      }
    }
  for (const [key, places] of sources) {
    const where = places.map(p => `${p.rel}:${p.line + 1}`).join(', ');
    if (places.length > 1) faults.push(`marker ${key} stands in more than one place: ${where}`);
    if (!used.has(key)) faults.push(`marker ${key} (${where}) is used by no check`);
  }
  return faults;
}
