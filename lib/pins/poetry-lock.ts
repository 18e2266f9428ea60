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
 * poetry.lock read into the requirements pip installs. Lock version 2.1 (Poetry 2) says per
 * package which `groups` need it and under which `markers`; versions 1.1 and 2.0 (Poetry 1) give
 * a `category` ("main" or "dev") and no marker a package needs: each is needed everywhere.
 * Poetry 1.5 to 1.8 write neither: the packages are then those reached from the project's
 * dependencies in pyproject.toml, with the markers on the way. Packages of the main group only, unless dev; extras-only (`optional = true`) packages are
 * left out. Every package pinned to its version with every hash of its `files`.
 */

export type PoetryLockOptions = {
  file: string;
  dev: boolean;
  indexes: string[];
  /** pyproject.toml beside the lock: the project's own dependencies, for a lock without groups. */
  pyproject?: string | undefined;
};

export const POETRY_FIX =
  'Lock with Poetry from the allowed indexes (deploy.json install.indexes), so every package has hashed files: `poetry lock`.';

const KNOWN_VERSIONS = new Set(['1.1', '2.0', '2.1']);
const PYPI = 'https://pypi.org/simple';

type PoetryPackage = Record<string, unknown> & {name: string; version: string};

export function parsePoetryLock(text: string, options: PoetryLockOptions): LockRequirement[] {
  const toml = readLockToml(text, options.file, POETRY_FIX);
  const problems = new LockProblems(options.file, POETRY_FIX);
  const metadata = isTable(toml.metadata) ? toml.metadata : {};
  const lockVersion = metadata['lock-version'];
  if (typeof lockVersion !== 'string' || !KNOWN_VERSIONS.has(lockVersion)) {
    problems.add(
      `has lock-version ${JSON.stringify(lockVersion)}, which this deployer does not know (it reads 1.1, 2.0 and 2.1)`,
    );
    problems.throwIfAny();
  }
  const packages = poetryPackages(toml, problems);
  // Poetry 1.5 to 1.8 write neither groups nor category: the walk from pyproject.toml says.
  const unsorted = packages.length > 0 && packages.every(p => !('groups' in p || 'category' in p));
  if (unsorted) return walkedFromProject(packages, metadata, options, problems);
  const chosen = packages.filter(pkg => isChosen(pkg, options.dev, problems));
  const nodes = new Map<string, LockNode>();
  for (const pkg of chosen) {
    const hashes = checkPackage(pkg, metadata, options, problems);
    nodes.set(pkg.name, {...pkg, hashes, edges: [], artifact: true});
  }
  problems.throwIfAny();
  const markers =
    lockVersion === '2.1' ? groupMarkers(chosen, options.dev, problems) : everywhere(nodes);
  problems.throwIfAny();
  return lockRequirements(nodes, markers);
}

const PROJECT = '\0project';

/**
 * A lock that does not sort its packages into groups: from the project's dependencies in
 * pyproject.toml (`[tool.poetry.dependencies]`, with dev the groups' and the old
 * `dev-dependencies`) along each package's `[package.dependencies]`, with the markers of each
 * edge. A dependency's `python` or `platform` constraint is not turned into a marker: the package
 * is then needed everywhere, which asks for more, never less.
 */
function walkedFromProject(
  packages: PoetryPackage[],
  metadata: Record<string, unknown>,
  options: PoetryLockOptions,
  problems: LockProblems,
): LockRequirement[] {
  if (options.pyproject === undefined) {
    problems.add(
      'has neither "groups" nor "category" (Poetry 1.5 to 1.8), and there is no pyproject.toml beside it to tell the packages the app needs',
    );
    problems.throwIfAny();
  }
  const project = readLockToml(options.pyproject ?? '', 'pyproject.toml', POETRY_FIX);
  const nodes = new Map<string, LockNode>();
  for (const pkg of packages) {
    nodes.set(pkg.name, {
      ...pkg,
      hashes: [],
      edges: dependencyEdges(pkg.dependencies, problems, pkg.name),
      artifact: true,
    });
  }
  const edges = projectTables(project, options.dev).flatMap(t =>
    dependencyEdges(t, problems, 'pyproject.toml'),
  );
  nodes.set(PROJECT, {name: 'project', version: '', hashes: [], edges, artifact: false});
  // Poetry leaves out what no Python the project allows would install: such edges lead nowhere.
  for (const node of nodes.values()) node.edges = node.edges.filter(e => nodes.has(e.to));
  for (const edge of edges) {
    if (edge.to !== 'python' && edge.marker === undefined && !nodes.has(edge.to))
      missing(edge.to, problems);
  }
  const markers = neededMarkers(nodes, [PROJECT]);
  for (const pkg of packages) {
    const node = nodes.get(pkg.name);
    if (node && markers.has(pkg.name)) node.hashes = checkPackage(pkg, metadata, options, problems);
  }
  problems.throwIfAny();
  return lockRequirements(nodes, markers);
}

function missing(name: string, problems: LockProblems): false {
  problems.add(
    `${name} is a dependency in pyproject.toml, but the lock has no package of that name: lock again`,
  );
  return false;
}

/** The dependency tables of pyproject.toml the install takes. */
function projectTables(project: Record<string, unknown>, dev: boolean): unknown[] {
  const tool = isTable(project.tool) ? project.tool : {};
  const poetry = isTable(tool.poetry) ? tool.poetry : {};
  const groups = isTable(poetry.group) ? Object.values(poetry.group) : [];
  return [
    poetry.dependencies,
    ...(dev
      ? [poetry['dev-dependencies'], ...groups.map(g => (isTable(g) ? g.dependencies : undefined))]
      : []),
  ];
}

/** `name = "spec"`, `{version, markers, optional}`, or a list of those: the edges, not optional ones. */
function dependencyEdges(deps: unknown, problems: LockProblems, from: string): LockEdge[] {
  const edges: LockEdge[] = [];
  for (const [name, spec] of Object.entries(isTable(deps) ? deps : {})) {
    for (const one of Array.isArray(spec) ? spec : [spec]) {
      if (isTable(one) && one.optional === true) continue;
      const marker = isTable(one) ? markerOf(one.markers) : undefined;
      if (marker === null) {
        problems.add(`${from}: the markers of its dependency ${name} are not plain text pip reads`);
        continue;
      }
      edges.push({to: normalName(name), marker});
    }
  }
  return edges;
}

function poetryPackages(toml: Record<string, unknown>, problems: LockProblems): PoetryPackage[] {
  const out: PoetryPackage[] = [];
  for (const pkg of tables(toml.package)) {
    if (typeof pkg.name !== 'string' || typeof pkg.version !== 'string') {
      problems.add('a [[package]] without a name or a version');
      continue;
    }
    out.push({...pkg, name: normalName(pkg.name), version: pkg.version});
  }
  return out;
}

/** Whether the install takes the package: main group (or any with dev), not an extra only. */
function isChosen(pkg: PoetryPackage, dev: boolean, problems: LockProblems): boolean {
  if (pkg.optional === true) return false;
  if (Array.isArray(pkg.groups)) return dev ? pkg.groups.length > 0 : pkg.groups.includes('main');
  if (typeof pkg.category === 'string') return dev || pkg.category === 'main';
  problems.add(
    `${pkg.name}==${pkg.version} has neither "groups" nor "category": the lock does not say whether the app needs it (Poetry 2 writes groups: lock again with it)`,
  );
  return false;
}

/** The package's source allowed, its files each hashed: the hashes, or none with a problem. */
function checkPackage(
  pkg: PoetryPackage,
  metadata: Record<string, unknown>,
  options: PoetryLockOptions,
  problems: LockProblems,
): string[] {
  const label = `${pkg.name}==${pkg.version}`;
  const source = isTable(pkg.source) ? pkg.source : undefined;
  const index = source === undefined ? PYPI : source.type === 'legacy' ? source.url : undefined;
  if (typeof index !== 'string') {
    problems.add(
      `${label} comes from a ${String(source?.type)} source (${String(source?.url)}), not from a package index: only indexed files can be vendored`,
    );
    return [];
  }
  if (!sameIndex(index, options.indexes)) {
    problems.add(
      `${label} comes from the index ${index}, which deploy.json install.indexes does not allow`,
    );
    return [];
  }
  // Lock version 1.1 lists the files apart, under [metadata.files].
  const old = isTable(metadata.files) ? metadata.files[pkg.name] : undefined;
  const files = tables(pkg.files ?? old);
  const hashes = files.map(f => pipHash(f.hash));
  if (files.length === 0 || hashes.includes(undefined)) {
    problems.add(
      `${label} has ${files.length === 0 ? 'no file' : 'a file with no sha256 hash'} in the lock: pip could not check what it installs`,
    );
    return [];
  }
  return hashes.filter(h => h !== undefined);
}

/** Lock 2.1: each package's own `markers`, a string or one per group. */
function groupMarkers(
  chosen: PoetryPackage[],
  dev: boolean,
  problems: LockProblems,
): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  for (const pkg of chosen) {
    const groups = (pkg.groups as unknown[]).filter(
      g => typeof g === 'string' && (dev || g === 'main'),
    );
    const perGroup = groups.map(g =>
      markerOf(isTable(pkg.markers) ? pkg.markers[g as string] : pkg.markers),
    );
    if (perGroup.includes(null)) {
      problems.add(`${pkg.name}==${pkg.version}: its markers are not plain text pip reads`);
      continue;
    }
    const unique = [...new Set(perGroup)];
    out.set(
      pkg.name,
      unique.includes(undefined)
        ? undefined
        : unique.length === 1
          ? (unique[0] ?? undefined)
          : unique.map(m => `(${m})`).join(' or '),
    );
  }
  return out;
}

/**
 * Lock 1.1 and 2.0: no package says its own markers, and the project's own dependencies (with
 * theirs) are in pyproject.toml, not in the lock. The edge markers cannot tell a package the
 * project needs everywhere from one only a dependency needs on some platform, so every package of
 * the group is needed everywhere: a wrong marker would leave out what the app imports.
 */
function everywhere(nodes: Map<string, LockNode>): Map<string, string | undefined> {
  return new Map([...nodes.keys()].map(key => [key, undefined]));
}
