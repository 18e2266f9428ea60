import {promises as fsp} from 'node:fs';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import type {Healthcheck, HookName} from '../pins/deploy-config.js';
import {ConfigError, DeployError, HealthcheckError} from '../support/errors.js';
import {lstatOrUndefined} from '../support/fs.js';
import {SHARED_DIR} from '../node/layout.js';
import {DEFAULT_PATH, runLogged} from '../node/run-logged.js';
import {namedPath, releasePath} from '../node/release-path.js';
import {throwIfInterrupted} from '../node/processes.js';
import {realSleep} from '../http/retry.js';

/**
 * Link each declared shared path of `<root>/shared/` into the release (the seed's `.ini` config
 * lives there). A directory (trailing "/") is created when missing; a file must exist on the node:
 * its absence fails the deploy before anything is switched, naming the exact path to create.
 */
export async function linkShared(
  root: string,
  releaseDir: string,
  shared: string[],
): Promise<string[]> {
  const sharedRoot = path.join(root, SHARED_DIR);
  // Each place in the release is resolved without following a link before anything is made or
  // removed: an app-tree symlink on the way would carry the removal outside the release.
  const places: Array<{rel: string; target: string}> = [];
  for (const [i, entry] of shared.entries()) {
    const target = await releasePath(releaseDir, namedPath(`shared[${i}]`, entry));
    places.push({rel: entry.replace(/\/+$/, ''), target});
  }
  const missing: string[] = [];
  for (const entry of shared) {
    const isDir = entry.endsWith('/');
    const rel = entry.replace(/\/+$/, '');
    const source = path.join(sharedRoot, rel);
    const stat = await lstatOrUndefined(source);
    if (!stat) {
      if (isDir) await fse.ensureDir(source);
      else missing.push(source);
    } else if (isDir ? !stat.isDirectory() : !stat.isFile()) {
      throw new ConfigError(
        `${source} must be a ${isDir ? 'directory' : 'regular file'}: deploy.json declares it shared.`,
      );
    }
  }
  if (missing.length > 0) {
    throw new ConfigError(
      `Shared file${missing.length === 1 ? '' : 's'} missing on this node: ${missing.join(', ')}.`,
      `Create ${missing.length === 1 ? 'it' : 'them'} (deploy.json "shared" declares ${missing.length === 1 ? 'it' : 'them'}); nothing was switched.`,
    );
  }
  const linked: string[] = [];
  for (const {rel, target} of places) {
    // What the app tree has at that path (a default config) gives way to the node's copy.
    await fse.remove(target);
    await fse.ensureDir(path.dirname(target));
    await fsp.symlink(path.join(sharedRoot, rel), target);
    linked.push(rel);
  }
  return linked;
}

export type HookEnv = {
  releaseDir: string;
  appRev: string;
  vendorRev: string | null;
  previousRelease: string | null;
};

/**
 * The environment of hooks and health-check commands: the node's PATH, HOME, user and locale, the
 * release variables, and nothing else of ours (no token).
 */
export function hookEnvironment(base: NodeJS.ProcessEnv, vars: HookEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ']) {
    const value = base[key];
    if (value !== undefined) env[key] = value;
  }
  if (!('PATH' in env)) env.PATH = DEFAULT_PATH;
  return {
    ...env,
    RELEASE_DIR: vars.releaseDir,
    APP_REV: vars.appRev,
    VENDOR_REV: vars.vendorRev ?? '',
    PREVIOUS_RELEASE: vars.previousRelease ?? '',
  };
}

/** Where a hook or health check runs: in the release, with its environment, into its log. */
export type HookPlace = {env: Record<string, string>; cwd: string; logFile: string};

/** Run one hook in the release, its output in the release log. */
export async function runHook(
  name: HookName,
  argv: string[] | undefined,
  {env, cwd, logFile}: HookPlace,
): Promise<boolean> {
  if (!argv) return false;
  const [command, ...args] = argv as [string, ...string[]];
  await runLogged(command, args, {
    cwd,
    env,
    logFile,
    label: `hook ${name} (${argv.join(' ')})`,
    timeoutMs: 30 * 60 * 1000,
    failAs: (message, hint) => new DeployError(message, hint),
  });
  return true;
}

/**
 * Run the health check: a command that must exit 0 within its timeout, or a URL that must answer
 * the expected status; the URL is tried again every half second until the timeout (the app may
 * still be starting).
 */
export async function runHealthcheck(
  check: Healthcheck,
  {env, cwd, logFile}: HookPlace,
): Promise<string> {
  if ('command' in check) {
    const [command, ...args] = check.command as [string, ...string[]];
    await runLogged(command, args, {
      cwd,
      env,
      logFile,
      label: `health check (${check.command.join(' ')})`,
      timeoutMs: check.timeout * 1000,
      failAs: (message, hint) => new HealthcheckError(message, hint),
    });
    return `command ${check.command.join(' ')} passed`;
  }
  const deadline = Date.now() + check.timeout * 1000;
  let last = 'no answer';
  for (;;) {
    try {
      const res = await fetch(check.url, {
        redirect: 'manual',
        signal: AbortSignal.timeout(Math.max(500, deadline - Date.now())),
      });
      await res.body?.cancel();
      if (res.status === check.status) return `${check.url} answered ${res.status}`;
      last = `answered ${res.status}, expected ${check.status}`;
    } catch (error) {
      last = (error as {cause?: {code?: string}}).cause?.code ?? (error as Error).message;
    }
    if (Date.now() >= deadline) break;
    throwIfInterrupted('the health check');
    await realSleep(Math.min(500, Math.max(0, deadline - Date.now())));
  }
  await fsp
    .appendFile(
      logFile,
      `\nhealth check ${check.url}: ${last} (gave up after ${check.timeout} s)\n`,
    )
    .catch(() => undefined);
  throw new HealthcheckError(
    `Health check failed: ${check.url} ${last} (tried for ${check.timeout} s).`,
    'The previous release was switched back in; look at the new release before deploying again.',
  );
}
