import pLimit from 'p-limit';
import {readVendorManifest, normalizePypiName, type Ecosystem} from '../lib/vendor-manifest.js';
import type {Http} from './http.js';
import type {GithubClient} from '../lib/github.js';
import {latestRelease} from './sources/github.js';
import {npmLatest, type NpmUpstream} from './sources/npm.js';
import {pypiLatest} from './sources/pypi.js';

export type OutdatedRow = {
  ecosystem: Ecosystem;
  name: string;
  current: string;
  latest: string | null;
  outdated: boolean;
};

/**
 * For each vendored package: the version pinned and the newest upstream release (npm `latest`
 * dist-tag, newest final release on the PyPI-style index, latest GitHub release).
 */
export async function outdated(options: {
  vendorDir: string;
  http: Http;
  npm: NpmUpstream;
  npmDefaultRegistry: string;
  pypiIndex: string;
  github: () => GithubClient;
}): Promise<OutdatedRow[]> {
  const manifest = await readVendorManifest(options.vendorDir);
  const seen = new Map<string, {ecosystem: Ecosystem; name: string; versions: Set<string>}>();
  for (const a of manifest.artifacts) {
    const name = a.ecosystem === 'pypi' ? normalizePypiName(a.name) : a.name;
    const key = `${a.ecosystem}\0${name}`;
    const entry = seen.get(key) ?? {
      ecosystem: a.ecosystem,
      name: a.name,
      versions: new Set<string>(),
    };
    entry.versions.add(a.version);
    seen.set(key, entry);
  }
  const limit = pLimit(8);
  const rows = await Promise.all(
    [...seen.values()].flatMap(({ecosystem, name, versions}) =>
      [...versions].map(current =>
        limit(async (): Promise<OutdatedRow> => {
          let latest: string | undefined;
          if (ecosystem === 'npm')
            latest = await npmLatest(options.http, name, options.npm, options.npmDefaultRegistry);
          else if (ecosystem === 'pypi')
            latest = await pypiLatest(options.http, options.pypiIndex, name);
          else
            latest = await latestRelease(options.github(), name.split('/').slice(0, 2).join('/'));
          return {
            ecosystem,
            name,
            current,
            latest: latest ?? null,
            outdated: latest !== undefined && latest !== current,
          };
        }),
      ),
    ),
  );
  return rows.sort(
    (a, b) => a.ecosystem.localeCompare(b.ecosystem) || a.name.localeCompare(b.name),
  );
}
