import type {GitHttpRequest, GitHttpResponse, HttpClient} from 'isomorphic-git';
import type {Dispatcher} from 'undici';
import {undici} from './undici.js';
import {SourceError} from '../support/errors.js';
import {Network, proxySettingsFromEnv} from './policy.js';
import {requestFollowing, transportFailure} from './transport.js';
import {TOOL_NAME, TOOL_VERSION} from '../support/version.js';

export type HttpClientOptions = {
  /** Time allowed to connect and to receive the response headers. */
  connectTimeoutMs?: number;
  /** Longest silence allowed on the socket once connected (a stalled server). */
  idleTimeoutMs?: number;
  /** Largest response body accepted, in bytes. */
  maxResponseBytes?: number;
  /** Redirects followed at most. */
  maxRedirects?: number;
  /** Where HTTPS_PROXY, HTTP_PROXY and NO_PROXY (either case) are read; default process.env. */
  env?: NodeJS.ProcessEnv;
};

type Settings = Required<Omit<HttpClientOptions, 'env'>> & {network: Network};

const defaults: Required<Omit<HttpClientOptions, 'env'>> = {
  connectTimeoutMs: 15_000,
  idleTimeoutMs: 60_000,
  maxResponseBytes: 2 * 1024 ** 3,
  maxRedirects: 5,
};

/**
 * The HTTP client given to isomorphic-git. Its own node client has no timeouts and no size cap;
 * this one has both, and follows redirects through the one loop of lib/http (no https→http
 * downgrade, no credentials to another origin), through the proxy the environment names, as git
 * does.
 *
 * @example
 * await git.fetch({fs, http: createHttpClient({idleTimeoutMs: 5000}), gitdir, url})
 */
export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const {env, ...rest} = options;
  const settings: Settings = {
    ...defaults,
    ...rest,
    network: new Network(proxySettingsFromEnv(env ?? process.env)),
  };
  return {
    async request(req: GitHttpRequest): Promise<GitHttpResponse> {
      const body = req.body ? Buffer.concat(await collect(req.body)) : undefined;
      const method = req.method ?? 'GET';
      const headers = {'user-agent': `${TOOL_NAME}/${TOOL_VERSION}`, ...(req.headers ?? {})};
      const {url, res} = await requestFollowing(new URL(req.url), headers, {
        network: settings.network,
        maxRedirects: settings.maxRedirects,
        send: async (hopUrl, hopHeaders) => {
          const answer = await send(hopUrl, method, hopHeaders, body, settings);
          return {
            answer,
            status: answer.statusCode,
            location: headerValue(answer.headers.location),
            discard: () => answer.body.dump(),
          };
        },
      });
      return {
        url: url.href,
        method,
        statusCode: res.status,
        statusMessage: res.answer.statusText,
        headers: flattenHeaders(res.answer.headers),
        body: limitBody(res.answer, settings, url),
      };
    },
  };
}

async function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  settings: Settings,
): Promise<Dispatcher.ResponseData> {
  try {
    const {request} = await undici();
    const dispatcher = await settings.network.dispatcherFor(url);
    return await request(url, {
      method: method,
      headers,
      body,
      dispatcher,
      headersTimeout: headersTimeout(settings),
      // protection R31-idle: the idle timeout of the git HTTP client
      bodyTimeout: settings.idleTimeoutMs,
    });
  } catch (error) {
    throw translate(error, url, settings);
  }
}

/**
 * undici's errors in the words of this module: what stalled or failed, and what to do (a proxy
 * or TLS failure as every client here words it).
 */
function translate(error: unknown, url: URL, settings: Settings): unknown {
  const failure = transportFailure(settings.network, url, error);
  if (failure !== error) return failure;
  // undici's error classes by their codes: the module stays unloaded until a request is made.
  const code = (error as {code?: unknown} | null)?.code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' && headersTimeout(settings) < settings.connectTimeoutMs) {
    return stalled(url, settings, error);
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new SourceError(
      `No response from ${url.origin} within ${settings.connectTimeoutMs} ms`,
      'Check that the server is up and reachable from this node.',
      {cause: error},
    );
  }
  if (code === 'UND_ERR_BODY_TIMEOUT') return stalled(url, settings, error);
  return error;
}

function stalled(url: URL, settings: Settings, cause?: unknown): SourceError {
  return new SourceError(
    `${url.origin} sent nothing for ${settings.idleTimeoutMs} ms; gave up`,
    'The server stalled. Try again, or check the server and the network.',
    {cause},
  );
}

/** Silence before the headers counts against the idle timeout too, as on the socket before. */
function headersTimeout(settings: Settings): number {
  // protection R31-headers: a server that sends no headers is idle too
  return Math.min(settings.connectTimeoutMs, settings.idleTimeoutMs);
}

async function* limitBody(
  res: Dispatcher.ResponseData,
  settings: Settings,
  url: URL,
): AsyncIterableIterator<Uint8Array> {
  let total = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > settings.maxResponseBytes) {
        res.body.destroy();
        throw new SourceError(
          `Response from ${url.origin} exceeded ${settings.maxResponseBytes} bytes; refused`,
          'The repository is larger than this node accepts, or the server is misbehaving.',
        );
      }
      yield chunk;
    }
  } catch (error) {
    throw translate(error, url, settings);
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function flattenHeaders(headers: Dispatcher.ResponseData['headers']): Record<string, string> {
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
