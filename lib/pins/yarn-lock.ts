import path from 'node:path';
import yarnLockfile from '@yarnpkg/lockfile';
import semver from 'semver';
import validateName from 'validate-npm-package-name';
import type {YarnInstallSettings} from './deploy-config.js';
import {ConfigError} from '../support/errors.js';
import {hasSha512, samePin, shortIntegrity} from './integrity.js';
import {resolvedProblem, type NpmRequirement} from './npm-lockfile.js';
import {readRegularFile} from './vendor-manifest.js';
import {IntegrityProblems} from '../install/types.js';

/** Yarn 1 writes "yarn lockfile v1"; Yarn 2 and later write YAML with a `__metadata` key. */
export type YarnFlavor = 'classic' | 'berry';

/**
 * One registry tarball of a Yarn classic lockfile: the npm artifact (`keys` are the lockfile
 * patterns it resolves, `a@^1`, `b@npm:a@^1`), and the file name Yarn looks for in its offline
 * mirror.
 */
export type YarnClassicRequirement = NpmRequirement & {mirrorName: string};

export const YARN_LOCK_HINT =
  'Fix yarn.lock: every entry needs "resolved" on an allowed registry (deploy.json install.registries) and a sha512 "integrity"; regenerate it with a current Yarn 1 (delete the entries, then `yarn install --mode update-lockfile` or `yarn install`), which writes sha512.';

/** yarn.lock of the install directory: its text and flavor. */
export async function readYarnLock(
  releaseDir: string,
  settings: YarnInstallSettings,
): Promise<{text: string; rel: string; flavor: YarnFlavor}> {
  const rel = path.posix.join(settings.directory, 'yarn.lock');
  const text = await readRegularFile(path.join(releaseDir, rel), rel);
  if (text === undefined) {
    throw new ConfigError(
      `deploy.json asks for a yarn install, but the app has no ${rel}.`,
      'Commit yarn.lock (yarn install writes it).',
    );
  }
  return {text, rel, flavor: yarnFlavor(text)};
}

/** Berry when a top-level `__metadata` key is there (as Yarn itself tells), else classic. */
export function yarnFlavor(text: string): YarnFlavor {
  return /^"?__metadata"?:/m.test(text) ? 'berry' : 'classic';
}

/**
 * The tarballs a Yarn classic lockfile pins, one per name@version however many patterns resolve
 * to it. Yarn 1 fetches every entry (it reads `os`/`cpu` from the tarball, and `--production`
 * only skips linking), so all are needed. Every entry must carry `resolved` on an allowed registry
 * and a sha512 `integrity`: anything else is refused, naming the entry.
 */
export function parseYarnClassicLock(
  text: string,
  rel: string,
  registries: string[],
): YarnClassicRequirement[] {
  const parsed = parseLockText(text, rel);
  const problems = new IntegrityProblems('npm', YARN_LOCK_HINT);
  // The parser gives each pattern of `"a@^1", "a@^1.2":` the same entry object.
  const patterns = new Map<object, string[]>();
  for (const [pattern, entry] of Object.entries(parsed)) {
    if (typeof entry !== 'object' || entry === null) {
      problems.add(pattern, `"${pattern}": not an entry in ${rel}`, 'lockfile');
      continue;
    }
    patterns.set(entry, [...(patterns.get(entry) ?? []), pattern]);
  }
  const byArtifact = new Map<string, YarnClassicRequirement>();
  for (const [entry, keys] of patterns) {
    const checked = checkClassicEntry(keys, entry, rel, registries);
    if (typeof checked === 'string') problems.add(keys[0] ?? '', checked, 'lockfile');
    else addArtifact(byArtifact, checked, rel, problems);
  }
  problems.throwIfAny(false);
  return [...byArtifact.values()];
}

type ClassicEntry = {version?: unknown; resolved?: unknown; integrity?: unknown};

function parseLockText(text: string, rel: string): Record<string, unknown> {
  let result: ReturnType<typeof yarnLockfile.parse>;
  try {
    result = yarnLockfile.parse(text, rel);
  } catch (error) {
    throw new ConfigError(
      `${rel} does not parse as a Yarn 1 lockfile: ${(error as Error).message}`,
    );
  }
  if (result.type !== 'success') {
    throw new ConfigError(
      `${rel} has git conflict markers.`,
      'Resolve the conflict (run yarn install, which merges it) and commit the result.',
    );
  }
  return result.object;
}

/** The package a pattern installs: `a@^1` is a, `@s/a@^1` is @s/a, `b@npm:a@^1` is a. */
export function patternPackage(pattern: string): {name: string; range: string} | undefined {
  const at = pattern.indexOf('@', pattern.startsWith('@') ? 1 : 0);
  if (at <= 0) return undefined;
  const name = pattern.slice(0, at);
  const range = pattern.slice(at + 1);
  if (!range.startsWith('npm:')) return {name, range};
  const aliased = range.slice('npm:'.length);
  const inner = aliased.indexOf('@', aliased.startsWith('@') ? 1 : 0);
  // `npm:^1` names no other package; `npm:@s/a` pins none.
  if (inner < 0) return /^[@a-z]/i.test(aliased) ? undefined : {name, range: aliased};
  return {name: aliased.slice(0, inner), range: aliased.slice(inner + 1)};
}

/** One entry as an artifact, or the message saying why it cannot be vendored. */
function checkClassicEntry(
  keys: string[],
  entry: ClassicEntry,
  rel: string,
  registries: string[],
): YarnClassicRequirement | string {
  const shown = keys.map(k => `"${k}"`).join(', ');
  const names = new Set(keys.map(k => patternPackage(k)?.name));
  const [name] = names;
  if (names.size !== 1 || name === undefined) {
    return `${shown}: the patterns do not name one package in ${rel}`;
  }
  if (!validateName(name).validForOldPackages) return `${shown}: "${name}" is not a package name`;
  const version = typeof entry.version === 'string' ? entry.version : '';
  if (semver.valid(version) !== version) return `${shown}: "${version}" is not a version`;
  const where = `${name}@${version} (${shown})`;
  if (typeof entry.resolved !== 'string' || entry.resolved === '') {
    return `${where}: no "resolved" URL in ${rel}: file, link and workspace packages outside the app's workspaces cannot be vendored`;
  }
  const url = entry.resolved.replace(/#[0-9a-f]*$/, '');
  const hostProblem = resolvedProblem(url, registries);
  if (hostProblem) return `${where}: ${hostProblem}`;
  if (typeof entry.integrity !== 'string' || entry.integrity === '') {
    return `${where}: no "integrity" in ${rel} (Yarn before 1.10 wrote none)`;
  }
  if (!hasSha512(entry.integrity)) {
    return `${where}: integrity has no sha512 hash (${shortIntegrity(entry.integrity)}); sha1 alone is too weak`;
  }
  const mirrorName = offlineMirrorName(url);
  if (mirrorName === undefined) return `${where}: "resolved" names no tarball file (${url})`;
  return {name, version, resolved: url, integrity: entry.integrity, keys, mirrorName};
}

/**
 * The file name Yarn 1 looks for in its offline mirror for a tarball URL: the URL's last
 * segment, prefixed with the scope for a scoped registry tarball (`@s-a-1.0.0.tgz`), as Yarn's
 * tarball fetcher names it.
 */
export function offlineMirrorName(url: string): string | undefined {
  const {pathname} = new URL(url);
  const match = /\/(?:(@[^/]+)(?:\/|%2f))?[^/]+\/(?:-|_attachments)\/(?:@[^/]+\/)?([^/]+)$/.exec(
    pathname,
  );
  const name = match
    ? match[1]
      ? `${match[1]}-${match[2] ?? ''}`
      : match[2]
    : path.posix.basename(pathname);
  return name && /^[@A-Za-z0-9._+-]+$/.test(name) && name !== '..' && name !== '.'
    ? name
    : undefined;
}

/** The same name@version pinned with two hashes, or under two mirror names, is refused. */
function addArtifact(
  byArtifact: Map<string, YarnClassicRequirement>,
  req: YarnClassicRequirement,
  rel: string,
  problems: IntegrityProblems,
): void {
  const id = `${req.name}@${req.version}`;
  const known = byArtifact.get(id);
  if (!known) {
    byArtifact.set(id, req);
    return;
  }
  if (samePin(known.integrity, req.integrity) && known.mirrorName === req.mirrorName) {
    known.keys.push(...req.keys);
    return;
  }
  problems.add(
    req.name,
    `${id}: ${rel} pins it twice, differently (${known.keys[0] ?? ''}: ${shortIntegrity(known.integrity)}, ${req.keys[0] ?? ''}: ${shortIntegrity(req.integrity)})`,
    'lockfile',
  );
}
