/**
 * The one redirect-following request loop of every HTTP client here (isomorphic-git's, the
 * downloads'): hops up to a limit, https never dropping to http, Authorization only to the origin
 * it is meant for, and proxy and TLS failures in words that name the proxy or the CA to fix.
 * Sending one request is the caller's (undici's `request` for git, `fetch` for downloads).
 */
import {DeployError, SourceError} from '../support/errors.js';
import {redact} from '../support/redact.js';
import {
  authorizationFor,
  followRedirect,
  proxyFailure,
  tlsFailure,
  type Credential,
  type Network,
} from './policy.js';

/**
 * The proxy could not be reached or refused the tunnel. A SourceError, so a client without
 * retries reports it as is; the retry loop of downloads retries it like a network error.
 */
export class ProxyConnectError extends SourceError {
  override name = 'ProxyConnectError';
}

/** A stalled transfer: retried like a network error, then reported as a SourceError. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** An answer other than 2xx, with its headers for the retry policy (Retry-After). */
export class HttpStatusError extends Error {
  override name = 'HttpStatusError';
  constructor(
    readonly status: number,
    readonly headers: {get(name: string): string | null},
  ) {
    super(`HTTP ${status}`);
  }
}

/**
 * A connection error in the words of this module: a dead proxy as such (never mistaken for a
 * dead server), an untrusted certificate with where a CA is named. Anything else, and errors
 * already worded (DeployError), are returned as they are.
 */
export function transportFailure(network: Network, url: URL, error: unknown): unknown {
  if (error instanceof DeployError) return error;
  const proxy = proxyFailure(network, url, error);
  if (proxy) return new ProxyConnectError(proxy.message, proxy.hint, {cause: error});
  const tls = tlsFailure(url, error);
  if (tls) return new SourceError(tls.message, tls.hint, {cause: error});
  return error;
}

/** What the loop needs of one answer: its status, where it redirects, and a way to drop it. */
export type Hop = {status: number; location: string | undefined; discard(): Promise<void>};

export type RequestLoopOptions<R extends Hop> = {
  network: Network;
  /** Redirects followed at most. */
  maxRedirects: number;
  /** Authorization by npm registry key (`//host/path/`), sent only to URLs under it. */
  credentials?: Credential[];
  /** Send one request (no redirect following of its own). */
  send: (url: URL, headers: Record<string, string>) => Promise<R>;
};

/**
 * Request `start`, following redirects: the answer that is not a redirect, and its URL. A
 * credential is chosen anew for each hop's URL; an Authorization the caller set stays with its
 * origin (see {@link followRedirect}).
 */
export async function requestFollowing<R extends Hop>(
  start: URL,
  headers: Record<string, string>,
  options: RequestLoopOptions<R>,
): Promise<{url: URL; res: R}> {
  let url = start;
  for (let hop = 0; ; hop++) {
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new SourceError(`Unsupported URL scheme ${url.protocol} (${redact(url.href)}).`);
    }
    const authorization = authorizationFor(url, options.credentials ?? [], options.network);
    let res: R;
    try {
      res = await options.send(url, {...headers, ...(authorization ? {authorization} : {})});
    } catch (error) {
      throw transportFailure(options.network, url, error);
    }
    if (res.status < 300 || res.status >= 400 || !res.location) return {url, res};
    await res.discard();
    if (hop >= options.maxRedirects) {
      throw new SourceError(
        `Too many redirects (more than ${options.maxRedirects}) fetching ${redact(start.href)}.`,
        'Check the URL: the server may be redirecting in a loop.',
      );
    }
    ({url, headers} = followRedirect(url, res.location, headers));
  }
}
