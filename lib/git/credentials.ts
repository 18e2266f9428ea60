import {UsageError} from '../support/errors.js';
import {deployGitCredentialList, deployGitToken, secret} from '../support/credentials.js';
import {redact} from '../support/redact.js';
import {mayCarryCredentials, proxiesClearText, proxySettingsFromEnv} from '../http/policy.js';
import type {RepoLocation} from './location.js';

export {mayCarryCredentials};

/** Credentials for http(s) repositories, from the environment; never written anywhere. */
export type Credentials = {username: string; password: string};

/**
 * What a repository is given: credentials, or none and (when some exist but were held back) why,
 * for the hint of an "authentication required" error.
 */
export type CredentialGrant = {credentials?: Credentials; withheld?: string};

/** Decides which credentials, if any, go to a repository. */
export type CredentialPolicy = (location: RepoLocation) => CredentialGrant;

/**
 * The node's credential rules, from the environment and the repositories the node itself names
 * (`--repo`, `--vendor-repo`, or what node.json remembers of them):
 *
 * - `DEPLOY_GIT_CREDENTIALS`: whitespace-separated `https://user:token@host[:port]` entries (the
 *   format of git's credential store); each goes to its own origin only.
 * - `DEPLOY_GIT_TOKEN` (user `DEPLOY_GIT_USERNAME`, default `x-access-token`): to the origins of
 *   the named repositories only. A URL written in the app's changeset (deploy.json `vendor.url`,
 *   .gitmodules) at another origin gets nothing: a changeset under review must not be able to
 *   send the node's token where it likes.
 *
 * Nothing is ever given over plain http except to loopback.
 */
export function credentialPolicy(
  env: NodeJS.ProcessEnv,
  named: ReadonlyArray<RepoLocation | undefined>,
): CredentialPolicy {
  const perOrigin = parseCredentialList(deployGitCredentialList(env));
  const given = deployGitToken(env);
  const token = given?.password;
  const tokenOrigins = new Set(
    named.flatMap(location => (location?.kind === 'http' ? [new URL(location.url).origin] : [])),
  );
  const proxied = clearTextProxy(env);
  return location => {
    if (location.kind !== 'http') return {};
    const origin = new URL(location.url).origin;
    const viaProxy = proxied(location.url);
    if (viaProxy && (perOrigin.has(origin) || token)) return {withheld: viaProxy};
    const own = perOrigin.get(origin);
    if (own) return {credentials: own};
    if (!token) return {};
    // protection R35-token-origins: DEPLOY_GIT_TOKEN goes only to the origins the node names
    if (!tokenOrigins.has(origin)) {
      return {
        withheld: `DEPLOY_GIT_TOKEN goes only to the origins of --repo and --vendor-repo, not to ${origin}, which the app's changeset names. Give that origin its own credential in DEPLOY_GIT_CREDENTIALS (${origin.replace('://', '://USER:TOKEN@')}), or pass --vendor-repo.`,
      };
    }
    if (!mayCarryCredentials(location.url)) return {withheld: plainHttpHint(origin)};
    return {credentials: given};
  };
}

/** Why a plain-http URL would carry credentials through a proxy in clear text, or undefined. */
function clearTextProxy(env: NodeJS.ProcessEnv): (url: string) => string | undefined {
  const settings = proxySettingsFromEnv(env);
  return url => {
    const parsed = new URL(url);
    if (!proxiesClearText(parsed, settings)) return undefined;
    const host = parsed.hostname.replace(/^\[|\]$/g, '');
    return `Credentials are not sent to ${parsed.origin}: plain http to it would go through the proxy in ${settings.http?.from ?? 'HTTP_PROXY'}, in clear text. Add ${host} to NO_PROXY, or serve the repository over https.`;
  };
}

export function plainHttpHint(origin: string): string {
  return `Credentials are never sent over plain http to ${origin} (only to loopback): serve the repository over https.`;
}

/** Parse `DEPLOY_GIT_CREDENTIALS` into origin → credentials, refusing what could leak. */
export function parseCredentialList(text: string | undefined): Map<string, Credentials> {
  const map = new Map<string, Credentials>();
  for (const [i, entry] of (text ?? '').split(/\s+/).filter(Boolean).entries()) {
    let url: URL | undefined;
    // An entry that is not a URL is not echoed: it may be a token on its own.
    const refuse = (why: string) =>
      new UsageError(
        `DEPLOY_GIT_CREDENTIALS: entry ${i + 1}${url ? ` (${redact(url.href)})` : ''} ${why}.`,
        'Give entries as https://USER:TOKEN@host[:port], separated by spaces or newlines.',
      );
    try {
      url = new URL(entry);
    } catch {
      throw refuse('is not a URL');
    }
    const password = secret(decodeURIComponent(url.password));
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw refuse('is not http(s)');
    if (!password) throw refuse('has no token (https://USER:TOKEN@host)');
    if (url.pathname !== '/' || url.search || url.hash) {
      throw refuse('names a path; a credential belongs to a whole origin (scheme, host, port)');
    }
    if (!mayCarryCredentials(url.href)) throw refuse('is plain http to a host other than loopback');
    map.set(url.origin, {
      username: decodeURIComponent(url.username) || 'x-access-token',
      password,
    });
  }
  return map;
}
