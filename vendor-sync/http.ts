import {createWriteStream, promises as fsp} from 'node:fs';
import path from 'node:path';
import {Readable, Transform} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import type {ReadableStream as WebReadableStream} from 'node:stream/web';
import {fetch, type Response} from 'undici';
import {IntegrityError, SourceError} from '../lib/support/errors.js';
import {checkingStream, downloadMismatch, isMismatch} from '../lib/pins/integrity.js';
import {tempSibling} from '../lib/support/fs.js';
import {
  authorizationFor,
  credentialPrefix,
  describeError,
  followRedirect,
  Network,
  proxyFailure,
  tlsFailure,
  type Credential,
} from '../lib/http/policy.js';
import {redact} from '../lib/support/redact.js';
import {realSleep, retryDelayForStatus} from '../lib/http/retry.js';

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
};

const defaults = {
  attempts: 4,
  backoffMs: 500,
  maxWaitMs: 120_000,
  timeoutMs: 30_000,
  maxBytes: 1024 ** 3,
};

/**
 * HTTP for vendor-sync: bounded retries with backoff on network errors, timeouts and 5xx;
 * Retry-After and GitHub's x-ratelimit-reset honoured on 429/403; redirects followed by hand so
 * a token never goes to another origin and https never drops to http.
 */
export class Http {
  private readonly o: Required<Omit<HttpOptions, 'tokens' | 'credentials'>>;
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
    return this.withRetries(url, async () => {
      const {res, idle} = await this.fetchFollowing(url, headers);
      const contentType = res.headers.get('content-type') ?? '';
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of bodyOf(res, idle)) {
        size += chunk.length;
        if (size > this.o.maxBytes)
          throw new SourceError(`${redact(url)} is larger than ${this.o.maxBytes} bytes; refused`);
        chunks.push(chunk);
      }
      return {body: Buffer.concat(chunks).toString('utf8'), contentType};
    });
  }

  /**
   * Download `url` to `dest` through a temp file, checking the bytes against `integrity` before
   * the rename: a file at `dest` is always complete and verified.
   */
  async download(
    url: string,
    dest: string,
    integrity: string,
    headers: Record<string, string> = {},
  ): Promise<number> {
    return this.withRetries(url, async () => {
      const {res, idle} = await this.fetchFollowing(url, headers);
      await fsp.mkdir(path.dirname(dest), {recursive: true});
      const tmp = tempSibling(dest, 'download');
      let size = 0;
      const max = this.o.maxBytes;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          size += chunk.length;
          if (size > max)
            done(new SourceError(`${redact(url)} is larger than ${max} bytes; refused`));
          else done(null, chunk);
        },
      });
      const check = checkingStream(integrity);
      try {
        await pipeline(Readable.from(bodyOf(res, idle)), counter, check, createWriteStream(tmp));
      } catch (error) {
        await fsp.rm(tmp, {force: true});
        if (isMismatch(error)) throw downloadMismatch(redact(url), integrity, error);
        throw error;
      }
      await fsp.rename(tmp, dest);
      return size;
    });
  }

  private async withRetries<T>(url: string, attempt: () => Promise<T>): Promise<T> {
    let lastError: unknown;
    // protection R32-bounded-retries: retries are bounded
    for (let n = 1; n <= this.o.attempts; n++) {
      try {
        return await attempt();
      } catch (error) {
        lastError = error;
        const wait = retryDelay(error, n, this.o.backoffMs);
        if (wait === undefined || n === this.o.attempts) break;
        if (wait > this.o.maxWaitMs) {
          throw new SourceError(
            `${redact(url)}: the server asks to wait ${Math.ceil(wait / 1000)} s before retrying; gave up.`,
            'Run again later, or use a token with a higher rate limit.',
            {cause: error},
          );
        }
        await this.o.sleep(wait);
      }
    }
    if (lastError instanceof HttpStatusError) {
      throw new SourceError(
        `GET ${redact(url)} failed: HTTP ${lastError.status}${lastError.status >= 500 || lastError.status === 429 ? ` after ${this.o.attempts} attempts` : ''}.`,
        lastError.status === 404
          ? 'Check the name, version and upstream URL.'
          : 'Check the upstream server and the credentials.',
        {cause: lastError},
      );
    }
    if (lastError instanceof SourceError || lastError instanceof IntegrityError) throw lastError;
    if (lastError instanceof ProxyConnectError) {
      throw new SourceError(
        `${lastError.message} (GET ${redact(url)}, ${this.o.attempts} attempts)`,
        lastError.hint,
        {cause: lastError},
      );
    }
    throw new SourceError(
      `GET ${redact(url)} failed after ${this.o.attempts} attempts: ${redact(describeError(lastError))}`,
      'Check that the upstream server is reachable.',
      {cause: lastError},
    );
  }

  /**
   * Fetch, following redirects by hand. The timeout is an idle timeout: it covers the wait for
   * the headers and every pause in the body, so a large download is not cut off while it flows.
   */
  /** One request, through the proxy and with the TLS settings that apply to `url`. */
  private async fetchOnce(
    url: URL,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<Response> {
    try {
      return await fetch(url, {
        headers,
        redirect: 'manual',
        signal,
        dispatcher: this.o.network.dispatcherFor(url),
      });
    } catch (error) {
      const proxy = proxyFailure(this.o.network, url, error);
      if (proxy) throw new ProxyConnectError(proxy.message, proxy.hint, {cause: error});
      const tls = tlsFailure(url, error);
      if (tls) throw new SourceError(tls.message, tls.hint, {cause: error});
      throw error;
    }
  }

  private async fetchFollowing(
    url: string,
    headers: Record<string, string>,
  ): Promise<{res: Response; idle: IdleTimer}> {
    let current = new URL(url);
    const idle = new IdleTimer(this.o.timeoutMs, url);
    try {
      for (let hop = 0; hop <= 5; hop++) {
        const authorization = authorizationFor(current, this.credentials, this.o.network);
        idle.touch();
        const res = await this.fetchOnce(
          current,
          {
            'user-agent': 'repodeploy-vendor-sync',
            ...headers,
            ...(authorization ? {authorization} : {}),
          },
          idle.signal,
        );
        if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
          await res.body?.cancel();
          ({url: current, headers} = followRedirect(
            current,
            res.headers.get('location') ?? '',
            headers,
          ));
          continue;
        }
        if (!res.ok) {
          await res.body?.cancel();
          throw new HttpStatusError(res.status, res.headers);
        }
        return {res, idle};
      }
      throw new SourceError(`Too many redirects from ${redact(url)}.`);
    } catch (error) {
      idle.stop();
      throw idle.translate(error);
    }
  }
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

  /** An abort caused by this timer becomes a SourceError that says so (and is retried). */
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

/** The proxy could not be reached or refused the tunnel: retried like a network error. */
class ProxyConnectError extends Error {
  override name = 'ProxyConnectError';
  constructor(
    message: string,
    readonly hint: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A stalled transfer: retried like a network error. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly headers: {get(name: string): string | null},
  ) {
    super(`HTTP ${status}`);
  }
}

/** How long to wait before retrying after `error`, or undefined when retrying cannot help. */
function retryDelay(error: unknown, attempt: number, backoffMs: number): number | undefined {
  if (error instanceof HttpStatusError) {
    return retryDelayForStatus(error.status, name => error.headers.get(name), attempt, backoffMs);
  }
  if (error instanceof IntegrityError || error instanceof SourceError) return undefined;
  // Network errors and timeouts.
  return backoffMs * 2 ** (attempt - 1);
}
