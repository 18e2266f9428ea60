import {explain, gt} from '@renovatebot/pep440';
import pLimit from 'p-limit';
import {DeployError} from '../lib/support/errors.js';
import {redact} from '../lib/support/redact.js';
import {
  readVendorManifest,
  normalizePypiName,
  type Ecosystem,
} from '../lib/pins/vendor-manifest.js';
import type {Http} from './http.js';
import type {GithubClient} from '../lib/http/github.js';
import {latestRelease} from './sources/github.js';
import {npmLatest, type NpmUpstream} from './sources/npm.js';
import {pypiLatest} from './sources/pypi.js';

export type OutdatedRow = {
  ecosystem: Ecosystem;
  name: string;
  current: string;
  /** The newest upstream release; null when it could not be looked up (see `unknown`). */
  latest: string | null;
  outdated: boolean;
  /** Why the upstream release is unknown (the package is not on the index, the lookup failed). */
  unknown: string | null;
};

export type OutdatedOptions = {
  vendorDir: string;
  http: Http;
  npm: NpmUpstream;
  npmDefaultRegistry: string;
  pypiIndex: string;
  /** The Python the app runs on (`3.11`): PyPI releases that exclude it are not "latest". */
  pythonVersion?: string | undefined;
  github: () => GithubClient;
};

/**
 * For each vendored package: the version pinned and the newest upstream release (npm `latest`
 * dist-tag, the release pip would pick on the PyPI-style index, latest GitHub release). A package
 * whose lookup fails gets a row marked unknown with the reason: one private or removed package
 * must not hide the report on all the others.
 */
export async function outdated(options: OutdatedOptions): Promise<OutdatedRow[]> {
  const manifest = await readVendorManifest(options.vendorDir);
  const seen = new Map<string, {ecosystem: Ecosystem; name: string; versions: Set<string>}>();
  for (const a of manifest.artifacts) {
    const upstream = a.ecosystem === 'yarn' ? berryNpmName(a.name, a.version) : a.name;
    const name = a.ecosystem === 'pypi' ? normalizePypiName(a.name) : upstream;
    const key = `${a.ecosystem}\0${name}`;
    const entry = seen.get(key) ?? {
      ecosystem: a.ecosystem,
      name: upstream,
      versions: new Set<string>(),
    };
    entry.versions.add(a.ecosystem === 'yarn' ? berryNpmVersion(a.version) : a.version);
    seen.set(key, entry);
  }
  const limit = pLimit(8);
  const rows = await Promise.all(
    [...seen.values()].flatMap(({ecosystem, name, versions}) =>
      [...versions].map(current => limit(() => row(options, ecosystem, name, current))),
    ),
  );
  return rows.sort(
    (a, b) => a.ecosystem.localeCompare(b.ecosystem) || a.name.localeCompare(b.name),
  );
}

async function row(
  options: OutdatedOptions,
  ecosystem: Ecosystem,
  name: string,
  current: string,
): Promise<OutdatedRow> {
  let latest: string | undefined;
  try {
    if (ecosystem === 'npm' || ecosystem === 'yarn')
      latest = await npmLatest(options.http, name, options.npm, options.npmDefaultRegistry);
    else if (ecosystem === 'pypi')
      latest = await pypiLatest(options.http, options.pypiIndex, name, {
        python: options.pythonVersion,
      });
    else latest = await latestRelease(options.github(), name.split('/').slice(0, 2).join('/'));
  } catch (error) {
    // Known failures (not found, refused, unreachable) make the row unknown; a bug still throws.
    if (!(error instanceof DeployError)) throw error;
    return {
      ecosystem,
      name,
      current,
      latest: null,
      outdated: false,
      unknown: redact(error.message),
    };
  }
  if (latest === undefined) {
    const why =
      ecosystem === 'pypi'
        ? `no release of ${name} on ${options.pypiIndex} that is not yanked${options.pythonVersion ? ` and admits Python ${options.pythonVersion}` : ''}`
        : `no release of ${name} found upstream`;
    return {ecosystem, name, current, latest: null, outdated: false, unknown: redact(why)};
  }
  return {
    ecosystem,
    name,
    current,
    latest,
    outdated: isNewer(ecosystem, latest, current),
    unknown: null,
  };
}

/** The npm package a Yarn cache zip comes from: a patch names its source (`patch:left@npm%3A...`). */
function berryNpmName(name: string, reference: string): string {
  return /^patch:((?:@[^/@]+\/)?[^/@]+)@/.exec(reference)?.[1] ?? name;
}

/**
 * The npm version of a vendored Yarn cache zip, from its reference: `npm:1.2.3`, or a patch of
 * one (`patch:resolve@npm%3A1.22.8#...::version=1.22.8&hash=...`).
 */
function berryNpmVersion(reference: string): string {
  if (reference.startsWith('npm:')) return reference.slice(4);
  return /::version=([^&]+)/.exec(reference)?.[1] ?? reference;
}

/**
 * PyPI versions compare by PEP 440 (`1.0` is `1.0.0`; an older latest, when the vendored release
 * was yanked, is not an update); other ecosystems by identity, as before.
 */
function isNewer(ecosystem: Ecosystem, latest: string, current: string): boolean {
  if (ecosystem === 'pypi' && explain(latest) && explain(current)) return gt(latest, current);
  return latest !== current;
}
