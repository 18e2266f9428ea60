import {
  LockProblems,
  isTable,
  lockRequirements,
  markerOf,
  neededMarkers,
  normalName,
  pipHash,
  readLockToml,
  sameIndex,
  tables,
  type LockEdge,
  type LockNode,
  type LockRequirement,
} from './python-lock.js';

/**
 * uv.lock (uv's `version = 1` lock, revisions 1 to 3) read into the requirements pip installs:
 * from the project package (`source = { editable = "." }` or `{ virtual = "." }`) along
 * `dependencies` (and, with dev, the project's optional and dev dependency groups), each package
 * reached pinned to its version with every hash of its sdist and wheels.
 */

export type UvLockOptions = {file: string; dev: boolean; indexes: string[]};

export const UV_FIX =
  'Lock with uv from the allowed indexes (deploy.json install.indexes), so every package has a registry source and hashed files: `uv lock`.';

const KNOWN_REVISIONS = new Set([undefined, 1, 2, 3]);

type UvPackage = Record<string, unknown> & {name: string; version: string; key: string};

export function parseUvLock(text: string, options: UvLockOptions): LockRequirement[] {
  const toml = readLockToml(text, options.file, UV_FIX);
  const problems = new LockProblems(options.file, UV_FIX);
  if (toml.version !== 1 || !KNOWN_REVISIONS.has(toml.revision as number | undefined)) {
    problems.add(
      `is a uv.lock of version ${toml.version === undefined ? '(none)' : JSON.stringify(toml.version)} revision ${toml.revision === undefined ? '(none)' : JSON.stringify(toml.revision)}, which this deployer does not know (it reads version 1, revisions 1 to 3)`,
    );
    problems.throwIfAny();
  }
  const packages = uvPackages(toml, problems);
  const roots = packages.filter(isProject);
  if (roots.length === 0)
    problems.add('has no project package (source = { editable = "." } or { virtual = "." })');
  const nodes = new Map<string, LockNode>();
  for (const pkg of packages) addNodes(pkg, packages, nodes, options, problems);
  problems.throwIfAny();
  const markers = neededMarkers(
    nodes,
    roots.map(r => (options.dev ? `${r.key}[*dev]` : r.key)),
  );
  for (const key of markers.keys()) checkArtifact(packages, nodes, key, options, problems);
  problems.throwIfAny();
  return lockRequirements(nodes, markers);
}

function uvPackages(toml: Record<string, unknown>, problems: LockProblems): UvPackage[] {
  const out: UvPackage[] = [];
  for (const pkg of tables(toml.package)) {
    const {name, version} = pkg;
    if (typeof name !== 'string' || (version !== undefined && typeof version !== 'string')) {
      problems.add(`a [[package]] without a name or with a version that is not a string`);
      continue;
    }
    const v = typeof version === 'string' ? version : '';
    out.push({...pkg, name: normalName(name), version: v, key: `${normalName(name)}@${v}`});
  }
  return out;
}

function isProject(pkg: UvPackage): boolean {
  const source = isTable(pkg.source) ? pkg.source : {};
  return source.editable === '.' || source.virtual === '.';
}

/** The node of a package, and one per extra of it (and `[*dev]`: the project with every group). */
function addNodes(
  pkg: UvPackage,
  all: UvPackage[],
  nodes: Map<string, LockNode>,
  options: UvLockOptions,
  problems: LockProblems,
): void {
  const edgesOf = (deps: unknown) => uvEdges(pkg, deps, all, problems);
  const base = edgesOf(pkg.dependencies);
  nodes.set(pkg.key, {...pkg, hashes: [], edges: base, artifact: !isProject(pkg)});
  const extra = (key: string, groups: unknown) => {
    const edges = isTable(groups) ? Object.values(groups).flatMap(edgesOf) : [];
    nodes.set(key, {
      ...pkg,
      hashes: [],
      edges: [{to: pkg.key, marker: undefined}, ...edges],
      artifact: false,
    });
  };
  const optional = isTable(pkg['optional-dependencies']) ? pkg['optional-dependencies'] : {};
  for (const [name, deps] of Object.entries(optional)) extra(`${pkg.key}[${name}]`, {[name]: deps});
  if (options.dev && isProject(pkg)) {
    const dev = isTable(pkg['dev-dependencies']) ? pkg['dev-dependencies'] : {};
    extra(`${pkg.key}[*dev]`, {...optional, ...dev});
  }
}

/** The edges of one dependency list: to the package named, and to each extra it asks for. */
function uvEdges(
  from: UvPackage,
  deps: unknown,
  all: UvPackage[],
  problems: LockProblems,
): LockEdge[] {
  const edges: LockEdge[] = [];
  for (const dep of tables(deps)) {
    const target = uvTarget(from, dep, all, problems);
    const marker = markerOf(dep.marker);
    if (marker === null) {
      problems.add(
        `${from.name}: the marker of its dependency ${String(dep.name)} is not plain text pip reads`,
      );
      continue;
    }
    if (target === undefined) continue;
    edges.push({to: target.key, marker});
    const extras = Array.isArray(dep.extra) ? dep.extra.filter(e => typeof e === 'string') : [];
    for (const extra of extras) edges.push({to: `${target.key}[${extra}]`, marker});
  }
  return edges;
}

/** The one package a dependency names (by name, and by version and source when several match). */
function uvTarget(
  from: UvPackage,
  dep: Record<string, unknown>,
  all: UvPackage[],
  problems: LockProblems,
): UvPackage | undefined {
  const name = typeof dep.name === 'string' ? normalName(dep.name) : '';
  let matches = all.filter(p => p.name === name);
  if (matches.length > 1 && typeof dep.version === 'string')
    matches = matches.filter(p => p.version === dep.version);
  if (matches.length > 1 && isTable(dep.source)) {
    const wanted = JSON.stringify(dep.source);
    matches = matches.filter(p => JSON.stringify(p.source) === wanted);
  }
  if (matches.length !== 1) {
    problems.add(
      `${from.name}: its dependency ${name || '(no name)'} names ${matches.length === 0 ? 'no package' : 'several packages'} of the lock`,
    );
    return undefined;
  }
  return matches[0];
}

/** A package the project needs: from an allowed registry, each file hashed; its hashes kept. */
function checkArtifact(
  all: UvPackage[],
  nodes: Map<string, LockNode>,
  key: string,
  options: UvLockOptions,
  problems: LockProblems,
): void {
  const pkg = all.find(p => p.key === key);
  if (!pkg || isProject(pkg)) return;
  const label = `${pkg.name}==${pkg.version}`;
  const source = isTable(pkg.source) ? pkg.source : {};
  const registry = source.registry;
  if (typeof registry !== 'string') {
    const kind = Object.keys(source)[0] ?? 'no';
    problems.add(
      `${label} comes from a ${kind} source (${JSON.stringify(source)}), not from a package index: only indexed files can be vendored`,
    );
    return;
  }
  if (!sameIndex(registry, options.indexes)) {
    problems.add(
      `${label} comes from the index ${registry}, which deploy.json install.indexes does not allow`,
    );
    return;
  }
  const files = [...(isTable(pkg.sdist) ? [pkg.sdist] : []), ...tables(pkg.wheels)];
  const hashes = files.map(f => pipHash(f.hash));
  if (files.length === 0 || hashes.includes(undefined)) {
    problems.add(
      `${label} has ${files.length === 0 ? 'no file' : 'a file with no sha256 hash'} in the lock: pip could not check what it installs`,
    );
    return;
  }
  const node = nodes.get(key);
  if (node) node.hashes = hashes.filter(h => h !== undefined);
}
