import path from 'node:path';
import semver from 'semver';
import validateName from 'validate-npm-package-name';
import {parse as parseYaml} from 'yaml';
import type {PnpmInstallSettings} from './deploy-config.js';
import {ConfigError} from '../support/errors.js';
import {hasSha512, shortIntegrity} from './integrity.js';
import {
  addRequirement,
  currentPlatform,
  platformMatches,
  resolvedProblem,
  type NpmRequirement,
  type Platform,
} from './npm-lockfile.js';
import {readRegularFile} from './vendor-manifest.js';
import {IntegrityProblems} from '../install/types.js';

/** The name pnpm gives its lockfile. */
export const PNPM_LOCKFILE = 'pnpm-lock.yaml';

/** A `packages` entry (and, in lockfile 6, its graph too) as far as it matters here. */
type PackageEntry = {
  resolution?: {
    integrity?: string;
    tarball?: string;
    type?: string;
    repo?: string;
    directory?: string;
  };
  name?: string;
  version?: string;
  os?: string[];
  cpu?: string[];
  libc?: string[];
  optional?: boolean;
  dev?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
};

type DepSpec = string | {specifier?: string; version?: string};
type Importer = {
  dependencies?: Record<string, DepSpec>;
  optionalDependencies?: Record<string, DepSpec>;
  devDependencies?: Record<string, DepSpec>;
};

type PnpmLockfile = {
  lockfileVersion?: unknown;
  importers?: Record<string, Importer>;
  packages?: Record<string, PackageEntry>;
  snapshots?: Record<string, PackageEntry>;
  patchedDependencies?: Record<string, string | {path?: string}>;
} & Importer;

/** What a pnpm install needs from the lockfile: the registry tarballs, and the app's projects. */
export type PnpmLock = {
  /** One per distinct tarball; `keys` are the lockfile package keys installed from it. */
  requirements: NpmRequirement[];
  /** The workspace projects (importers), as paths relative to the lockfile's directory. */
  importers: string[];
  /** The importers that get a node_modules of their own: those with dependencies to install. */
  installed: string[];
  /** The patch files (`patchedDependencies`), relative to the lockfile's directory. */
  patches: string[];
  /** The lockfile's major version: 6 or 9. */
  major: 6 | 9;
};

/** One package the install reaches, and whether only optional edges reach it. */
type Reached = {key: string; optional: boolean};

/**
 * The tarballs `pnpm install --frozen-lockfile` fetches for the app at `releaseDir`, read from
 * `<directory>/pnpm-lock.yaml` (lockfileVersion 6.x or 9.0). See {@link parsePnpmLock}.
 */
export async function readPnpmLock(
  releaseDir: string,
  settings: PnpmInstallSettings,
  platforms: Platform[] = [currentPlatform()],
): Promise<PnpmLock> {
  const rel = path.posix.join(settings.directory, PNPM_LOCKFILE);
  const text = await readRegularFile(path.join(releaseDir, rel), rel);
  if (text === undefined) {
    throw new ConfigError(
      `deploy.json asks for a pnpm install, but the app has no ${rel}.`,
      'Commit pnpm-lock.yaml (pnpm install writes it).',
    );
  }
  return parsePnpmLock(text, rel, settings, platforms);
}

/**
 * The lockfile's tarballs, walked from every importer (workspace project) through dependencies
 * and optional dependencies, and devDependencies only when `dev`: packages for none of the
 * platforms reached only as optional are skipped with what only they reach. `link:` and `file:`
 * packages and workspace projects are the app's own (in its tree): no tarball, but their
 * dependencies are walked. Every other package needs a sha512 integrity and a registry tarball on
 * an allowed registry (its `resolution.tarball`, else the first registry's standard URL); git
 * sources are refused. Every problem is reported in one IntegrityError.
 */
export function parsePnpmLock(
  text: string,
  rel: string,
  settings: Pick<PnpmInstallSettings, 'dev' | 'registries'>,
  platforms: Platform[] = [currentPlatform()],
): PnpmLock {
  const lock = loadYaml(text, rel);
  const major = lockMajor(lock.lockfileVersion, rel);
  const importers = lock.importers ?? {'.': lock};
  const graph = (major === 9 ? lock.snapshots : lock.packages) ?? {};
  const meta = lock.packages ?? {};
  checkShape(lock, importers, rel);
  const problems = new IntegrityProblems('npm');
  const byArtifact = new Map<string, NpmRequirement>();
  for (const [where, message] of [
    ...importerProblems(importers),
    ...localProblems(importers, meta),
    ...graphProblems(graph, major),
  ])
    problems.add(where, message, 'lockfile');
  const patches = patchFiles(lock.patchedDependencies, problems);
  // Every package entry, reached or not, must be one that can only come from the vendor tree:
  // which entries pnpm walks to is pnpm's to decide, and one it fetched unchecked would be
  // installed unchecked. Only the reached ones are vendored.
  const checked = new Map<string, ReturnType<typeof checkPackage>>();
  for (const [key, entry] of Object.entries(meta)) {
    const result = checkPackage(key, entry, major, rel, settings.registries);
    checked.set(key, result);
    if (typeof result === 'string') problems.add(key, result, 'lockfile');
  }
  const resolveKey = (name: string, ref: string) => packageKey(name, ref, major);
  for (const {key, optional} of walk(importers, graph, settings.dev, resolveKey)) {
    // As pnpm merges them: the `packages` entry (resolution, name, os, cpu) over the snapshot.
    // Lockfile 6 keys its packages with the peer suffix; lockfile 9 only its snapshots.
    const metaKey = major === 9 ? stripPeers(key) : key;
    const entry = {...graph[key], ...meta[metaKey]};
    if (optional && !platforms.some(platform => platformOk(entry, platform))) continue;
    const result = checked.get(metaKey);
    if (!(metaKey in meta)) {
      problems.add(key, `"${key}" in ${rel}: no such entry in "packages"`, 'lockfile');
      continue;
    }
    if (result === undefined || typeof result === 'string') continue;
    addRequirement(byArtifact, result, key, rel, problems);
  }
  problems.throwIfAny(false);
  const installed = Object.entries(importers)
    .filter(
      ([, i]) =>
        hasDeps(i.dependencies) ||
        hasDeps(i.optionalDependencies) ||
        (settings.dev && hasDeps(i.devDependencies)),
    )
    .map(([dir]) => dir);
  return {
    patches,
    requirements: [...byArtifact.values()],
    importers: Object.keys(importers),
    installed,
    major,
  };
}

function hasDeps(deps: Record<string, DepSpec> | undefined): boolean {
  return Object.keys(deps ?? {}).length > 0;
}

/**
 * The app's own packages that would not be the app's: a `link:` or `file:` path (of a project's
 * dependency, or a package's `resolution.directory` / `file:` tarball) that leaves the lockfile's
 * directory. pnpm would link or copy it from outside the release.
 */
function localProblems(
  importers: Record<string, Importer>,
  packages: Record<string, PackageEntry>,
): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const leaves = (from: string, target: string) => {
    const joined = path.posix.normalize(path.posix.join(from, target));
    return target.startsWith('/') || joined === '..' || joined.startsWith('../');
  };
  for (const [dir, importer] of Object.entries(importers)) {
    for (const deps of [
      importer.dependencies,
      importer.optionalDependencies,
      importer.devDependencies,
    ]) {
      for (const [name, spec] of Object.entries(deps ?? {})) {
        const ref = (typeof spec === 'string' ? spec : spec.version) ?? '';
        const match = /^(link|file):(.*)$/.exec(ref);
        if (match && leaves(dir, match[2] ?? '')) {
          out.push([
            name,
            `"${name}" of project "${dir}": ${ref} is outside the app; only its own folders can be linked`,
          ]);
        }
      }
    }
  }
  for (const [key, entry] of Object.entries(packages)) {
    const target = entry.resolution?.directory ?? entry.resolution?.tarball;
    const local = target?.startsWith('file:')
      ? target.slice('file:'.length)
      : entry.resolution?.directory;
    if (local !== undefined && leaves('.', local)) {
      out.push([
        key,
        `"${key}": ${local} is outside the app; only its own folders and files can be installed`,
      ]);
    }
  }
  return out;
}

/**
 * Importers (workspace projects) pnpm would install into: each must be a folder inside the app,
 * named by a relative path with no `..` (whether a folder on the way is a symlink is checked on
 * disk by the installer).
 */
function importerProblems(importers: Record<string, Importer>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const dir of Object.keys(importers)) {
    const normal = path.posix.normalize(dir);
    if (dir.startsWith('/') || normal === '..' || normal.startsWith('../') || dir.includes('\\')) {
      out.push([
        dir,
        `project "${dir}" is outside the app; workspace projects are its own folders`,
      ]);
    }
  }
  return out;
}

/**
 * Snapshot entries (lockfile 9) that say what a package is, which pnpm takes from `packages`
 * only, and `link:` references of packages that leave the app.
 */
function graphProblems(graph: Record<string, PackageEntry>, major: 6 | 9): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const own = ['resolution', 'name', 'version', 'os', 'cpu', 'libc'] as const;
  for (const [key, entry] of Object.entries(graph)) {
    const extra = major === 9 ? own.filter(field => field in entry) : [];
    if (extra.length > 0) {
      out.push([key, `snapshot "${key}" carries ${extra.join(', ')}, which belong in "packages"`]);
    }
    for (const [name, ref] of Object.entries({
      ...entry.dependencies,
      ...entry.optionalDependencies,
    })) {
      const target = ref.startsWith('link:') ? ref.slice('link:'.length) : undefined;
      const normal = target === undefined ? '' : path.posix.normalize(target);
      if (
        target !== undefined &&
        (target.startsWith('/') || normal === '..' || normal.startsWith('../'))
      ) {
        out.push([key, `"${key}" links "${name}" to ${target}, outside the app`]);
      }
    }
  }
  return out;
}

/** The patch files pnpm applies, each a relative path inside the app; others are problems. */
function patchFiles(
  patched: PnpmLockfile['patchedDependencies'],
  problems: IntegrityProblems,
): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(patched ?? {})) {
    const file = typeof value === 'string' ? value : value.path;
    const normal = file === undefined ? '' : path.posix.normalize(file);
    if (!file || file.startsWith('/') || normal === '..' || normal.startsWith('../')) {
      problems.add(
        key,
        `patchedDependencies "${key}": ${file ?? '(no path)'} is not a file inside the app`,
        'lockfile',
      );
    } else out.push(normal);
  }
  return out;
}

/**
 * The shapes the rest of this file reads: mappings of mappings, references as strings. A
 * lockfile pnpm wrote always has them; anything else is refused as a config error rather than
 * failing deep inside the walk.
 */
function checkShape(lock: PnpmLockfile, importers: Record<string, Importer>, rel: string): void {
  const bad = (what: string) =>
    new ConfigError(
      `${rel} is not a lockfile pnpm writes: ${what}.`,
      'Regenerate it with the pnpm release package.json pins: pnpm install --lockfile-only.',
    );
  const isMap = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  for (const [field, value] of Object.entries({
    importers: lock.importers,
    packages: lock.packages,
    snapshots: lock.snapshots,
  })) {
    if (value === undefined) continue;
    if (!isMap(value)) throw bad(`"${field}" is not a mapping`);
    for (const [key, entry] of Object.entries(value)) {
      if (!isMap(entry)) throw bad(`${field} "${key}" is not a mapping`);
      const groups = ['dependencies', 'optionalDependencies', 'devDependencies'];
      for (const group of groups) {
        const deps = entry[group];
        if (deps === undefined) continue;
        if (!isMap(deps)) throw bad(`${field} "${key}" ${group} is not a mapping`);
        for (const [name, spec] of Object.entries(deps)) {
          const ref = isMap(spec) ? spec.version : spec;
          if (typeof ref !== 'string')
            throw bad(`${field} "${key}" ${group} "${name}" names no version`);
        }
      }
    }
  }
  if (!isMap(importers)) throw bad('no importers');
}

function loadYaml(text: string, rel: string): PnpmLockfile {
  let lock: unknown;
  try {
    lock = parseYaml(text, {maxAliasCount: 100});
  } catch (error) {
    throw new ConfigError(`${rel} is not valid YAML: ${(error as Error).message}`, undefined, {
      cause: error,
    });
  }
  if (typeof lock !== 'object' || lock === null || Array.isArray(lock)) {
    throw new ConfigError(`${rel} is not a pnpm lockfile (no mapping at its top).`);
  }
  return lock;
}

function lockMajor(version: unknown, rel: string): 6 | 9 {
  const major = Number.parseInt(String(version), 10);
  if (major === 6 || major === 9) return major;
  throw new ConfigError(
    `${rel} has lockfileVersion ${String(version)}; 6.x (pnpm 8) or 9.0 (pnpm 9 and later) is needed.`,
    'Regenerate it with the pnpm release package.json pins: pnpm install --lockfile-only.',
  );
}

/**
 * Every package key the install reaches from the importers, each once. A package is optional when
 * only optional edges lead to it (pnpm skips such a package on a platform it does not fit).
 */
function walk(
  importers: Record<string, Importer>,
  graph: Record<string, PackageEntry>,
  dev: boolean,
  resolveKey: (name: string, ref: string) => string | undefined,
): Reached[] {
  const seen = new Map<string, boolean>();
  const queue: Reached[] = [];
  const visit = (deps: Record<string, DepSpec> | undefined, optional: boolean) => {
    for (const [name, spec] of Object.entries(deps ?? {})) {
      const ref = typeof spec === 'string' ? spec : spec.version;
      const key = ref === undefined ? undefined : resolveKey(name, ref);
      if (key === undefined) continue;
      const before = seen.get(key);
      // Reached again by a required edge: no longer optional, and walked again as such.
      if (before === undefined || (before && !optional)) {
        seen.set(key, optional);
        queue.push({key, optional});
      }
    }
  };
  for (const importer of Object.values(importers)) {
    visit(importer.dependencies, false);
    visit(importer.optionalDependencies, true);
    if (dev) visit(importer.devDependencies, false);
  }
  for (let i = 0; i < queue.length; i++) {
    const {key, optional} = queue[i] as Reached;
    if (seen.get(key) !== optional) continue;
    visit(graph[key]?.dependencies, optional);
    visit(graph[key]?.optionalDependencies, true);
  }
  return [...seen].map(([key, optional]) => ({key, optional}));
}

/**
 * The package key a dependency reference names, or undefined for the app's own (`link:`): lockfile
 * 9 writes `1.0.0` (key `name@1.0.0`) or `real@1.0.0` for an `npm:` alias; lockfile 6 writes
 * `1.0.0` (key `/name@1.0.0`) or `/real@1.0.0`. Keys of other sources are taken as written.
 */
function packageKey(name: string, ref: string, major: 6 | 9): string | undefined {
  if (ref.startsWith('link:')) return undefined;
  // pnpm's own rule (refToRelative), not a guess against the keys present: a key chosen any
  // other way could be one pnpm does not install, and the one it does would go unwalked.
  if (major === 6) return ref.startsWith('/') || ref.startsWith('file:') ? ref : `/${name}@${ref}`;
  if (ref.startsWith('@')) return ref;
  const at = ref.indexOf('@');
  if (at === -1) return `${name}@${ref}`;
  const colon = ref.indexOf(':');
  const paren = ref.indexOf('(');
  const aliased = (colon === -1 || at < colon) && (paren === -1 || at < paren);
  return aliased ? ref : `${name}@${ref}`;
}

/** `react-dom@18.2.0(react@18.2.0)` without its peer suffix. */
function stripPeers(key: string): string {
  const paren = key.indexOf('(');
  return paren === -1 ? key : key.slice(0, paren);
}

/** The package's name and version from its key, unless the entry names them. */
function nameVersion(key: string, entry: PackageEntry, major: 6 | 9): [string, string] {
  const base = stripPeers(key).slice(major === 6 && key.startsWith('/') ? 1 : 0);
  const at = base.indexOf('@', 1);
  const name = entry.name ?? (at === -1 ? base : base.slice(0, at));
  const version = entry.version ?? (at === -1 ? '' : base.slice(at + 1));
  return [name, version];
}

/**
 * The package as a registry tarball to vendor; undefined for the app's own (a `file:` tarball or
 * directory in its tree); or the message saying why it cannot be vendored.
 */
function checkPackage(
  key: string,
  entry: PackageEntry,
  major: 6 | 9,
  rel: string,
  registries: string[],
): Omit<NpmRequirement, 'keys'> | string | undefined {
  const resolution = entry.resolution ?? {};
  const tarball = resolution.tarball;
  if (resolution.type === 'directory' || tarball?.startsWith('file:')) return undefined;
  const where = `"${key}" in ${rel}`;
  if (resolution.type === 'git' || resolution.repo !== undefined) {
    return `${where}: a git source (${resolution.repo ?? ''}); only registry tarballs can be vendored`;
  }
  const [name, version] = nameVersion(key, entry, major);
  if (!validateName(name).validForOldPackages) return `${where}: "${name}" is not a package name`;
  if (semver.valid(version) !== version) {
    return `${where}: "${version}" is not a registry version (git, URL and local sources cannot be vendored)`;
  }
  const registry = registries[0] ?? '';
  const resolved =
    tarball === undefined
      ? standardTarballUrl(registry, name, version)
      : new URL(tarball, registry).href;
  const hostProblem = resolvedProblem(resolved, registries);
  // protection R23-registry-pnpm: pnpm tarballs resolve to the registries deploy.json names
  if (hostProblem) return `${where}: ${hostProblem.replace('"resolved"', 'resolution.tarball')}`;
  if (!resolution.integrity) return `${where}: no resolution.integrity`;
  if (!hasSha512(resolution.integrity)) {
    return `${where}: integrity has no sha512 hash (${shortIntegrity(resolution.integrity)}); sha1 alone is too weak`;
  }
  return {name, version, resolved, integrity: resolution.integrity};
}

/** Where a registry serves a package's tarball: `<registry><name>/-/<basename>-<version>.tgz`. */
export function standardTarballUrl(registry: string, name: string, version: string): string {
  const base = registry.endsWith('/') ? registry : `${registry}/`;
  return `${base}${name}/-/${name.split('/').pop() ?? name}-${version}.tgz`;
}

/** npm's os/cpu check, plus `libc` (glibc or musl) on Linux. */
function platformOk(entry: PackageEntry, platform: Platform): boolean {
  if (!platformMatches(entry, platform)) return false;
  if (!entry.libc?.length || platform.os !== 'linux') return true;
  return platformMatches({os: entry.libc}, {os: hostLibc(), cpu: '*'});
}

/** The C library of this Linux node, as pnpm's `libc` field names it. */
function hostLibc(): string {
  const report = process.report.getReport() as {header?: {glibcVersionRuntime?: string}};
  return report.header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/**
 * Why the pinned pnpm release cannot be run from its npm tarball, or undefined. pnpm 8 to 11 are
 * JavaScript packages run with the node's own Node; pnpm 12 ships as per-platform binaries
 * (`@pnpm/exe.<os>-<cpu>`), which this installer does not vendor yet.
 */
export function pnpmReleaseProblem(pin: {
  version: string;
  field: string;
}): {message: string; hint: string} | undefined {
  const major = semver.major(pin.version);
  if (major >= 8 && major <= 11) return undefined;
  return {
    message:
      major >= 12
        ? `package.json pins "${pin.field}": pnpm ${major} ships as per-platform binaries (@pnpm/exe.<os>-<cpu>), which repodeploy does not install yet.`
        : `package.json pins "${pin.field}": pnpm ${major} writes lockfiles older than 6.0, which repodeploy does not read.`,
    hint: 'Pin a pnpm release from 8 to 11 in "packageManager" (`corepack use pnpm@10`), and run vendor-sync again.',
  };
}
