import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import {
  fetchVendor,
  installRelease,
  plural,
  readApp,
  resolveApp,
  sourcesFrom,
  verifyRelease,
  writeTrees,
  type VendorCheckout,
} from '../deploy/changeset.js';
import type {Deps} from '../support/deps.js';
import {ConfigError, DeployError, ReleasePathError} from '../support/errors.js';
import {readLockfile} from '../pins/npm-lockfile.js';
import {parseRequirements} from '../install/pip.js';
import {checkReleasePaths} from '../node/release-path.js';
import {formatLocation, parseRepoLocation} from '../git/location.js';
import {readRegularFile} from '../pins/vendor-manifest.js';
import type {AppSettings} from '../pins/vendor-pin.js';

export type CheckStatus = 'pass' | 'fail' | 'error' | 'skip';

/** One check: what was checked, how it went, and the command that fixes it. */
export type CheckItem = {
  id: 'rev' | 'deploy-json' | 'vendor-pin' | 'lockfile' | 'artifacts' | 'shared' | 'install';
  title: string;
  status: CheckStatus;
  message: string;
  fix: string | null;
  durationMs: number;
};

export type CheckReport = {
  repo: string;
  rev: string;
  sha: string | null;
  vendor: {url: string; sha: string} | null;
  /** Every check passed (or was skipped on purpose). */
  deployable: boolean;
  /** A check could not run (a repository unreachable, a rev unknown): says nothing of the changeset. */
  couldNotCheck: boolean;
  checks: CheckItem[];
  durationMs: number;
};

export type CheckOptions = {
  rev: string;
  repo: string;
  vendorRepo?: string | undefined;
  /** Run the offline install in a scratch directory (the proof); default true. */
  install: boolean;
};

/**
 * `deploy check`: prove that a changeset is deployable before any node sees it. It goes through
 * the same steps as a deploy (same code), into a scratch directory, and reports each step:
 * the rev resolves; deploy.json is valid; the vendor pin is fetchable; the lockfile or
 * requirements pin every artifact properly; every artifact is vendored with the pinned hash; the
 * offline install works with every registry dead.
 *
 * @example
 * const report = await check({rev: 'abc1234', repo: 'https://git.example/app.git', install: true}, defaultDeps())
 */
export async function check(options: CheckOptions, deps: Deps): Promise<CheckReport> {
  const started = deps.clock().getTime();
  const checks: CheckItem[] = [];
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-check-'));
  const reposDir = path.join(scratch, 'repos');
  const releaseDir = path.join(scratch, 'release');
  const report: CheckReport = {
    repo: options.repo,
    rev: options.rev,
    sha: null,
    vendor: null,
    deployable: false,
    couldNotCheck: false,
    checks,
    durationMs: 0,
  };

  const step = async <T>(
    id: CheckItem['id'],
    title: string,
    work: () => Promise<{value: T; message: string}>,
    classify: (error: unknown) => {status: 'fail' | 'error'; fix: string | null},
  ): Promise<T | undefined> => {
    const t0 = deps.clock().getTime();
    try {
      const {value, message} = await work();
      checks.push({
        id,
        title,
        status: 'pass',
        message,
        fix: null,
        durationMs: deps.clock().getTime() - t0,
      });
      return value;
    } catch (error) {
      if (!(error instanceof DeployError)) throw error;
      const {status, fix} = classify(error);
      const message = error.hint ? `${error.message}\n${error.hint}` : error.message;
      checks.push({id, title, status, message, fix, durationMs: deps.clock().getTime() - t0});
      return undefined;
    }
  };
  const skip = (id: CheckItem['id'], title: string, message: string) => {
    checks.push({id, title, status: 'skip', message, fix: null, durationMs: 0});
  };
  const couldNotCheck = () => ({status: 'error' as const, fix: null});
  const notDeployable = (fix: string | null) => () => ({status: 'fail' as const, fix});

  try {
    const location = parseRepoLocation(options.repo, {cwd: deps.cwd, what: 'app repository'});
    report.repo = formatLocation(location);
    const vendorOverride = options.vendorRepo
      ? parseRepoLocation(options.vendorRepo, {cwd: deps.cwd, what: 'vendor repository'})
      : undefined;
    const sources = sourcesFrom(deps, [location, vendorOverride]);

    const app = await step(
      'rev',
      'the rev resolves to a commit',
      async () => {
        const value = await resolveApp(reposDir, location, options.rev, sources);
        report.sha = value.resolved.sha;
        return {value, message: `${options.rev} is ${value.resolved.sha} (${value.resolved.kind})`};
      },
      couldNotCheck,
    );
    if (!app) return finish();
    const sha = app.resolved.sha;

    const read = await step(
      'deploy-json',
      'deploy.json and the app tree are valid',
      async () => {
        const value = await readApp(app.store, sha, location, vendorOverride);
        return {value, message: describeSettings(value.settings)};
      },
      notDeployable('Fix deploy.json (docs/deploy-json.md) or the tree entry named, and commit.'),
    );
    if (!read) return finish();

    const pin = read.settings.pin;
    let vendor: VendorCheckout | undefined;
    if (pin) {
      report.vendor = {url: formatLocation(pin.location), sha: pin.sha};
      vendor = await step(
        'vendor-pin',
        'the vendor pin exists and its commit is fetchable',
        async () => {
          const value = await fetchVendor(reposDir, pin, sha, sources);
          return {
            value,
            message: `vendor ${pin.sha} from ${formatLocation(pin.location)} (${pin.source})`,
          };
        },
        couldNotCheck,
      );
      if (!vendor) return finish();
    } else {
      skip(
        'vendor-pin',
        'the vendor pin exists and its commit is fetchable',
        'the app pins no vendor repository',
      );
    }

    await writeTrees(releaseDir, {store: app.store, sha, tree: read.tree}, vendor, deps.reporter);
    const lockOk = await step(
      'lockfile',
      'the lockfile pins every artifact with a strong hash on an allowed registry',
      async () => {
        // As a deploy does once the release is written: the vendor tree is in place now.
        await checkReleasePaths(releaseDir, read.settings.config);
        return {value: true, message: await checkPins(releaseDir, read.settings)};
      },
      error =>
        error instanceof ReleasePathError
          ? {status: 'fail', fix: 'Fix the path in deploy.json (docs/deploy-json.md), and commit.'}
          : notDeployable(
              'Regenerate the lockfile (npm install --package-lock-only) or the requirements file (pip-compile --generate-hashes), or allow the registry in deploy.json install.registries.',
            )(),
    );
    if (!lockOk) return finish();

    const fixVendor = vendorSyncCommand(
      options.repo,
      sha,
      pin ? formatLocation(pin.location) : '<vendor repository>',
    );
    const verified = await step(
      'artifacts',
      'every artifact is vendored with the hash the app pins',
      async () => {
        const value = await verifyRelease(
          releaseDir,
          read.settings,
          vendor !== undefined,
          deps.env,
          deps.reporter,
        );
        const count = value.verified.length + value.assets;
        return {value, message: `${count} artifact${count === 1 ? '' : 's'} verified`};
      },
      notDeployable(fixVendor),
    );
    if (!verified) return finish();

    const shared = read.settings.config.shared ?? [];
    if (shared.length === 0)
      skip('shared', 'shared files the app declares', 'deploy.json declares no shared files');
    else {
      const files = shared.filter(p => !p.endsWith('/'));
      const dirs = shared.filter(p => p.endsWith('/'));
      checks.push({
        id: 'shared',
        title: 'shared files the app declares',
        status: 'pass',
        message: [
          files.length > 0 ? `each node must provide <root>/shared/: ${files.join(', ')}` : '',
          dirs.length > 0 ? `directories created on first deploy: ${dirs.join(', ')}` : '',
        ]
          .filter(Boolean)
          .join('; '),
        fix: null,
        durationMs: 0,
      });
    }

    if (!options.install || !verified.installer) {
      skip(
        'install',
        'the offline install works',
        verified.installer ? 'skipped (--no-install)' : 'deploy.json declares no install',
      );
      return finish();
    }
    await step(
      'install',
      'the offline install works with every registry dead',
      async () => {
        await installRelease(verified, deps.reporter);
        return {value: true, message: `${verified.installer?.describe ?? ''}: ok`};
      },
      notDeployable(
        'Fix the install (the message quotes the installer log), commit, and check again.',
      ),
    );
    return finish();
  } finally {
    await fse.remove(scratch);
  }

  function finish(): CheckReport {
    report.couldNotCheck = checks.some(c => c.status === 'error');
    report.deployable = checks.every(c => c.status === 'pass' || c.status === 'skip');
    report.durationMs = deps.clock().getTime() - started;
    return report;
  }
}

/** The lockfile or requirements check on its own, so a report can tell it from missing artifacts. */
async function checkPins(releaseDir: string, settings: AppSettings): Promise<string> {
  const install = settings.config.install;
  if (install?.type === 'npm') {
    const reqs = await readLockfile(releaseDir, install);
    const entries = reqs.reduce((sum, req) => sum + req.keys.length, 0);
    return `package-lock.json: ${plural(reqs.length, 'artifact')} for ${plural(entries, 'lockfile entry', 'lockfile entries')}, each with resolved and a sha512 integrity`;
  }
  if (install?.type === 'pip') {
    const text = await readRegularFile(
      path.join(releaseDir, install.requirements),
      install.requirements,
    );
    if (text === undefined)
      throw new ConfigError(
        `deploy.json asks for a pip install, but the app has no ${install.requirements}.`,
      );
    const reqs = parseRequirements(text, install.requirements);
    return `${install.requirements}: ${reqs.length} requirements, each pinned and hashed`;
  }
  return 'no npm or pip install declared';
}

function describeSettings(settings: AppSettings): string {
  const install = settings.config.install;
  const parts = [
    settings.pin
      ? `vendor pin ${settings.pin.sha.slice(0, 12)} (${settings.pin.source})`
      : 'no vendor pin',
    install ? `install ${install.type}` : 'no install',
  ];
  if (settings.config.assets?.length) parts.push(`${settings.config.assets.length} release assets`);
  return parts.join('; ');
}

/** The exact vendor-sync command that adds what a changeset lacks and pins it. */
export function vendorSyncCommand(repo: string, sha: string, vendor: string): string {
  return `vendor-sync --app ${quote(repo)} --rev ${sha} --vendor ${quote(vendor)} --push, then pin the new vendor commit in the app (--update-pin with the app work tree)`;
}

function quote(value: string): string {
  return /^[A-Za-z0-9@%_+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}
