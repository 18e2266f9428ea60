import {compare, explain, satisfies, validRange} from '@renovatebot/pep440';
import {normalizePypiName} from '../../lib/pins/vendor-manifest.js';
import type {Http} from '../http.js';
import {parseProjectPage, SIMPLE_ACCEPT} from './pypi-page.js';

/** One file of a project on a PEP 503 / PEP 691 "simple" index. */
export type PypiFile = {
  filename: string;
  /** Without the hash fragment. */
  url: string;
  version: string | undefined;
  sha256: string | undefined;
  /** Every hash the index gives, by algorithm (lower-case hex). */
  hashes: Record<string, string>;
  /** `Requires-Python` as the index states it (`data-requires-python`, JSON `requires-python`). */
  requiresPython: string | undefined;
  /** PEP 592: `true` or the reason; a yanked file is only for exact pins. */
  yanked: boolean | string;
};

/**
 * The files of a project on a simple index. PEP 691 JSON is asked for first; an index that
 * answers HTML is read as PEP 503. File names are checked: one with a path in it is refused, not
 * followed.
 *
 * @example
 * const files = await listProjectFiles(http, 'https://pypi.org/simple/', 'Flask_Login');
 * // GET https://pypi.org/simple/flask-login/
 */
export async function listProjectFiles(
  http: Http,
  indexUrl: string,
  name: string,
): Promise<PypiFile[]> {
  const base = indexUrl.endsWith('/') ? indexUrl : `${indexUrl}/`;
  const pageUrl = new URL(`${normalizePypiName(name)}/`, base).href;
  const {body, contentType} = await http.textWithType(pageUrl, {accept: SIMPLE_ACCEPT});
  const files: PypiFile[] = [];
  for (const link of parseProjectPage(body, contentType, pageUrl)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._+!-]*\.(whl|tar\.gz|zip)$/.test(link.filename)) continue;
    const url = new URL(link.href);
    url.hash = '';
    const sha256 = /^[0-9a-f]{64}$/.test(link.hashes.sha256 ?? '') ? link.hashes.sha256 : undefined;
    files.push({
      filename: link.filename,
      url: url.href,
      version: versionFromFilename(link.filename, name),
      sha256,
      hashes: link.hashes,
      requiresPython: link.requiresPython,
      yanked: link.yanked,
    });
  }
  return files;
}

/** The version in a wheel or sdist file name, or undefined when the name is not of `project`. */
export function versionFromFilename(filename: string, project: string): string | undefined {
  const wanted = normalizePypiName(project);
  if (filename.endsWith('.whl')) {
    const [dist, version] = filename.slice(0, -4).split('-');
    return dist && normalizePypiName(dist) === wanted ? version : undefined;
  }
  const stem = filename.replace(/\.(tar\.gz|zip)$/, '');
  const dash = stem.lastIndexOf('-');
  if (dash === -1) return undefined;
  return normalizePypiName(stem.slice(0, dash)) === wanted ? stem.slice(dash + 1) : undefined;
}

export type LatestOptions = {
  /** Only files whose Requires-Python admits this Python (`3.11`), as pip does for its own. */
  python?: string | undefined;
};

/**
 * The newest final release among `files` (pre-releases only when there is nothing else), as pip
 * picks for an unpinned requirement: yanked files are left out (PEP 592), and so are files whose
 * Requires-Python excludes `options.python`. An invalid Requires-Python is ignored, as pip does.
 */
export function latestVersion(files: PypiFile[], options: LatestOptions = {}): string | undefined {
  const usable = files.filter(
    f =>
      f.yanked === false &&
      (options.python === undefined ||
        f.requiresPython === undefined ||
        !validRange(f.requiresPython) ||
        satisfies(options.python, f.requiresPython)),
  );
  const versions = [...new Set(usable.map(f => f.version))].filter(
    (v): v is string => v !== undefined && explain(v) !== null,
  );
  const finals = versions.filter(v => {
    const parsed = explain(v);
    return parsed !== null && !parsed.is_prerelease && !parsed.is_devrelease;
  });
  return (finals.length > 0 ? finals : versions).sort(compare).at(-1);
}

/** The newest release on the index that pip would choose for an unpinned requirement. */
export async function pypiLatest(
  http: Http,
  indexUrl: string,
  name: string,
  options: LatestOptions = {},
): Promise<string | undefined> {
  return latestVersion(await listProjectFiles(http, indexUrl, name), options);
}
