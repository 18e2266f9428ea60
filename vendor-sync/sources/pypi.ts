import {compare, explain} from '@renovatebot/pep440';
import {normalizePypiName} from '../../lib/vendor-manifest.js';
import type {Http} from '../http.js';

/** One file a PEP 503 "simple" project page links to. */
export type PypiFile = {
  filename: string;
  url: string;
  version: string | undefined;
  sha256: string | undefined;
};

/**
 * The files of a project on a PEP 503 simple index: each `<a href="URL#sha256=HEX">FILENAME</a>`.
 * File names are checked: one with a path in it is refused, not followed.
 */
export async function listProjectFiles(
  http: Http,
  indexUrl: string,
  name: string,
): Promise<PypiFile[]> {
  const base = indexUrl.endsWith('/') ? indexUrl : `${indexUrl}/`;
  const pageUrl = new URL(`${normalizePypiName(name)}/`, base).href;
  const html = await http.text(pageUrl, {accept: 'text/html'});
  const files: PypiFile[] = [];
  for (const match of html.matchAll(/<a\s[^>]*href="([^"]+)"[^>]*>([^<]+)<\/a>/gi)) {
    const href = decodeEntities(match[1] ?? '');
    const filename = decodeEntities((match[2] ?? '').trim());
    if (!/^[A-Za-z0-9][A-Za-z0-9._+!-]*\.(whl|tar\.gz|zip)$/.test(filename)) continue;
    const url = new URL(href, pageUrl);
    const sha256 = /(?:^|&)sha256=([0-9a-f]{64})/i.exec(url.hash.slice(1))?.[1]?.toLowerCase();
    url.hash = '';
    files.push({filename, url: url.href, version: versionFromFilename(filename, name), sha256});
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

/** The newest final release on the index (pre-releases only when nothing else exists). */
export async function pypiLatest(
  http: Http,
  indexUrl: string,
  name: string,
): Promise<string | undefined> {
  const versions = [
    ...new Set((await listProjectFiles(http, indexUrl, name)).map(f => f.version)),
  ].filter((v): v is string => v !== undefined && explain(v) !== null);
  const finals = versions.filter(v => {
    const parsed = explain(v);
    return parsed !== null && !parsed.is_prerelease && !parsed.is_devrelease;
  });
  return (finals.length > 0 ? finals : versions).sort(compare).at(-1);
}

function decodeEntities(text: string): string {
  return text
    .replace(/&amp;/g, '&')
    .replace(/&#x?([0-9a-f]+);/gi, (_m, code: string) =>
      String.fromCharCode(Number.parseInt(code, /^[0-9]+$/.test(code) ? 10 : 16)),
    );
}
