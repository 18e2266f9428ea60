import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import {
  changesetLocations,
  fetchVendor,
  readApp,
  resolveApp,
  sourcesFrom,
  type ChangesetLocations,
  type Sources,
  type VendorCheckout,
  verifyFetchedSignatures,
} from '../deploy/changeset.js';
import {installRelease, verifyRelease, type VerifiedRelease} from '../deploy/install-release.js';
import type {TreeFile} from '../git/export.js';
import type {ResolvedRev} from '../git/resolve.js';
import type {GitStore} from '../git/store.js';
import {writeTrees} from '../deploy/writer.js';
import {plural} from '../support/format.js';
import {readLockRequirements} from '../install/python-lock.js';
import type {Deps} from '../support/deps.js';
import {detailsOnly} from '../support/reporter.js';
import {
  ConfigError,
  DeployError,
  ReleasePathError,
  SignatureError,
  UsageError,
} from '../support/errors.js';
import {loadSigningPolicy, type SigningPolicy} from '../signing/policy.js';
import {describeSigner, recordSigners, type RecordedSigners} from '../signing/recorded.js';
import {readLockfile} from '../pins/npm-lockfile.js';
import {readPnpmLock} from '../pins/pnpm-lock.js';
import {readYarnPlan} from '../install/yarn.js';
import {parseRequirements} from '../pins/requirements.js';
import {installLog, REPOS_DIR} from '../node/layout.js';
import {keepInstallLog} from './kept-log.js';
import {checkReleasePaths} from '../node/release-path.js';
import {formatLocation} from '../git/location.js';
import {readRegularFile} from '../pins/vendor-manifest.js';
import type {AppSettings} from '../pins/vendor-pin.js';

export type CheckStatus = 'pass' | 'fail' | 'error' | 'skip';

/** One check: what was checked, how it went, and the command that fixes it. */
export type CheckItem = {
  id:
    | 'rev'
    | 'deploy-json'
    | 'vendor-pin'
    | 'signatures'
    | 'lockfile'
    | 'artifacts'
    | 'shared'
    | 'install';
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
  /** Who signed the app and vendor commits, when a signing policy verified them. */
  signatures: RecordedSigners | null;
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
  /** The signing policy file (docs/signing.md): the 'signatures' check runs only with one. */
  signingPolicy?: string | undefined;
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
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-check-'));
  const report: CheckReport = {
    repo: options.repo,
    rev: options.rev,
    sha: null,
    vendor: null,
    signatures: null,
    deployable: false,
    couldNotCheck: false,
    checks: [],
    durationMs: 0,
  };
  const run: CheckRun = {
    options,
    deps,
    report,
    reposDir: path.join(scratch, REPOS_DIR),
    releaseDir: path.join(scratch, 'release'),
  };
  const started = deps.clock().getTime();
  try {
    run.locations = changesetLocations(options, deps.cwd, () => new UsageError('Missing --repo.'));
    report.repo = formatLocation(run.locations.app);
    run.sources = sourcesFrom(deps, [run.locations.app, run.locations.vendorOverride]);
    // Read before any fetch: a policy that is not valid is the command's error (exit 3).
    if (options.signingPolicy)
      run.policy = await loadSigningPolicy(options.signingPolicy, {cwd: deps.cwd});
    for (const item of CHECKS) {
      if (!(await runCheck(run, item))) break;
    }
  } finally {
    await fse.remove(scratch);
  }
  report.couldNotCheck = report.checks.some(c => c.status === 'error');
  report.deployable = report.checks.every(c => c.status === 'pass' || c.status === 'skip');
  report.durationMs = deps.clock().getTime() - started;
  return report;
}

/** One check's outcome into the report; whether the next check may run. */
async function runCheck(run: CheckRun, item: Check): Promise<boolean> {
  const {id, title} = item;
  if (item.when && !item.when(run)) return true;
  const skipped = item.skip?.(run);
  if (skipped !== undefined) {
    const skip = {id, title: item.skipTitle ?? title, message: skipped};
    run.report.checks.push({...skip, status: 'skip', fix: null, durationMs: 0});
    return true;
  }
  await item.before?.(run);
  const t0 = run.deps.clock().getTime();
  const durationMs = () => run.deps.clock().getTime() - t0;
  try {
    const message = await item.run(run);
    run.report.checks.push({
      id,
      title,
      status: 'pass',
      message,
      fix: null,
      durationMs: durationMs(),
    });
    return true;
  } catch (error) {
    if (!(error instanceof DeployError)) throw error;
    const {status, fix} = item.fails(run, error);
    const message = error.hint ? `${error.message}\n${error.hint}` : error.message;
    run.report.checks.push({id, title, status, message, fix, durationMs: durationMs()});
    return false;
  }
}

/** What a check knows: the command's options, and what the checks before it found. */
type CheckRun = {
  options: CheckOptions;
  deps: Deps;
  report: CheckReport;
  reposDir: string;
  releaseDir: string;
  locations?: ChangesetLocations;
  sources?: Sources;
  app?: {store: GitStore; resolved: ResolvedRev};
  read?: {tree: TreeFile[]; settings: AppSettings};
  vendor?: VendorCheckout;
  verified?: VerifiedRelease;
  policy?: SigningPolicy;
};

/** One step of `deploy check`, run in order until one does not pass. */
type Check = {
  id: CheckItem['id'];
  title: string;
  /** Whether the check is part of this run at all (signatures: only with a policy). */
  when?: (run: CheckRun) => boolean;
  /** Why this check does not apply, if it does not; and the title it is reported under then. */
  skip?: (run: CheckRun) => string | undefined;
  skipTitle?: string;
  /** Work that is no check of its own (writing the release tree): its errors are the command's. */
  before?: (run: CheckRun) => Promise<void>;
  /** The check; its message when it passes. */
  run: (run: CheckRun) => Promise<string>;
  /** A failure says the changeset is not deployable (`fail`), or that it could not be checked. */
  fails: (run: CheckRun, error: DeployError) => {status: 'fail' | 'error'; fix: string | null};
};

function need<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('a check ran before the one it depends on');
  return value;
}

const couldNotCheck = () => ({status: 'error' as const, fix: null});
const notDeployable = (fix: string | null) => () => ({status: 'fail' as const, fix});
const VENDOR_PIN_TITLE = 'the vendor pin exists and its commit is fetchable';

const CHECKS: Check[] = [
  {
    id: 'rev',
    title: 'the rev resolves to a commit',
    async run(run) {
      const rev = run.options.rev;
      run.app = await resolveApp(run.reposDir, need(run.locations).app, rev, need(run.sources));
      run.report.sha = run.app.resolved.sha;
      return `${rev} is ${run.app.resolved.sha} (${run.app.resolved.kind})`;
    },
    fails: couldNotCheck,
  },
  {
    id: 'deploy-json',
    title: 'deploy.json and the app tree are valid',
    async run(run) {
      const {store, resolved} = need(run.app);
      const {app, vendorOverride} = need(run.locations);
      run.read = await readApp(store, resolved.sha, app, vendorOverride);
      const pin = run.read.settings.pin;
      if (pin) run.report.vendor = {url: formatLocation(pin.location), sha: pin.sha};
      return describeSettings(run.read.settings);
    },
    fails: notDeployable(
      'Fix deploy.json (docs/deploy-json.md) or the tree entry named, and commit.',
    ),
  },
  {
    id: 'vendor-pin',
    title: VENDOR_PIN_TITLE,
    skip: run => (need(run.read).settings.pin ? undefined : 'the app pins no vendor repository'),
    async run(run) {
      const pin = need(need(run.read).settings.pin);
      const sha = need(run.app).resolved.sha;
      run.vendor = await fetchVendor(run.reposDir, pin, sha, need(run.sources));
      return `vendor ${pin.sha} from ${formatLocation(pin.location)} (${pin.source})`;
    },
    fails: couldNotCheck,
  },
  {
    id: 'signatures',
    title: 'the signing policy covers the app rev and the vendor commit',
    when: run => run.policy !== undefined,
    async run(run) {
      const signers = await verifyFetchedSignatures(
        {...need(run.app), vendor: run.vendor},
        need(run.policy),
      );
      run.report.signatures = recordSigners(signers);
      const vendor = signers.vendor ? `; vendor: ${describeSigner(signers.vendor)}` : '';
      return `app: ${describeSigner(signers.app)}${vendor}`;
    },
    // A refusal says the changeset is not deployable; a store that cannot be read says nothing.
    fails: (_run, error) =>
      error instanceof SignatureError
        ? {status: 'fail', fix: error.hint ?? null}
        : {status: 'error', fix: null},
  },
  {
    id: 'lockfile',
    title: 'the lockfile pins every artifact with a strong hash on an allowed registry',
    async before(run) {
      const {store, resolved} = need(run.app);
      const tree = need(run.read).tree;
      await writeTrees(
        run.releaseDir,
        {store, sha: resolved.sha, tree},
        run.vendor,
        detailsOnly(run.deps.reporter),
      );
    },
    async run(run) {
      const {settings} = need(run.read);
      // As a deploy does once the release is written: the vendor tree is in place now.
      await checkReleasePaths(run.releaseDir, settings.config);
      return checkPins(run.releaseDir, settings);
    },
    fails: (_run, error) =>
      error instanceof ReleasePathError
        ? {status: 'fail', fix: 'Fix the path in deploy.json (docs/deploy-json.md), and commit.'}
        : notDeployable(
            'Regenerate the lockfile (npm install --package-lock-only, uv lock, poetry lock) or the requirements file (pip-compile --generate-hashes), or allow the registry in deploy.json install.registries (install.indexes for uv and poetry).',
          )(),
  },
  {
    id: 'artifacts',
    title: 'every artifact is vendored with the hash the app pins',
    async run(run) {
      run.verified = await verifyRelease({
        releaseDir: run.releaseDir,
        settings: need(run.read).settings,
        hasVendor: run.vendor !== undefined,
        env: run.deps.env,
        reporter: run.deps.reporter,
      });
      const count = run.verified.verified.length + run.verified.assets;
      return `${count} artifact${count === 1 ? '' : 's'} verified`;
    },
    fails: run => {
      const pin = need(run.read).settings.pin;
      const vendor = pin ? formatLocation(pin.location) : '<vendor repository>';
      return {
        status: 'fail',
        fix: vendorSyncCommand(run.options.repo, need(run.app).resolved.sha, vendor),
      };
    },
  },
  {
    id: 'shared',
    title: 'shared files the app declares',
    skip: run =>
      (need(run.read).settings.config.shared ?? []).length === 0
        ? 'deploy.json declares no shared files'
        : undefined,
    run(run) {
      const shared = need(run.read).settings.config.shared ?? [];
      const files = shared.filter(p => !p.endsWith('/'));
      const dirs = shared.filter(p => p.endsWith('/'));
      return Promise.resolve(
        [
          files.length > 0 ? `each node must provide <root>/shared/: ${files.join(', ')}` : '',
          dirs.length > 0 ? `directories created on first deploy: ${dirs.join(', ')}` : '',
        ]
          .filter(Boolean)
          .join('; '),
      );
    },
    fails: notDeployable(null),
  },
  {
    id: 'install',
    title: 'the offline install works with every registry dead',
    skipTitle: 'the offline install works',
    skip: run => {
      const installer = need(run.verified).installer;
      if (!installer) return 'deploy.json declares no install';
      return run.options.install ? undefined : 'skipped (--no-install)';
    },
    async run(run) {
      const verified = need(run.verified);
      try {
        await installRelease(verified, run.deps.reporter);
      } catch (error) {
        if (!(error instanceof DeployError)) throw error;
        throw await keepInstallLog(error, installLog(run.releaseDir), run.deps.cwd);
      }
      return `${verified.installer?.describe ?? ''}: ok`;
    },
    fails: notDeployable(
      'Fix the install (the message quotes the installer log), commit, and check again.',
    ),
  },
];

/** The lockfile or requirements check on its own, so a report can tell it from missing artifacts. */
async function checkPins(releaseDir: string, settings: AppSettings): Promise<string> {
  const install = settings.config.install;
  if (install?.type === 'npm') {
    const reqs = await readLockfile(releaseDir, install);
    const entries = reqs.reduce((sum, req) => sum + req.keys.length, 0);
    return `package-lock.json: ${plural(reqs.length, 'artifact')} for ${plural(entries, 'lockfile entry', 'lockfile entries')}, each with resolved and a sha512 integrity`;
  }
  if (install?.type === 'pnpm') {
    const {requirements} = await readPnpmLock(releaseDir, install);
    const entries = requirements.reduce((sum, req) => sum + req.keys.length, 0);
    return `pnpm-lock.yaml: ${plural(requirements.length, 'artifact')} for ${plural(entries, 'lockfile package', 'lockfile packages')}, each a registry tarball with a sha512 integrity`;
  }
  if (install?.type === 'yarn') {
    const plan = await readYarnPlan(releaseDir, install);
    if (plan.flavor === 'berry') {
      const checked = plan.lock.entries.filter(e => e.checksum).length;
      return `yarn.lock (Yarn 2+): ${plural(plan.lock.entries.length, 'package')}, ${checked} with a sha512 checksum (the rest have os/cpu conditions: Yarn writes none for them)`;
    }
    const {requirements} = plan;
    const entries = requirements.reduce((sum, req) => sum + req.keys.length, 0);
    return `yarn.lock: ${plural(requirements.length, 'artifact')} for ${plural(entries, 'lockfile entry', 'lockfile entries')}, each with resolved and a sha512 integrity`;
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
  if (install?.type === 'uv' || install?.type === 'poetry') {
    const reqs = await readLockRequirements(releaseDir, install);
    return `${install.lockfile}: ${plural(reqs.length, 'package')} the app needs${install.dev ? ' (with dev groups)' : ''}, each from an allowed index with every file hashed`;
  }
  return 'no npm, pnpm, yarn, pip, uv or poetry install declared';
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
