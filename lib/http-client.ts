import http from 'node:http';
import https from 'node:https';
import type {GitHttpRequest, GitHttpResponse, HttpClient} from 'isomorphic-git';
import {SourceError} from './errors.js';
import {redact} from './redact.js';
import {TOOL_NAME, TOOL_VERSION} from './version.js';

export type HttpClientOptions = {
  /** Time allowed to connect and to receive the response headers. */
  connectTimeoutMs?: number;
  /** Longest silence allowed on the socket once connected (a stalled server). */
  idleTimeoutMs?: number;
  /** Largest response body accepted, in bytes. */
  maxResponseBytes?: number;
  /** Redirects followed at most. */
  maxRedirects?: number;
};

const defaults: Required<HttpClientOptions> = {
  connectTimeoutMs: 15_000,
  idleTimeoutMs: 60_000,
  maxResponseBytes: 2 * 1024 ** 3,
  maxRedirects: 5,
};

/**
 * The HTTP client given to isomorphic-git. Its own node client has no timeouts and no size cap;
 * this one has both, refuses https→http downgrades and never forwards credentials to another origin.
 *
 * @example
 * await git.fetch({fs, http: createHttpClient({idleTimeoutMs: 5000}), gitdir, url})
 */
export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const settings = {...defaults, ...options};
  return {
    async request(req: GitHttpRequest): Promise<GitHttpResponse> {
      const body = req.body ? Buffer.concat(await collect(req.body)) : undefined;
      let url = new URL(req.url);
      let headers: Record<string, string> = {
        'user-agent': `${TOOL_NAME}/${TOOL_VERSION}`,
        ...(req.headers ?? {}),
      };
      for (let hop = 0; ; hop++) {
        const res = await send(url, req.method ?? 'GET', headers, body, settings);
        const location = res.headers.location;
        if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && location) {
          res.resume();
          if (hop >= settings.maxRedirects) {
            throw new SourceError(
              `Too many redirects fetching ${redact(req.url)}`,
              'Check the repository URL.',
            );
          }
          const next = new URL(location, url);
          if (url.protocol === 'https:' && next.protocol !== 'https:') {
            throw new SourceError(
              `Refused a redirect from https to ${next.protocol} (${redact(next.href)})`,
              'Use the final https URL of the repository.',
            );
          }
          if (next.origin !== url.origin) headers = withoutAuthorization(headers);
          url = next;
          continue;
        }
        return {
          url: url.href,
          method: req.method ?? 'GET',
          statusCode: res.statusCode ?? 0,
          statusMessage: res.statusMessage ?? '',
          headers: flattenHeaders(res.headers),
          body: limitBody(res, settings.maxResponseBytes, url),
        };
      }
    },
  };
}

function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  settings: Required<HttpClientOptions>,
): Promise<http.IncomingMessage> {
  const transport = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
  if (!transport) {
    return Promise.reject(new SourceError(`Unsupported URL scheme ${url.protocol}`));
  }
  const allHeaders = body ? {...headers, 'content-length': String(body.length)} : headers;
  return new Promise((resolve, reject) => {
    const request = transport.request(url, {method, headers: allHeaders});
    const connectTimer = setTimeout(() => {
      request.destroy(
        new SourceError(
          `No response from ${url.origin} within ${settings.connectTimeoutMs} ms`,
          'Check that the server is up and reachable from this node.',
        ),
      );
    }, settings.connectTimeoutMs);
    request.setTimeout(settings.idleTimeoutMs, () => {
      request.destroy(
        new SourceError(
          `${url.origin} sent nothing for ${settings.idleTimeoutMs} ms; gave up`,
          'The server stalled. Try again, or check the server and the network.',
        ),
      );
    });
    request.on('response', res => {
      clearTimeout(connectTimer);
      resolve(res);
    });
    request.on('error', error => {
      clearTimeout(connectTimer);
      reject(error);
    });
    request.end(body);
  });
}

async function* limitBody(
  res: http.IncomingMessage,
  maxBytes: number,
  url: URL,
): AsyncIterableIterator<Uint8Array> {
  let total = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      res.destroy();
      throw new SourceError(
        `Response from ${url.origin} exceeded ${maxBytes} bytes; refused`,
        'The repository is larger than this node accepts, or the server is misbehaving.',
      );
    }
    yield chunk;
  }
  // A connection cut before the declared length ends the stream early without an error.
  if (!res.complete) {
    throw new SourceError(`Connection to ${url.origin} closed before the response was complete`);
  }
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== 'authorization') out[key] = value;
  }
  return out;
}

function flattenHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value !== undefined) out[key] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

async function collect(iterable: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
  const chunks: Buffer[] = [];
  for await (const chunk of iterable) chunks.push(Buffer.from(chunk));
  return chunks;
}
