import semver from 'semver';
import {IntegrityError} from '../../lib/support/errors.js';
import type {Http} from '../http.js';

/** Where npm packages come from: a default registry and per-scope registries. */
export type NpmUpstream = {
  /** Replaces the registry part of lockfile URLs (a mirror); undefined keeps them as written. */
  registry: string | undefined;
  /** `@scope` → registry URL. */
  scopes: Map<string, string>;
};

/**
 * The URL to download a locked tarball from. The lockfile's `resolved` URL is what the app pins;
 * a configured registry (or scope registry) replaces its allowed-registry prefix, so maintainers
 * behind a mirror fetch the same tarball, checked against the same integrity.
 */
export function npmDownloadUrl(
  name: string,
  resolved: string,
  upstream: NpmUpstream,
  allowedRegistries: string[],
): string {
  const target = registryFor(name, upstream);
  if (!target) return resolved;
  const prefix = allowedRegistries.map(r => new URL(r).href).find(r => resolved.startsWith(r));
  if (!prefix) return resolved;
  const url = new URL(resolved.slice(prefix.length), withSlash(target));
  // readLockfile refuses such paths; a URL that left the mirror would still not be followed.
  if (url.origin !== new URL(withSlash(target)).origin) {
    throw new IntegrityError(
      `${name}: the lockfile's "resolved" URL (${resolved}) leaves the registry it names.`,
      'Regenerate package-lock.json with `npm install --package-lock-only`.',
    );
  }
  return url.href;
}

/** The newest version under the `latest` dist-tag, from the packument. */
export async function npmLatest(
  http: Http,
  name: string,
  upstream: NpmUpstream,
  fallbackRegistry: string,
): Promise<string | undefined> {
  const url = npmPackumentUrl(name, upstream, fallbackRegistry);
  const packument = await http.json<{
    'dist-tags'?: Record<string, string>;
    versions?: Record<string, unknown>;
  }>(url, {
    accept: 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8',
  });
  const latest = packument['dist-tags']?.latest;
  if (latest) return latest;
  const versions = Object.keys(packument.versions ?? {}).filter(
    v => semver.valid(v) && !semver.prerelease(v),
  );
  return versions.sort(semver.compare).at(-1);
}

/** Where the packument of `name` is: its scope's registry, the configured one, or `fallback`. */
export function npmPackumentUrl(name: string, upstream: NpmUpstream, fallback: string): string {
  const registry = registryFor(name, upstream) ?? fallback;
  return new URL(name.replace('/', '%2f'), withSlash(registry)).href;
}

function registryFor(name: string, upstream: NpmUpstream): string | undefined {
  if (name.startsWith('@')) {
    const scoped = upstream.scopes.get(name.split('/')[0] ?? '');
    if (scoped) return scoped;
  }
  return upstream.registry;
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}
