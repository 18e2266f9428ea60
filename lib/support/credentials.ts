/**
 * Every secret the products read, read here and registered for redaction as it is read
 * (lib/support/redact.ts), so no reader can forget to: the environment's tokens for deploy and
 * vendor-sync, and the tokens npm's configuration holds. Which origin a secret may go to is
 * decided where it is used (lib/git/credentials.ts, lib/http/policy.ts); proxy passwords are
 * registered where proxy URLs are read (lib/http/policy.ts).
 *
 * | variable                                  | read by                                        |
 * | ----------------------------------------- | ---------------------------------------------- |
 * | DEPLOY_GIT_TOKEN (+ DEPLOY_GIT_USERNAME)  | deploy, check, bundle: the named repositories  |
 * | DEPLOY_GIT_CREDENTIALS                    | deploy, check, bundle: one credential per origin |
 * | GITHUB_TOKEN, else GH_TOKEN               | check --github-status; vendor-sync (GitHub API) |
 * | VENDOR_SYNC_GIT_TOKEN (+ _USERNAME)       | vendor-sync: push to the vendor repository     |
 * | VENDOR_SYNC_NPM_TOKEN                     | vendor-sync: --npm-registry and scope registries |
 * | VENDOR_SYNC_SIGNING_KEY_PASSPHRASE        | vendor-sync: an encrypted --signing-key        |
 */
import {registerSecret} from './redact.js';

/** A username and token for http(s), never written anywhere. */
export type TokenCredentials = {username: string; password: string};

/** Register `value` for redaction and hand it back. */
export function secret<T extends string | undefined>(value: T): T {
  registerSecret(value);
  return value;
}

/** `DEPLOY_GIT_TOKEN`, for the repositories the node names; its user `DEPLOY_GIT_USERNAME`. */
export function deployGitToken(env: NodeJS.ProcessEnv): TokenCredentials | undefined {
  const token = secret(env.DEPLOY_GIT_TOKEN);
  if (!token) return undefined;
  return {username: env.DEPLOY_GIT_USERNAME ?? 'x-access-token', password: token};
}

/**
 * `DEPLOY_GIT_CREDENTIALS` as written (`https://user:token@host` entries), with every token in
 * it registered; lib/git/credentials.ts parses and checks the entries.
 */
export function deployGitCredentialList(env: NodeJS.ProcessEnv): string | undefined {
  const text = env.DEPLOY_GIT_CREDENTIALS;
  for (const entry of (text ?? '').split(/\s+/).filter(Boolean)) {
    try {
      secret(decodeURIComponent(new URL(entry).password));
    } catch {
      // Not a URL: it may be a bare token, a secret all the same (the parser refuses it).
      secret(entry);
    }
  }
  return text;
}

/** The GitHub API token: `GITHUB_TOKEN`, else `GH_TOKEN` (the gh CLI's name). */
export function githubToken(env: NodeJS.ProcessEnv): string | undefined {
  return secret(env.GITHUB_TOKEN ?? env.GH_TOKEN);
}

/** vendor-sync's token for the npm registries given on its command line. */
export function vendorSyncNpmToken(env: NodeJS.ProcessEnv): string | undefined {
  return secret(env.VENDOR_SYNC_NPM_TOKEN);
}

/** vendor-sync's push credentials: `VENDOR_SYNC_GIT_TOKEN`, else the GitHub token. */
export function vendorSyncGitToken(env: NodeJS.ProcessEnv): TokenCredentials | undefined {
  const token = secret(env.VENDOR_SYNC_GIT_TOKEN ?? env.GITHUB_TOKEN ?? env.GH_TOKEN);
  if (!token) return undefined;
  return {username: env.VENDOR_SYNC_GIT_USERNAME ?? 'x-access-token', password: token};
}

/** The passphrase of vendor-sync's signing key, when the key is encrypted. */
export function vendorSyncSigningPassphrase(env: NodeJS.ProcessEnv): string | undefined {
  return secret(env.VENDOR_SYNC_SIGNING_KEY_PASSPHRASE);
}

/**
 * A token from npm's configuration (`//host/:_authToken`, `_auth`, `_password`): `value` as
 * configured and, for `_password`, the base64-decoded password; both registered.
 */
export function npmConfigSecret(key: '_authToken' | '_auth' | '_password', value: string): string {
  secret(value);
  if (key !== '_password') return value;
  return secret(Buffer.from(value, 'base64').toString('utf8'));
}
