import path from 'node:path';
import {UsageError} from '../support/errors.js';

/** Where a repository lives: served over http(s), or a directory on this node. */
export type RepoLocation = {kind: 'http'; url: string} | {kind: 'path'; path: string};

/**
 * Parse a `--repo`, `--vendor-repo` or pin URL. Relative forms (`./x`, `../x`) resolve against
 * `base` the way git resolves relative submodule URLs: against the superproject's URL taken as a
 * directory. Without a base they resolve against `cwd`.
 *
 * @example
 * parseRepoLocation('../vendor.git', {base: {kind: 'http', url: 'http://h/app.git'}})
 * // => {kind: 'http', url: 'http://h/vendor.git'}
 */
export function parseRepoLocation(
  spec: string,
  options: {base?: RepoLocation; cwd?: string; what?: string} = {},
): RepoLocation {
  const what = options.what ?? 'repository';
  const trimmed = spec.trim();
  if (trimmed === '') throw new UsageError(`The ${what} location is empty.`);
  if (/^https?:\/\//i.test(trimmed)) {
    const url = new URL(trimmed);
    if (url.username || url.password) {
      throw new UsageError(
        `The ${what} URL carries credentials; they would end up in files on this node.`,
        'Remove them from the URL and set DEPLOY_GIT_TOKEN (and DEPLOY_GIT_USERNAME) instead.',
      );
    }
    return {kind: 'http', url: stripTrailingSlash(url.href)};
  }
  if (/^file:\/\//i.test(trimmed)) return {kind: 'path', path: new URL(trimmed).pathname};
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) || /^[^/\s]+@[^/\s]+:/.test(trimmed)) {
    throw new UsageError(
      `Unsupported ${what} location "${trimmed}": only http(s) URLs and local paths are supported.`,
      'Serve the repository over HTTPS (git smart HTTP), or give a path on this node.',
    );
  }
  const relative = trimmed.startsWith('./') || trimmed.startsWith('../');
  if (relative && options.base) {
    if (options.base.kind === 'http') {
      const url = new URL(trimmed, `${options.base.url}/`);
      return {kind: 'http', url: stripTrailingSlash(url.href)};
    }
    return {kind: 'path', path: path.resolve(options.base.path, trimmed)};
  }
  return {kind: 'path', path: path.resolve(options.cwd ?? process.cwd(), trimmed)};
}

/** The form a location is shown and stored in. */
export function formatLocation(location: RepoLocation): string {
  return location.kind === 'http' ? location.url : location.path;
}

function stripTrailingSlash(href: string): string {
  return href.endsWith('/') ? href.slice(0, -1) : href;
}
