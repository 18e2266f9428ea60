/**
 * GET with retries, for the clients that read from registries, indexes and release hosts
 * (vendor-sync): bounded retries with backoff on network errors, stalls and 5xx; Retry-After
 * and GitHub's x-ratelimit-reset honoured on 429/403; redirects through the one request loop of
 * lib/http, so a token never goes to another origin and https never drops to http.
 */
import {Readable} from 'node:stream';
import type {ReadableStream as WebReadableStream} from 'node:stream/web';
import type {Response} from 'undici';
import {undici} from './undici.js';
import {IntegrityError, SourceError} from '../support/errors.js';
import {redact} from '../support/redact.js';
import {TOOL_NAME, TOOL_VERSION} from '../support/version.js';
import {credentialPrefix, describeError, Network, type Credential} from './policy.js';
import {backoffDelay, realSleep, retryDelayForStatus, withRetries} from './retry.js';
import {HttpStatusError, ProxyConnectError, requestFollowing, TimeoutError} from './transport.js';

export type HttpOptions = {
  /** Attempts per request, the first included. */
  attempts?: number;
  /** First backoff delay; doubled each retry. */
  backoffMs?: number;
  /** Longest wait a server may ask for (Retry-After, rate-limit reset) before we give up. */
  maxWaitMs?: number;
  /** Time allowed for the response headers, and for each pause in the body. */
  timeoutMs?: number;
  /** Largest body accepted. */
  maxBytes?: number;
  /** Injected so tests can observe waits without sleeping for minutes. */
  sleep?: (ms: number) => Promise<void>;
  /** Bearer tokens by origin (`https://registry.example`); sent to that origin only. */
  tokens?: Map<string, string>;
  /** Authorization by npm registry key (`//host/path/`), sent only to URLs under it. */
  credentials?: Credential[];
  /** Proxies and TLS settings; default: direct connections with Node's CAs. */
  network?: Network;
  /** How the client names itself; default: repodeploy/VERSION. */
  userAgent?: string;
};

const defaults = {
  attempts: 4,
  backoffMs: 500,
  maxWaitMs: 120_000,
  timeoutMs: 30_000,
  maxBytes: 1024 ** 3,
  userAgent: `${TOOL_NAME}/${TOOL_VERSION}`,
};

const MAX_REDIRECTS = 5;

/** A GET client with retries; {@link HttpGet.retrying} lets a subclass read a body its own way. */
export class HttpGet {
  protected readonly o: Required<Omit<HttpOptions, 'tokens' | 'credentials'>>;
  private readonly credentials: Credential[];

  constructor(options: HttpOptions = {}) {
    const {tokens, credentials, ...rest} = options;
    this.o = {...defaults, sleep: realSleep, network: new Network(), ...rest};
    this.credentials = [
      ...(credentials ?? []),
      ...[...(tokens ?? [])].map(([origin, token]) => ({
        prefix: credentialPrefix(origin),
        authorization: `Bearer ${token}`,
      })),
    ];
  }

  /** GET `url` and parse JSON. */
  async json<T>(url: string, headers: Record<string, string> = {}): Promise<T> {
    return JSON.parse(await this.text(url, {accept: 'application/json', ...headers})) as T;
  }

  async text(url: string, headers: Record<string, string> = {}): Promise<string> {
    return (await this.textWithType(url, headers)).body;
  }

  /** GET `url` as text, with the media type the server answered in (content negotiation). */
  async textWithType(
    url: string,
    headers: Record<string, string> = {},
  ): Promise<{body: string; contentType: string}> {
    return this.retrying(url, headers, async (body, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk);
      return {
        body: Buffer.concat(chunks).toString('utf8'),
        contentType: res.headers.get('content-type') ?? '',
      };
    });
  }

  /**
   * GET `url` and hand its body (size-capped, under the idle timeout) to `read`, the whole of
   * it retried as one attempt: a transfer that stalls midway starts again from the beginning.
   */
  async retrying<T>(
    url: string,
    headers: Record<string, string>,
    read: (body: AsyncIterable<Buffer>, res: Response) => Promise<T>,
  ): Promise<T> {
    const policy = {
      attempts: this.o.attempts,
      maxWaitMs: this.o.maxWaitMs,
      sleep: this.o.sleep,
      delay: (error: unknown, n: number) => retryDelay(error, n, this.o.backoffMs),
      subject: redact(url),
      hint: 'Run again later, or use a token with a higher rate limit.',
      giveUp: SourceError,
    };
    try {
      return await withRetries(policy, async () => {
        const {res, idle} = await this.fetchFollowing(url, headers);
        return read(capped(bodyOf(res, idle), this.o.maxBytes, url), res);
      });
    } catch (error) {
      throw gaveUp(error, url, this.o.attempts);
    }
  }

  /**
   * Fetch, following redirects. The timeout is an idle timeout: it covers the wait for the
   * headers and every pause in the body, so a large download is not cut off while it flows.
   */
  private async fetchFollowing(
    url: string,
    headers: Record<string, string>,
  ): Promise<{res: Response; idle: IdleTimer}> {
    const idle = new IdleTimer(this.o.timeoutMs, url);
    const network = this.o.network;
    try {
      const {res} = await requestFollowing(
        new URL(url),
        {'user-agent': this.o.userAgent, ...headers},
        {
          network,
          maxRedirects: MAX_REDIRECTS,
          credentials: this.credentials,
          send: async (hopUrl, hopHeaders) => {
            idle.touch();
            const {fetch} = await undici();
            const answer = await fetch(hopUrl, {
              headers: hopHeaders,
              redirect: 'manual',
              signal: idle.signal,
              dispatcher: await network.dispatcherFor(hopUrl),
            });
            return {
              answer,
              status: answer.status,
              location: answer.headers.get('location') ?? undefined,
              discard: async () => answer.body?.cancel(),
            };
          },
        },
      );
      if (!res.answer.ok) {
        await res.discard();
        throw new HttpStatusError(res.status, res.answer.headers);
      }
      return {res: res.answer, idle};
    } catch (error) {
      idle.stop();
      throw idle.translate(error);
    }
  }
}

/** The last error of a request, in the words a maintainer reads: what failed, after how much. */
function gaveUp(error: unknown, url: string, attempts: number): unknown {
  if (error instanceof HttpStatusError) {
    const retried = error.status >= 500 || error.status === 429;
    return new SourceError(
      `GET ${redact(url)} failed: HTTP ${error.status}${retried ? ` after ${attempts} attempts` : ''}.`,
      error.status === 404
        ? 'Check the name, version and upstream URL.'
        : 'Check the upstream server and the credentials.',
      {cause: error},
    );
  }
  if (error instanceof ProxyConnectError) {
    return new SourceError(
      `${error.message} (GET ${redact(url)}, ${attempts} attempts)`,
      error.hint,
      {cause: error},
    );
  }
  if (error instanceof SourceError || error instanceof IntegrityError) return error;
  return new SourceError(
    `GET ${redact(url)} failed after ${attempts} attempts: ${redact(describeError(error))}`,
    'Check that the upstream server is reachable.',
    {cause: error},
  );
}

/** How long to wait before retrying after `error`, or undefined when retrying cannot help. */
function retryDelay(error: unknown, attempt: number, backoffMs: number): number | undefined {
  if (error instanceof HttpStatusError) {
    return retryDelayForStatus(error.status, name => error.headers.get(name), attempt, backoffMs);
  }
  // A dead proxy may come back; any other worded error is final.
  if (error instanceof ProxyConnectError) return backoffDelay(attempt, backoffMs);
  if (error instanceof IntegrityError || error instanceof SourceError) return undefined;
  // Network errors and timeouts.
  return backoffDelay(attempt, backoffMs);
}

/** Aborts a request after `ms` without progress; `touch()` on every chunk. */
class IdleTimer {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  readonly signal = this.controller.signal;

  constructor(
    private readonly ms: number,
    private readonly url: string,
  ) {}

  touch(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.controller.abort();
    }, this.ms);
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  /** An abort caused by this timer becomes a TimeoutError that says so (and is retried). */
  translate(error: unknown): unknown {
    if (this.signal.aborted) {
      return new TimeoutError(
        `${redact(this.url)}: no data for ${this.ms} ms; gave up on this attempt.`,
      );
    }
    return error;
  }
}

/** The body of `res`, chunk by chunk, keeping the idle timer alive and stopping it at the end. */
async function* bodyOf(res: Response, idle: IdleTimer): AsyncGenerator<Buffer> {
  if (!res.body) return;
  try {
    for await (const chunk of Readable.fromWeb(res.body as WebReadableStream<Uint8Array>)) {
      idle.touch();
      yield chunk as Buffer;
    }
  } catch (error) {
    throw idle.translate(error);
  } finally {
    idle.stop();
  }
}

/** `body`, refused once it passes `max` bytes (a server that never stops sending). */
async function* capped(body: AsyncIterable<Buffer>, max: number, url: string) {
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) throw new SourceError(`${redact(url)} is larger than ${max} bytes; refused`);
    yield chunk;
  }
}
