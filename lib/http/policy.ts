/**
 * The network rules every HTTP client of repodeploy follows (deploy's git client and
 * vendor-sync's downloads): which proxy a request goes through, which TLS settings it uses,
 * which credentials it carries, and which redirects it may follow.
 */
import {BlockList} from 'node:net';
import type {Dispatcher} from 'undici';
import {undici} from './undici.js';
import {SourceError} from '../support/errors.js';
import {redact, registerSecret} from '../support/redact.js';

/** Proxies as curl and git read them; each value also names where it came from. */
export type ProxySettings = {
  http?: {url: string; from: string};
  https?: {url: string; from: string};
  noProxy?: string;
};

/** TLS for one group of origins: extra trusted CAs (replacing the defaults), and verification. */
export type TlsSettings = {ca?: string | string[]; rejectUnauthorized: boolean};

/** Settings that apply to some origins only (npm's own configuration for its registries). */
export type OriginRule = {origins: Set<string>; proxy?: ProxySettings; tls?: TlsSettings};

/**
 * A credential sent with every request whose URL falls under `prefix`, written as npm writes a
 * registry key: `//host[:port]/path/` (no scheme).
 */
export type Credential = {prefix: string; authorization: string};

/** The hosts reached directly when NO_PROXY is not set: this machine's loopback. */
const LOOPBACK_NO_PROXY = 'localhost,127.0.0.1,::1';

/**
 * Proxy settings from the environment: `https_proxy`/`HTTPS_PROXY` for https URLs,
 * `http_proxy`/`HTTP_PROXY` for http URLs, `no_proxy`/`NO_PROXY` for hosts reached directly
 * (lower case first, as curl reads them). An https URL never falls back to the http proxy.
 * Without a NO_PROXY, this machine's loopback is reached directly (as Go's net/http does): a
 * proxy elsewhere cannot reach it, and a local registry or git server must keep working when the
 * proxy variables point at a proxy that is down. A NO_PROXY that is set decides alone.
 */
export function proxySettingsFromEnv(env: NodeJS.ProcessEnv): ProxySettings {
  const pick = (...names: string[]) => {
    for (const name of names) {
      const value = env[name];
      if (value) return {url: value, from: name};
    }
    return undefined;
  };
  return {
    http: pick('http_proxy', 'HTTP_PROXY'),
    https: pick('https_proxy', 'HTTPS_PROXY'),
    noProxy: env.no_proxy ?? env.NO_PROXY ?? LOOPBACK_NO_PROXY,
  };
}

/**
 * The dispatchers (undici agents) for a set of proxy and TLS settings. NO_PROXY matching and the
 * CONNECT tunnel are undici's; an http URL goes to its proxy as an absolute-URI request, as curl
 * sends it.
 */
export class Network {
  private readonly agents = new Map<string, Dispatcher>();

  constructor(
    private readonly proxy: ProxySettings = {},
    private readonly rules: OriginRule[] = [],
  ) {
    for (const settings of [proxy, ...rules.map(r => r.proxy)]) {
      for (const p of [settings?.http, settings?.https]) {
        if (p) registerSecret(proxyPassword(p.url));
      }
    }
  }

  /** The dispatcher for a request to `url` (undici is loaded on the first one). */
  async dispatcherFor(url: URL): Promise<Dispatcher> {
    const index = this.rules.findIndex(r => r.origins.has(url.origin));
    const rule = this.rules[index];
    const key = `${index}|${url.protocol}`;
    let agent = this.agents.get(key);
    if (!agent) {
      const {EnvHttpProxyAgent} = await undici();
      // Another request may have made it while undici loaded.
      agent =
        this.agents.get(key) ??
        makeAgent(EnvHttpProxyAgent, this.proxySettingsFor(url), url.protocol, rule?.tls);
      this.agents.set(key, agent);
    }
    return agent;
  }

  /** A `fetch` that follows these rules (for clients that take one, such as Octokit). */
  readonly fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const {fetch: undiciFetch} = await undici();
    return undiciFetch(url, {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher: await this.dispatcherFor(url),
    });
  }) as unknown as typeof fetch;

  /**
   * Whether a plain-http request to `url` would go through a proxy, so that a credential on it
   * would cross the network in clear text (see {@link proxiesClearText}).
   */
  proxiesClearText(url: URL): boolean {
    return proxiesClearText(url, this.proxySettingsFor(url));
  }

  /** The proxy configured for `url`'s scheme (NO_PROXY aside), for error messages. */
  configuredProxy(url: URL): {url: string; from: string} | undefined {
    const settings = this.proxySettingsFor(url);
    return url.protocol === 'https:' ? settings.https : settings.http;
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map(a => a.close()));
    this.agents.clear();
  }

  private proxySettingsFor(url: URL): ProxySettings {
    const rule = this.rules.find(r => r.origins.has(url.origin));
    return {...this.proxy, ...stripUndefined(rule?.proxy ?? {})};
  }
}

/**
 * Whether a plain-http request to `url` goes through the http proxy of `settings`. Only a
 * NO_PROXY entry naming the host itself (or `host:port`) counts as direct: anything subtler is
 * taken as proxied, so a caller withholding credentials on it can only withhold, never leak.
 */
export function proxiesClearText(url: URL, settings: ProxySettings): boolean {
  if (url.protocol !== 'http:' || !settings.http) return false;
  const direct = new Set(
    (settings.noProxy ?? '')
      .split(',')
      .map(entry => entry.trim().toLowerCase())
      .filter(Boolean),
  );
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  return !direct.has(host) && !direct.has(`${host}:${url.port}`);
}

function makeAgent(
  EnvHttpProxyAgent: Awaited<ReturnType<typeof undici>>['EnvHttpProxyAgent'],
  proxy: ProxySettings,
  protocol: string,
  tls: TlsSettings | undefined,
): Dispatcher {
  // Explicit values ('' for none) so undici never reads process.env behind our back.
  const uri = (protocol === 'https:' ? proxy.https?.url : proxy.http?.url) ?? '';
  const connect = tls ? {ca: tls.ca, rejectUnauthorized: tls.rejectUnauthorized} : undefined;
  return new EnvHttpProxyAgent({
    httpProxy: uri,
    httpsProxy: uri,
    noProxy: proxy.noProxy ?? '',
    proxyTunnel: false,
    ...(connect ? {connect, requestTls: connect} : {}),
  });
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function proxyPassword(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * A connection error that happened while talking to the proxy rather than the server: the
 * message names the proxy and the variable that set it, so a dead proxy is never mistaken for a
 * dead server (and nothing falls back to a direct connection).
 */
export function proxyFailure(
  network: Network,
  url: URL,
  error: unknown,
): {message: string; hint: string} | undefined {
  const proxy = network.configuredProxy(url);
  if (!proxy) return undefined;
  let proxyUrl: URL;
  try {
    proxyUrl = new URL(proxy.url);
  } catch {
    return {
      message: `The proxy ${redact(proxy.url)} (from ${proxy.from}) is not a URL.`,
      hint: `Set ${proxy.from} to http://HOST:PORT.`,
    };
  }
  const causes = causeChain(error);
  const port = Number(proxyUrl.port || (proxyUrl.protocol === 'https:' ? 443 : 80));
  const refused = causes.find(
    c => typeof c.code === 'string' && c.port === port && sameHost(c.address, proxyUrl.hostname),
  );
  const status = causes
    .map(c => /Proxy response \((\d+)\)/.exec(c.message ?? '')?.[1])
    .find(Boolean);
  if (!refused && !status) return undefined;
  const why = refused ? (refused.code ?? 'error') : `it answered HTTP ${status}`;
  return {
    message: `Could not reach ${redact(url.origin)} through the proxy ${redact(proxyUrl.href)} (from ${proxy.from}): ${why}.`,
    hint: `Check that the proxy is up, or correct ${proxy.from}; list hosts to reach directly in NO_PROXY.`,
  };
}

/**
 * A certificate the TLS settings do not trust: not worth retrying, and the hint says where a
 * private CA is named.
 */
export function tlsFailure(url: URL, error: unknown): {message: string; hint: string} | undefined {
  const cause = causeChain(error).find(
    c =>
      typeof c.code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_(VERIFY|GET_ISSUER)/.test(c.code),
  );
  if (!cause) return undefined;
  return {
    message: `The TLS certificate of ${url.origin} is not trusted: ${cause.code ?? ''} (${cause.message ?? ''}).`,
    hint: 'For a registry with a private CA, name the CA with cafile= in your npmrc; for other hosts, with NODE_EXTRA_CA_CERTS.',
  };
}

/** The innermost message of an error and its causes (fetch says only "fetch failed"). */
export function describeError(error: unknown): string {
  const chain = causeChain(error);
  const last = chain.at(-1);
  const text = chain.map(c => c.message ?? '').filter(Boolean);
  if (!last) return String(error);
  return last.code && !text.at(-1)?.includes(last.code)
    ? `${text.join(': ')} (${last.code})`
    : text.join(': ');
}

type Cause = {code?: string; address?: string; port?: number; message?: string; cause?: unknown};

function causeChain(error: unknown): Cause[] {
  const out: Cause[] = [];
  for (let e = error; e && typeof e === 'object' && out.length < 8; e = (e as Cause).cause) {
    out.push(e);
    for (const inner of (e as {errors?: unknown[]}).errors ?? []) out.push(inner as Cause);
  }
  return out;
}

function sameHost(address: string | undefined, hostname: string): boolean {
  if (!address) return false;
  const bare = hostname.replace(/^\[|\]$/g, '');
  return address === bare || (bare === 'localhost' && /^(127\.|::1$)/.test(address));
}

/**
 * The Authorization header for `url`, from the credential with the longest matching prefix.
 * Never over plain http, except to this machine (a local registry or mirror).
 */
export function authorizationFor(
  url: URL,
  credentials: Credential[],
  network?: Network,
): string | undefined {
  if (!mayCarryCredentials(url.href)) return undefined;
  // Plain http to loopback is safe only when it is not carried through a proxy.
  if (network?.proxiesClearText(url)) return undefined;
  const key = `//${url.host}${url.pathname}`;
  let best: Credential | undefined;
  for (const c of credentials) {
    if (key.startsWith(c.prefix) && c.prefix.length > (best?.prefix.length ?? 0)) best = c;
  }
  return best?.authorization;
}

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/**
 * Whether credentials may travel to `url` at all: over https anywhere, over plain http only to
 * this machine (127.0.0.0/8, ::1, localhost), where nobody on the network can read them. A name
 * that merely resolves to loopback does not count: DNS can say anything.
 */
export function mayCarryCredentials(url: string): boolean {
  const parsed = new URL(url);
  if (parsed.protocol === 'https:') return true;
  // protection R35-plain-http: credentials over plain http go to loopback only
  if (parsed.protocol !== 'http:') return false;
  const host = parsed.hostname.toLowerCase();
  if (host === 'localhost') return true;
  if (host.startsWith('[') && host.endsWith(']')) return loopback.check(host.slice(1, -1), 'ipv6');
  return /^\d+\.\d+\.\d+\.\d+$/.test(host) && loopback.check(host, 'ipv4');
}

/** The credential key npm writes for a registry URL: `//host[:port]/path/`. */
export function credentialPrefix(registryUrl: string): string {
  const url = new URL(registryUrl);
  const pathname = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  return `//${url.host}${pathname}`;
}

/**
 * The next hop of a redirect. https never drops to another scheme, and an Authorization header a
 * caller set stays with the origin it was meant for.
 */
export function followRedirect(
  from: URL,
  location: string,
  headers: Record<string, string>,
): {url: URL; headers: Record<string, string>} {
  const next = new URL(location, from);
  if (from.protocol === 'https:' && next.protocol !== 'https:') {
    throw new SourceError(
      `Refused a redirect from https to ${next.protocol} (${redact(next.href)}).`,
      'Use the final https URL.',
    );
  }
  // protection R28-redirect-auth: Authorization is dropped on a redirect to another origin
  if (next.origin !== from.origin) headers = withoutAuthorization(headers);
  return {url: next, headers};
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'),
  );
}
