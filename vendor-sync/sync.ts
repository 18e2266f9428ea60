import type {SshSigner} from '../lib/signing/ssh-sign.js';
import type {Writable} from 'node:stream';
import type {HttpClient} from 'isomorphic-git';
import {plural} from '../lib/support/format.js';
import {UsageError} from '../lib/support/errors.js';
import type {Credentials} from '../lib/git/remote.js';
import type {Platform} from '../lib/pins/npm-lockfile.js';
import {formatLocation, parseRepoLocation} from '../lib/git/location.js';
import {phaseLine, type Reporter} from '../lib/support/reporter.js';
import {applyPlan} from './apply.js';
import type {Http} from './http.js';
import {readAppNeeds} from './needs.js';
import {updatePin} from './pin.js';
import {changeSummary, makePlan, type Change, type Plan, type Upstreams} from './plan.js';
import {createProgress} from './progress.js';
import {
  commitMessage,
  openOrUpdatePullRequest,
  pullRequestBody,
  type PullRequestResult,
} from './pull-request.js';
import {
  checkPushTarget,
  commitVendor,
  headCommit,
  openVendorRepo,
  pushVendor,
  type PushTarget,
  type VendorRepo,
} from './vendor-repo.js';

export type SyncOptions = {
  app: string;
  rev?: string | undefined;
  vendor: string;
  keepUnused: boolean;
  dryRun: boolean;
  push: boolean;
  updatePin: boolean;
  pr: {repo: string; branch: string; base: string} | undefined;
  platforms: Platform[];
  concurrency: number;
};

export type SyncDeps = {
  http: Http;
  gitHttp: HttpClient;
  gitCredentials: Credentials | undefined;
  upstreams: Omit<Upstreams, 'npmRegistries'>;
  reporter: Reporter;
  progressStream: Writable & {isTTY?: boolean};
  cwd: string;
  clock: () => Date;
  author: {name: string; email: string};
  /** Signs each vendor commit (`--signing-key`), as git does with user.signingkey. */
  signer?: SshSigner | undefined;
};

export type SyncResult = {
  dryRun: boolean;
  appSha: string | null;
  changes: Change[];
  downloads: number;
  kept: number;
  vendorCommit: string | null;
  pushed: boolean;
  pin: 'deploy.json' | 'submodule' | null;
  pullRequest: PullRequestResult | null;
};

/**
 * `vendor-sync`: bring the vendor repository in line with what the app needs at a changeset.
 * Downloads only what is missing, verified against the app's pinned hashes; removes what nothing
 * needs; commits with a message listing every change; optionally pushes, opens or updates a pull
 * request, and writes the new vendor commit into the app's pin.
 */
export async function vendorSync(options: SyncOptions, deps: SyncDeps): Promise<SyncResult> {
  if (options.updatePin && parseRepoLocation(options.app, {cwd: deps.cwd}).kind !== 'path') {
    throw new UsageError('--update-pin writes into the app work tree: give --app as a local path.');
  }
  const app = await readNeeds(options, deps);
  const repo = await openVendorRepo({
    vendor: options.vendor,
    cwd: deps.cwd,
    http: deps.gitHttp,
    credentials: deps.gitCredentials,
  });
  try {
    const plan = await comparePlan(app, repo, options, deps);
    try {
      return await carryOut(plan, app, repo, options, deps);
    } finally {
      await plan.dispose();
    }
  } finally {
    await repo.cleanup();
  }
}

/** Commit, push, open a pull request and pin, as the options ask (or report, for --dry-run). */
async function carryOut(
  plan: Plan,
  app: AppNeeds,
  repo: VendorRepo,
  options: SyncOptions,
  deps: SyncDeps,
): Promise<SyncResult> {
  {
    const result: SyncResult = {
      dryRun: options.dryRun,
      appSha: app.sha ?? null,
      changes: plan.changes,
      downloads: plan.download.length,
      kept: plan.keep.length,
      vendorCommit: null,
      pushed: false,
      pin: null,
      pullRequest: null,
    };
    if (options.dryRun) return result;
    // The push target is checked before anything is committed: a commit that cannot be pushed
    // would have to be undone by hand.
    const target =
      options.push || options.pr
        ? await deps.reporter.phase('check push target', () => pushTarget(repo, options, deps))
        : undefined;
    const commit = await applyAndCommit(plan, app.sha, repo.dir, options, deps);
    result.vendorCommit = commit ?? (await headCommit(repo.dir)) ?? null;
    deps.reporter.info(
      commit
        ? `committed ${commit} to the vendor repository`
        : 'vendor repository already up to date: no commit',
    );
    if (target && result.vendorCommit)
      result.pushed = await push(repo, target, result, options, deps);
    if (options.pr && commit)
      result.pullRequest = await pullRequest(plan, app.sha, options.pr, deps);
    if (options.updatePin && result.vendorCommit) result.pin = await pin(result, options, deps);
    return result;
  }
}

type AppNeeds = Awaited<ReturnType<typeof readAppNeeds>>;

async function readNeeds(options: SyncOptions, deps: SyncDeps): Promise<AppNeeds> {
  return deps.reporter.phase(
    'read the app',
    () =>
      readAppNeeds({
        app: options.app,
        rev: options.rev,
        cwd: deps.cwd,
        http: deps.gitHttp,
        credentials: deps.gitCredentials,
        platforms: options.platforms,
      }),
    app =>
      `${plural(app.needs.length, 'artifact')} for ${plural(app.entries, 'lockfile entry', 'lockfile entries')}, needed by ${app.sha ? `app ${app.sha}` : 'the app work tree'}`,
  );
}

async function comparePlan(
  app: AppNeeds,
  repo: VendorRepo,
  options: SyncOptions,
  deps: SyncDeps,
): Promise<Plan> {
  const plan = await deps.reporter.phase(
    'compare vendor',
    () =>
      makePlan({
        vendorDir: repo.dir,
        needs: app.needs,
        http: deps.http,
        upstreams: {...deps.upstreams, npmRegistries: app.npmRegistries},
        keepUnused: options.keepUnused,
        berry: app.berry,
      }),
    found =>
      `${found.keep.length} already vendored and verified; ${found.download.length} to download; ${found.remove.length} to remove`,
  );
  // One line per artifact only with --verbose: a lockfile update can change hundreds.
  for (const line of describePlan(plan.changes)) deps.reporter.detail(line);
  return plan;
}

async function push(
  repo: VendorRepo,
  target: PushTarget,
  result: SyncResult,
  options: SyncOptions,
  deps: SyncDeps,
): Promise<boolean> {
  const where = formatLocation(target.location);
  await deps.reporter.phase(
    'push',
    () =>
      pushVendor({
        dir: repo.dir,
        target,
        force: options.pr !== undefined,
        http: deps.gitHttp,
        credentials: deps.gitCredentials,
      }),
    outcome =>
      outcome === 'up to date'
        ? `${target.remoteRef} of ${where} is already at ${result.vendorCommit ?? ''}: nothing pushed`
        : `${target.remoteRef} of ${where}`,
  );
  return true;
}

async function pullRequest(
  plan: Plan,
  appSha: string | undefined,
  pr: NonNullable<SyncOptions['pr']>,
  deps: SyncDeps,
): Promise<PullRequestResult> {
  const appRef = appSha?.slice(0, 12);
  return deps.reporter.phase(
    'pull request',
    () =>
      openOrUpdatePullRequest(deps.upstreams.github(), {
        repo: pr.repo,
        branch: pr.branch,
        base: pr.base,
        title: commitMessage(plan.changes, appRef).split('\n')[0] ?? 'vendor-sync',
        body: pullRequestBody(plan.changes, appRef),
      }),
    done => `#${done.number} on ${pr.repo} ${done.created ? 'opened' : 'updated'}: ${done.url}`,
  );
}

/** `--update-pin`: the new vendor commit written into the app work tree's pin. */
async function pin(
  result: SyncResult,
  options: SyncOptions,
  deps: SyncDeps,
): Promise<SyncResult['pin']> {
  const commit = result.vendorCommit ?? '';
  const appDir = (parseRepoLocation(options.app, {cwd: deps.cwd}) as {path: string}).path;
  const pinned = await updatePin(appDir, commit);
  deps.reporter.info(
    `pinned vendor ${commit} in the app (${pinned}); commit it with the app change`,
  );
  if (!result.pushed)
    deps.reporter.warn(
      'the new vendor commit is not pushed yet: nodes cannot fetch it until it is',
    );
  return pinned;
}

/** The checked push target: the `--pr` branch, or the work tree's branch on its `origin`. */
async function pushTarget(
  repo: VendorRepo,
  options: SyncOptions,
  deps: SyncDeps,
): Promise<PushTarget> {
  if (!repo.pushUrl) {
    throw new UsageError(
      'The vendor work tree has no "origin" remote to push to.',
      'Add one with git remote add origin <url or path>.',
    );
  }
  return checkPushTarget({
    dir: repo.dir,
    url: repo.pushUrl,
    remoteRef: options.pr ? `refs/heads/${options.pr.branch}` : undefined,
    http: deps.gitHttp,
    credentials: deps.gitCredentials,
  });
}

/**
 * Download, move into place and commit; a failure at any point (the commit too) puts the work
 * tree and its index back as they were. The new commit, or undefined when nothing changed.
 */
async function applyAndCommit(
  plan: Plan,
  appSha: string | undefined,
  dir: string,
  options: SyncOptions,
  deps: SyncDeps,
): Promise<string | undefined> {
  const applied = await download(plan, dir, options, deps);
  let commit: string | undefined;
  try {
    commit = await commitVendor({
      dir,
      added: plan.download.map(d => d.path),
      removed: plan.remove.map(r => r.path),
      message: commitMessage(plan.changes, appSha?.slice(0, 12)),
      author: deps.author,
      now: deps.clock(),
      signer: deps.signer,
    });
  } catch (error) {
    await applied.undo();
    throw error;
  }
  await applied.finish();
  return commit;
}

/**
 * Download and verify what the plan adds, with one line saying so. On a terminal the download
 * has its own progress bar, so it is no reporter phase (whose spinner would draw over the bar);
 * elsewhere it is one, and its per-artifact lines come under it with --verbose.
 */
async function download(plan: Plan, dir: string, options: SyncOptions, deps: SyncDeps) {
  const apply = () =>
    applyPlan({
      vendorDir: dir,
      plan,
      http: deps.http,
      concurrency: options.concurrency,
      progress: createProgress(deps.progressStream, plan.download.length, 'download'),
    });
  if (plan.download.length === 0) return apply();
  const summary = `${plural(plan.download.length, 'artifact')} verified against the app's hashes`;
  if (!deps.progressStream.isTTY) return deps.reporter.phase('download', apply, () => summary);
  const started = deps.clock().getTime();
  const applied = await apply();
  deps.reporter.info(phaseLine('download', summary, deps.clock().getTime() - started));
  return applied;
}

const VERBS = {added: 'add', updated: 'update', removed: 'remove', restored: 'restore'} as const;

export function describePlan(changes: Change[]): string[] {
  return changes.map(change => {
    const {artifact, versions} = changeSummary(change);
    return `${VERBS[change.kind].padEnd(7)} ${artifact.ecosystem} ${artifact.name} ${versions}`;
  });
}
