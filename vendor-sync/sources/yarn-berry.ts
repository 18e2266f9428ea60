import {createReadStream, promises as fsp} from 'node:fs';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import YAML from 'yaml';
import ssri from 'ssri';
import {listTree} from '../../lib/git/export.js';
import type {GitStore} from '../../lib/git/store.js';
import {unpackPackageManager} from '../../lib/install/package-manager.js';
import {checkNpmTarball} from '../../lib/install/tarball-check.js';
import {workspaceMembers} from '../../lib/pins/workspaces.js';
import {berryZipPath, NO_PROJECT_RC, writeHomeRc} from '../../lib/pins/yarn-berry-lock.js';
import {runLogged} from '../../lib/node/run-logged.js';
import {hermeticEnv} from '../../lib/install/run.js';
import type {Platform} from '../../lib/pins/npm-lockfile.js';
import type {PackageManagerPin} from '../../lib/pins/package-manager.js';
import {readAppYarnrc} from '../../lib/pins/yarnrc.js';
import {SourceError} from '../../lib/support/errors.js';
import {linkOnPath} from '../../lib/support/fs.js';
import type {Need} from '../needs.js';

/**
 * What vendor-sync needs to run the pinned Yarn 2+ over an app: the files of its install
 * directory Yarn reads to fetch (package.json of the root and each workspace, yarn.lock,
 * .yarnrc.yml, the patches `patch:` entries name), by path under that directory.
 */
export type BerryProject = {
  directory: string;
  pin: PackageManagerPin;
  files: Map<string, Buffer>;
  platforms: Platform[];
};

export type YarnNeed = Extract<Need, {ecosystem: 'yarn'}>;

/** Under the install directory: what Yarn reads to fetch, beside package.json files. */
const PROJECT_FILES = ['yarn.lock', 'package.json', '.yarnrc.yml'];
const PATCHES = '.yarn/patches/';

/** The paths of a commit's tree a Yarn 2+ fetch reads: every package.json, patches, settings. */
export async function berryTreeFiles(
  store: GitStore,
  sha: string,
  directory: string,
): Promise<string[]> {
  const prefix = directory === '.' ? '' : `${directory}/`;
  const tree = await listTree(store, sha, 'app');
  return tree
    .filter(e => e.kind === 'file' || e.kind === 'executable')
    .map(e => e.path)
    .filter(p => p.startsWith(prefix))
    .filter(p => {
      const rel = p.slice(prefix.length);
      if (rel.split('/').includes('node_modules')) return false;
      return (
        PROJECT_FILES.includes(rel) || rel.endsWith('/package.json') || rel.startsWith(PATCHES)
      );
    });
}

/** The files of {@link BerryProject} from a directory holding the app (or the parts of it). */
export async function berryProjectFiles(
  dir: string,
  directory: string,
): Promise<Map<string, Buffer>> {
  const root = path.join(dir, directory);
  const files = new Map<string, Buffer>();
  const add = async (rel: string) => {
    const link = await linkOnPath(root, rel);
    if (link !== undefined) {
      throw new SourceError(`The app's ${rel} is reached through the symlink ${link}.`);
    }
    const stat = await fsp.lstat(path.join(root, rel)).catch(() => undefined);
    if (stat?.isFile()) files.set(rel, await fsp.readFile(path.join(root, rel)));
  };
  for (const rel of PROJECT_FILES) await add(rel);
  const pkg = JSON.parse(files.get('package.json')?.toString('utf8') ?? '{}') as {
    workspaces?: unknown;
  };
  const members = await workspaceMembers(root, pkg.workspaces);
  if (typeof members === 'string') throw new SourceError(`package.json: ${members}.`);
  for (const member of members) await add(`${member}/package.json`);
  const patches = await fsp
    .readdir(path.join(root, PATCHES), {recursive: true, withFileTypes: true})
    .catch(() => []);
  for (const entry of patches) {
    if (!entry.isFile()) continue;
    const abs = path.join(entry.parentPath, entry.name);
    await add(path.relative(root, abs).split(path.sep).join('/'));
  }
  return files;
}

/** A cache zip Yarn wrote, checked and ready to move into the vendor tree. */
export type FetchedZip = {need: YarnNeed; path: string; integrity: string; file: string};

/**
 * Run the pinned Yarn online in `scratch` over a copy of the app's project files, with a cache of
 * our own (prefilled with `known` zips), fetching for the nodes' platforms; then match each zip
 * Yarn wrote to the needs: by the lockfile's checksum, or (an entry with `conditions`, which has
 * none) by Yarn's file name for it. Every missing need must be matched, but for optional ones.
 */
export async function fetchBerryZips(options: {
  project: BerryProject;
  missing: YarnNeed[];
  known: string[];
  yarnTarball: string;
  registry: string;
  /** `@scope` → registry, as for npm downloads. */
  scopes: Map<string, string>;
  scratch: string;
  env: NodeJS.ProcessEnv;
}): Promise<FetchedZip[]> {
  const {project, scratch} = options;
  const projectDir = path.join(scratch, 'project');
  for (const [rel, content] of project.files) {
    await fse.ensureDir(path.dirname(path.join(projectDir, rel)));
    await fsp.writeFile(path.join(projectDir, rel), content);
  }
  const cache = path.join(scratch, 'cache');
  await fse.ensureDir(cache);
  for (const file of options.known) await fsp.copyFile(file, path.join(cache, path.basename(file)));
  const label = `${project.pin.packageName}@${project.pin.version}`;
  await checkNpmTarball(options.yarnTarball, label);
  const yarn = await unpackPackageManager(
    {
      name: project.pin.packageName,
      version: project.pin.version,
      integrity: '',
      file: options.yarnTarball,
      label,
    },
    'yarn',
    path.join(scratch, 'yarn'),
  );
  const home = path.join(scratch, 'home');
  await fse.ensureDir(path.join(home, 'tmp'));
  const rc = await readAppYarnrc(projectDir, '.');
  await writeHomeRc(home, YAML.stringify({...rc.kept, ...fetchSettings(options, cache, scratch)}));
  await runLogged(yarn.command, [...yarn.args, 'install', '--immutable', '--mode=skip-build'], {
    cwd: projectDir,
    env: fetchEnv(options.env, home, cache),
    logFile: path.join(scratch, 'yarn.log'),
    label: `yarn ${yarn.version} install (fetching the cache zips)`,
    failAs: message =>
      new SourceError(
        message,
        'Check that yarn.lock is up to date with package.json (run `yarn install` with the pinned Yarn and commit), and that the registry is reachable.',
      ),
  });
  return matchZips(options.missing, cache);
}

/** Yarn's settings for the fetch: the app's layout ones, our cache, the nodes' platforms. */
function fetchSettings(
  options: {project: BerryProject; registry: string; scopes: Map<string, string>},
  cache: string,
  scratch: string,
): Record<string, unknown> {
  const os = [...new Set(options.project.platforms.map(p => p.os))];
  // A plain-http registry the maintainer names (a mirror on the LAN) is theirs to allow.
  const http = [options.registry, ...options.scopes.values()]
    .filter(url => url.startsWith('http:'))
    .map(url => new URL(url).hostname);
  const cpus = options.project.platforms.map(p => p.cpu);
  return {
    cacheFolder: cache,
    enableGlobalCache: false,
    globalFolder: path.join(scratch, 'global'),
    enableTelemetry: false,
    enableScripts: false,
    enableProgressBars: false,
    nodeLinker: 'pnp',
    unsafeHttpWhitelist: [...new Set(http)],
    npmRegistryServer: options.registry.replace(/\/$/, ''),
    npmScopes: Object.fromEntries(
      [...options.scopes].map(([scope, url]) => [
        scope.replace(/^@/, ''),
        {npmRegistryServer: url.replace(/\/$/, '')},
      ]),
    ),
    supportedArchitectures: {
      os,
      cpu: cpus.includes('*') ? [] : [...new Set(cpus)],
      libc: ['glibc', 'musl'],
    },
  };
}

/**
 * Beside the clean environment every installer gets (PATH, locale): the maintainer's proxy and CA
 * settings, since Yarn fetches online; nothing else of theirs, no token.
 */
const PASSED = [
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
];

function fetchEnv(base: NodeJS.ProcessEnv, home: string, cache: string): Record<string, string> {
  const passed: Record<string, string> = {};
  for (const key of PASSED) if (base[key] !== undefined) passed[key] = base[key] ?? '';
  return hermeticEnv(base, home, {
    ...passed,
    YARN_RC_FILENAME: NO_PROJECT_RC,
    YARN_IGNORE_PATH: '1',
    YARN_CACHE_FOLDER: cache,
    YARN_ENABLE_GLOBAL_CACHE: '0',
    YARN_ENABLE_TELEMETRY: '0',
    YARN_ENABLE_SCRIPTS: '0',
    YARN_ENABLE_IMMUTABLE_INSTALLS: '1',
  });
}

/** Each missing need with the zip Yarn wrote for it. */
async function matchZips(missing: YarnNeed[], cache: string): Promise<FetchedZip[]> {
  const names = (await fsp.readdir(cache)).filter(n => n.endsWith('.zip'));
  const shaOf = new Map<string, string>();
  for (const name of names) shaOf.set(name, await sha512Of(path.join(cache, name)));
  const bySha = new Map([...shaOf].map(([name, sha]) => [sha, name]));
  const found: FetchedZip[] = [];
  const unmatched: string[] = [];
  for (const need of missing) {
    const name = need.integrity ? bySha.get(need.integrity) : conditionalZipName(need, names);
    if (name === undefined) {
      if (!need.optional) unmatched.push(`${need.name}@${need.version}`);
      continue;
    }
    found.push({
      need,
      path: berryZipPath(need.checksum?.cacheKey ?? need.cacheKey, name),
      integrity: shaOf.get(name) ?? '',
      file: path.join(cache, name),
    });
  }
  if (unmatched.length > 0) {
    throw new SourceError(
      `Yarn fetched no cache zip matching yarn.lock for ${unmatched.length} package${unmatched.length === 1 ? '' : 's'}: ${unmatched.slice(0, 5).join(', ')}${unmatched.length > 5 ? ', ...' : ''}.`,
      'A checksum in yarn.lock does not match what the registry serves now, or the lockfile was written by another Yarn: run `yarn install` with the pinned Yarn, commit yarn.lock, and run vendor-sync again.',
    );
  }
  return found;
}

/**
 * Yarn's file name for a package it writes no checksum for: `<slug>-npm-<version>-<locator
 * hash>-<cacheKey>.zip` (`@esbuild-linux-x64-npm-0.21.5-88079726c4-10c0.zip`), or
 * `<slug>-patch-<hash>-<cacheKey>.zip` for a patch; only one zip may match.
 */
function conditionalZipName(need: YarnNeed, names: string[]): string | undefined {
  const slug = need.name.replace('/', '-').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const version = need.version.replace(/^npm:/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const middle = need.kind === 'npm' ? `npm-${version}` : 'patch';
  const pattern = new RegExp(`^${slug}-${middle}-[0-9a-f]{10}-${need.cacheKey}\\.zip$`);
  const matches = names.filter(n => pattern.test(n));
  return matches.length === 1 ? matches[0] : undefined;
}

async function sha512Of(file: string): Promise<string> {
  const integrity = await ssri.fromStream(createReadStream(file), {algorithms: ['sha512']});
  return integrity.toString();
}
