import {DEPLOY_JSON, parseDeployConfig, type DeployConfig} from './deploy-config.js';
import {INSTALL_MARKER_FILES} from './detect-install.js';
import {ConfigError} from '../support/errors.js';
import {readTreeFile} from '../git/export.js';
import {FULL_SHA, type GitStore} from '../git/store.js';
import {parseRepoLocation, type RepoLocation} from '../git/location.js';
import {VENDOR_DIR} from '../node/layout.js';

/** Where the vendor tree goes inside a release, and where its submodule form must sit. */

/** The vendor repository commit an app changeset pins. */
export type VendorPin = {
  /** Which form the pin took in the app tree. */
  source: 'deploy.json' | 'submodule';
  /** The URL as written in the app tree. */
  declaredUrl: string;
  /** Where it is fetched from (the declared URL, or the node's `--vendor-repo` override). */
  location: RepoLocation;
  sha: string;
};

export type AppSettings = {config: DeployConfig; pin: VendorPin | undefined};

/**
 * Read `deploy.json` and the vendor pin from the app tree at `appSha`.
 * The pin is either `deploy.json` `vendor` `{url, rev}` or a git submodule at `vendor/`.
 */
export async function readAppSettings(
  store: GitStore,
  appSha: string,
  appLocation: RepoLocation,
  vendorOverride?: RepoLocation,
): Promise<AppSettings> {
  const short = appSha.slice(0, 12);
  const config = await readDeployJson(store, appSha, short);
  const vendorEntry = await readTreeFile(store, appSha, VENDOR_DIR);
  const submodule = vendorEntry?.kind === 'gitlink' ? vendorEntry : undefined;
  const at = {short, appLocation, vendorOverride};
  if (config.vendor) {
    if (submodule) {
      throw new ConfigError(
        `The app at ${short} pins the vendor repo twice: in ${DEPLOY_JSON} and as the submodule ${VENDOR_DIR}/.`,
        'Keep one of the two pins.',
      );
    }
    if (vendorEntry) {
      throw new ConfigError(
        `The app at ${short} has a ${VENDOR_DIR} entry of its own, where the vendor tree is placed.`,
        `Remove ${VENDOR_DIR}/ from the app repository, or pin the vendor repo as a submodule there.`,
      );
    }
    return {config, pin: deployJsonPin(config.vendor, at)};
  }
  if (!submodule) return {config, pin: undefined};
  return {config, pin: await submodulePin(store, appSha, submodule.oid, at)};
}

/** Which app changeset a pin is read from, and the node's `--vendor-repo`, if given. */
type PinContext = {
  short: string;
  appLocation: RepoLocation;
  vendorOverride: RepoLocation | undefined;
};

/** The app's deploy.json at `appSha`, parsed; `{}` when it has none. */
async function readDeployJson(
  store: GitStore,
  appSha: string,
  short: string,
): Promise<DeployConfig> {
  const deployJson = await readTreeFile(store, appSha, DEPLOY_JSON);
  const rootFiles = await markerFilesAt(store, appSha);
  if (!deployJson) return parseDeployConfig('{}', `the app at ${short}`, rootFiles);
  if (deployJson.kind !== 'file' && deployJson.kind !== 'executable') {
    throw new ConfigError(
      `${DEPLOY_JSON} at ${short} is a ${deployJson.kind}, not a regular file.`,
      `Commit ${DEPLOY_JSON} as a regular file.`,
    );
  }
  return parseDeployConfig(
    deployJson.content.toString('utf8'),
    `${DEPLOY_JSON} at ${short}`,
    rootFiles,
  );
}

/** Which of the install marker files are regular files at the root of the app at `sha`. */
export async function markerFilesAt(store: GitStore, sha: string): Promise<Set<string>> {
  const found = new Set<string>();
  for (const file of INSTALL_MARKER_FILES) {
    const entry = await readTreeFile(store, sha, file);
    if (entry?.kind === 'file' || entry?.kind === 'executable') found.add(file);
  }
  return found;
}

/** The pin deploy.json's `vendor` gives: its URL and a full commit id. */
function deployJsonPin(
  vendor: NonNullable<DeployConfig['vendor']>,
  {short, appLocation, vendorOverride}: PinContext,
): VendorPin {
  const rev = vendor.rev;
  if (rev === undefined) throw noPinYet(short, vendor.url);
  if (!FULL_SHA.test(rev)) {
    throw new ConfigError(
      `${DEPLOY_JSON} at ${short}: "vendor.rev" must be a full 40-hex commit id, not "${rev}".`,
      'Pin the exact vendor commit: put the output of `git rev-parse <rev>` in the vendor repo there.',
    );
  }
  return {
    source: 'deploy.json',
    declaredUrl: vendor.url,
    location: vendorOverride ?? declaredLocation(vendor.url, appLocation, short),
    sha: rev,
  };
}

/** The pin a submodule at vendor/ gives: its commit, and its URL from .gitmodules. */
async function submodulePin(
  store: GitStore,
  appSha: string,
  sha: string,
  {short, appLocation, vendorOverride}: PinContext,
): Promise<VendorPin> {
  const gitmodules = await readTreeFile(store, appSha, '.gitmodules');
  const url = gitmodules
    ? submoduleUrl(gitmodules.content.toString('utf8'), VENDOR_DIR)
    : undefined;
  if (!url && !vendorOverride) {
    throw new ConfigError(
      `The app at ${short} has a submodule at ${VENDOR_DIR}/ but .gitmodules gives no URL for it.`,
      'Add the submodule with `git submodule add <url> vendor`, or pass --vendor-repo on the node.',
    );
  }
  return {
    source: 'submodule',
    declaredUrl: url ?? '',
    location: vendorOverride ?? declaredLocation(url ?? '', appLocation, short),
    sha,
  };
}

/**
 * Where a vendor URL written in the changeset points. It may be an http(s) URL, or a path
 * relative to an app repository that is itself on a path; never an absolute path or file:// URL:
 * a changeset must not make the node (or CI) read whatever repository sits on its disk. A vendor
 * repository elsewhere on the machine is named by the node itself, with --vendor-repo.
 */
function declaredLocation(url: string, appLocation: RepoLocation, short: string): RepoLocation {
  const location = parseRepoLocation(url, {base: appLocation, what: 'vendor repository'});
  const relative = /^\.\.?\//.test(url.trim());
  if (location.kind === 'path' && (appLocation.kind !== 'path' || !relative)) {
    throw new ConfigError(
      `The app at ${short} names its vendor repository as a path on this machine (${url}): a changeset may name an http(s) URL, or a path relative to an app repository on a path, only.`,
      'Name the vendor repository by its URL in the app, or give its path on the node with --vendor-repo.',
    );
  }
  return location;
}

/** A changeset whose deploy.json names the vendor repository but pins no commit of it yet. */
function noPinYet(short: string, url: string): ConfigError {
  return new ConfigError(
    `${DEPLOY_JSON} at ${short} names the vendor repository (${url}) but pins no commit of it yet: "vendor.rev" is missing.`,
    'Make the first pin in the app work tree: `vendor-sync --app <app work tree> --vendor <vendor work tree> --push --update-pin`, ' +
      'then commit deploy.json and deploy that commit (docs/getting-started.md).',
  );
}

/**
 * The `url` of the submodule whose `path` is `subPath`, from the text of a `.gitmodules` file
 * (git-config syntax: `[submodule "name"]` sections of `key = value` lines).
 */
export function submoduleUrl(text: string, subPath: string): string | undefined {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)[#;].*$/, '').trim();
    if (line === '') continue;
    const header = /^\[\s*submodule\s+"((?:[^"\\]|\\.)*)"\s*\]$/i.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1] ?? '', current);
      continue;
    }
    if (line.startsWith('[')) {
      current = undefined;
      continue;
    }
    const kv = /^([A-Za-z][A-Za-z0-9-]*)\s*=\s*(.*)$/.exec(line);
    if (kv && current) current.set((kv[1] ?? '').toLowerCase(), unquote(kv[2] ?? ''));
  }
  for (const section of sections.values()) {
    const p = section.get('path')?.replace(/\/+$/, '');
    if (p === subPath) return section.get('url');
  }
  return undefined;
}

function unquote(value: string): string {
  const v = value.trim();
  return v.startsWith('"') && v.endsWith('"') && v.length >= 2 ? v.slice(1, -1) : v;
}
