import {parse as parseToml} from 'smol-toml';
import {IntegrityError} from '../support/errors.js';
import {pinFromPipHash} from './integrity.js';
import {parseRequirements, type PipRequirement} from './requirements.js';
import {normalizePypiName} from './vendor-manifest.js';

/**
 * What uv.lock and poetry.lock readers share (lib/pins/uv-lock.ts, lib/pins/poetry-lock.ts): the
 * walk from the project to the packages it needs with the environment markers on the way, the
 * requirements file pip installs them from, and how a refused lock is reported.
 */

/** One package of a lock, as the walk sees it: its pins, and the packages it depends on. */
export type LockNode = {
  name: string;
  version: string;
  /** Every file hash the lock pins, `sha256:<hex>`; empty for a node that is not an artifact. */
  hashes: string[];
  edges: LockEdge[];
  /** False for the project itself and for an extra's node: walked through, never installed. */
  artifact: boolean;
};

export type LockEdge = {to: string; marker: string | undefined};

/** A requirement derived from a lock: pip's reading of it, and the hashes as the lock wrote them. */
export type LockRequirement = PipRequirement & {hashes: string[]};

/** The most marker alternatives kept for one package; past it the package is needed everywhere. */
const MAX_ALTERNATIVES = 32;

/** Steps of the marker walk before a lock is refused (a real lock of thousands needs far fewer). */
export const MAX_MARKER_STEPS = 250_000;

function markersTooComplex(): IntegrityError {
  return new IntegrityError(
    `The lock's environment markers take more than ${MAX_MARKER_STEPS} steps to combine; no lock a resolver writes is that tangled.`,
    'Regenerate the lock with uv lock or poetry lock; if it is really that large, say so in an issue.',
  );
}

/** Problems of one lock, reported together as one IntegrityError. */
export class LockProblems {
  private readonly items: string[] = [];

  constructor(
    private readonly file: string,
    private readonly fix: string,
  ) {}

  add(message: string): void {
    this.items.push(message);
  }

  throwIfAny(): void {
    if (this.items.length === 0) return;
    const shown = this.items.slice(0, 20).map(m => `  - ${m}`);
    if (this.items.length > 20) shown.push(`  - ... and ${this.items.length - 20} more`);
    throw new IntegrityError(
      `${this.file}: ${this.items.length} problem${this.items.length === 1 ? '' : 's'}; nothing was installed:\n${shown.join('\n')}`,
      this.fix,
    );
  }
}

/** The TOML of a lock, or a refusal naming the file. */
export function readLockToml(text: string, file: string, fix: string): Record<string, unknown> {
  try {
    return parseToml(text);
  } catch (error) {
    const problems = new LockProblems(file, fix);
    problems.add(`is not valid TOML: ${(error as Error).message.split('\n')[0] ?? ''}`);
    problems.throwIfAny();
    throw error;
  }
}

/**
 * The environment marker under which each node is needed, walking from `roots`: the `or` of every
 * path's `and` of edge markers; undefined when some path has none (needed everywhere). A node the
 * walk never reaches is absent from the result.
 */
export function neededMarkers(
  nodes: Map<string, LockNode>,
  roots: string[],
): Map<string, string | undefined> {
  // Per node, the alternatives found so far: each a sorted set of markers that must all hold.
  const found = new Map<string, string[][]>();
  const queue: Array<[string, string[]]> = roots.map(root => [root, []]);
  // Read by index (shift() is linear), and bounded: a lock whose markers would take longer than
  // any real one is refused rather than left to hold the deploy.
  for (let head = 0; head < queue.length; head++) {
    if (queue.length > MAX_MARKER_STEPS) throw markersTooComplex();
    const [key, conj] = queue[head] ?? ['', []];
    const known = found.get(key) ?? [];
    // An alternative implied by a weaker one adds nothing.
    if (known.some(k => k.every(m => conj.includes(m)))) continue;
    const kept = known.filter(k => !conj.every(m => k.includes(m)));
    const next = kept.length >= MAX_ALTERNATIVES ? [[]] : [...kept, conj];
    found.set(key, next);
    const added = next.at(-1) ?? [];
    for (const edge of nodes.get(key)?.edges ?? []) {
      const more = edge.marker === undefined ? added : [...new Set([...added, edge.marker])].sort();
      queue.push([edge.to, more]);
    }
  }
  const out = new Map<string, string | undefined>();
  for (const [key, alternatives] of found) out.set(key, markerText(alternatives));
  return out;
}

function markerText(alternatives: string[][]): string | undefined {
  if (alternatives.some(a => a.length === 0)) return undefined;
  const ands = alternatives.map(a =>
    a.length === 1 ? (a[0] ?? '') : a.map(m => `(${m})`).join(' and '),
  );
  return ands.length === 1 ? ands[0] : ands.map(a => `(${a})`).join(' or ');
}

/**
 * The requirements the walk reached, one per artifact node, sorted by name. Two nodes of one
 * name (uv forks a resolution by marker) are both kept: pip applies the one whose marker holds.
 */
export function lockRequirements(
  nodes: Map<string, LockNode>,
  markers: Map<string, string | undefined>,
): LockRequirement[] {
  const out: LockRequirement[] = [];
  for (const [key, marker] of markers) {
    const node = nodes.get(key);
    if (!node?.artifact) continue;
    const integrity = node.hashes.map(h => pinFromPipHash(h) ?? '').join(' ');
    out.push({
      name: node.name,
      version: node.version,
      integrity,
      marker,
      line: 0,
      hashes: node.hashes,
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
}

/**
 * The requirements file pip installs from: one line per requirement, `name==version ; marker
 * --hash=...`. It is read back as pip reads it (lib/pins/requirements.ts) and must give the same
 * requirements, so nothing in a lock (a marker with an option in it) can make pip read more.
 */
export function requirementsText(reqs: LockRequirement[], file: string, fix: string): string {
  const problems = new LockProblems(file, fix);
  const lines = reqs.map(req => {
    const marker = req.marker === undefined ? '' : ` ; ${req.marker}`;
    const hashes = req.hashes.map(h => `--hash=${h}`).join(' ');
    return `${req.name}==${req.version}${marker} ${hashes}`;
  });
  const text = lines.map(l => `${l}\n`).join('');
  let reread: PipRequirement[] = [];
  try {
    reread = parseRequirements(text, file);
  } catch (error) {
    problems.add(
      `a requirement derived from it is not one pip reads as written: ${(error as Error).message}`,
    );
  }
  reqs.forEach((req, i) => {
    const back = reread[i];
    if (
      reread.length > 0 &&
      (back?.name !== req.name || back.version !== req.version || back.marker !== req.marker)
    ) {
      problems.add(
        `${req.name}==${req.version}: its marker "${req.marker ?? ''}" would not reach pip as written`,
      );
    }
  });
  problems.throwIfAny();
  return text;
}

/** A `sha256:<hex>` pin as pip takes it, or undefined. */
export function pipHash(value: unknown): string | undefined {
  return typeof value === 'string' && pinFromPipHash(value) !== undefined ? value : undefined;
}

/** An index URL as locks and deploy.json compare: without a trailing slash. */
export function sameIndex(url: string, indexes: string[]): boolean {
  const plain = (u: string) => u.replace(/\/+$/, '');
  return indexes.some(i => plain(i) === plain(url));
}

/** Markers are text pip parses; a lock's marker is kept only when it is plain printable ASCII. */
export function markerOf(value: unknown): string | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[\x20-\x7e]*$/.test(value) || /[#\\]/.test(value))
    return null;
  return value.trim() === '' ? undefined : value.trim();
}

export const normalName = normalizePypiName;

export function isTable(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
  );
}

export function tables(value: unknown): Array<Record<string, unknown>> {
  return Array.isArray(value) ? value.filter(isTable) : [];
}
