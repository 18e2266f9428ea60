/**
 * The maintainer's npm configuration, read by npm's own loader (@npmcli/config) so vendor-sync
 * sees what `npm` on the same machine sees: `npm_config_*` variables, the user config
 * (`~/.npmrc` or NPM_CONFIG_USERCONFIG), the global config, and the app's project `.npmrc`.
 */
import {existsSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import Config from '@npmcli/config';
import npmDefinitions from '@npmcli/config/lib/definitions/index.js';
import {ConfigError} from '../lib/support/errors.js';
import {type Credential, type OriginRule, type ProxySettings} from '../lib/http/policy.js';
import {npmConfigSecret} from '../lib/support/credentials.js';
import type {NpmUpstream} from './sources/npm.js';

export type NpmSettings = {
  /** Registries npm was told to use; `registry` only when some config set it. */
  upstream: NpmUpstream;
  /** The registry `npm` would ask for a package's versions. */
  defaultRegistry: string;
  /** `//host/path/:_authToken` (and `_auth`, `username` + `_password`) lines. */
  credentials: Credential[];
  /** npm's proxy and TLS settings, for the registries it names. */
  rule: OriginRule | undefined;
  /** Settings of the app's project .npmrc that were not used (see `projectKeys`). */
  ignored: string[];
};

/**
 * A project .npmrc comes with the app's changeset: it may say where packages come from (the
 * bytes are checked against the lockfile either way), but credentials, proxies and TLS settings
 * come only from the maintainer's own configuration, never from a file a changeset can change.
 */
const projectKeys = /^(registry|@[^:]+:registry)$/i;

/** Where npm's builtin config would live: no npmrc is there, so none is read. */
const npmPath = path.dirname(fileURLToPath(import.meta.url));

export async function loadNpmSettings(options: {
  env: NodeJS.ProcessEnv;
  /** The app's work tree, when `--app` is a path; its .npmrc is the project config. */
  appDir: string | undefined;
}): Promise<NpmSettings> {
  const config = new Config({
    ...npmDefinitions,
    npmPath,
    // A copy: the loader writes npm_config_* variables into the environment it is given.
    env: {...options.env},
    argv: [],
    cwd: options.appDir ?? npmPath,
    warn: false,
  });
  await config.load();
  const ignored = dropProjectKeys(config, options.appDir);
  checkCafile(config);
  const flat = config.flat;
  const defaultRegistry = String(flat.registry);
  const scopes = new Map<string, string>();
  for (const [key, value] of Object.entries(flat)) {
    const scope = /^(@[^:]+):registry$/i.exec(key)?.[1];
    if (scope && typeof value === 'string') scopes.set(scope.toLowerCase(), value);
  }
  const registry = config.find('registry') === 'default' ? undefined : defaultRegistry;
  const credentials = npmCredentials(flat);
  const origins = new Set(
    [defaultRegistry, ...scopes.values()]
      .map(u => new URL(u).origin)
      .concat(credentialOrigins(credentials)),
  );
  return {
    upstream: {registry, scopes},
    defaultRegistry,
    credentials,
    rule: npmRule(config, origins),
    ignored,
  };
}

/** Remove every project setting but the registries; return the names removed. */
function dropProjectKeys(config: Config, appDir: string | undefined): string[] {
  const project = config.data.get('project')?.data ?? {};
  // The loader walks up to a parent package when the app has none: that .npmrc is not the app's.
  const ours = appDir !== undefined && path.resolve(config.localPrefix) === path.resolve(appDir);
  const ignored: string[] = [];
  for (const key of Object.keys(project)) {
    if (ours && projectKeys.test(key)) continue;
    if (ours) ignored.push(key);
    config.delete(key, 'project');
  }
  return ignored;
}

function checkCafile(config: Config): void {
  const cafile = config.get('cafile');
  if (typeof cafile === 'string' && cafile && !existsSync(cafile)) {
    throw new ConfigError(
      `The npm config names cafile=${cafile} (${config.find('cafile') ?? '?'} config), which does not exist.`,
      'Fix or remove the cafile line in your npmrc.',
    );
  }
}

function npmCredentials(flat: Record<string, unknown>): Credential[] {
  const credentials: Credential[] = [];
  const basic = (text: string) => `Basic ${Buffer.from(text).toString('base64')}`;
  for (const [key, value] of Object.entries(flat)) {
    const m = /^(\/\/.+\/):(_authToken|_auth|_password)$/.exec(key);
    if (!m?.[1] || typeof value !== 'string' || !value) continue;
    const prefix = m[1];
    const token = npmConfigSecret(m[2] as '_authToken' | '_auth' | '_password', value);
    if (m[2] === '_authToken') credentials.push({prefix, authorization: `Bearer ${token}`});
    else if (m[2] === '_auth') credentials.push({prefix, authorization: `Basic ${token}`});
    else {
      const password = token;
      const username = flat[`${prefix}:username`];
      if (typeof username === 'string')
        credentials.push({prefix, authorization: basic(`${username}:${password}`)});
    }
  }
  return credentials;
}

/** A credential key names a host, not a scheme: npm's settings apply to both. */
function credentialOrigins(credentials: Credential[]): string[] {
  return credentials.flatMap(c => {
    const host = c.prefix.slice(2).split('/')[0] ?? '';
    return [`https://${host}`, `http://${host}`].map(u => new URL(u).origin);
  });
}

/** npm's `https-proxy`, `proxy`, `noproxy`, `ca`/`cafile` and `strict-ssl`, when set. */
function npmRule(config: Config, origins: Set<string>): OriginRule | undefined {
  const flat = config.flat;
  const named = (key: string) => {
    const value = config.get(key);
    return typeof value === 'string' && value
      ? {url: value, from: `${key} in the ${config.find(key) ?? ''} npm config`}
      : undefined;
  };
  const proxy: ProxySettings = {
    http: named('proxy'),
    https: named('https-proxy') ?? named('proxy'),
    noProxy: typeof flat.noProxy === 'string' && flat.noProxy ? flat.noProxy : undefined,
  };
  const ca = flat.ca as string | string[] | null | undefined;
  const strict = flat.strictSSL !== false;
  const tls = ca || !strict ? {ca: ca ?? undefined, rejectUnauthorized: strict} : undefined;
  if (!proxy.http && !proxy.https && !proxy.noProxy && !tls) return undefined;
  return {origins, proxy, tls};
}
