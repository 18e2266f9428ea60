import path from 'node:path';
import type {TreeFile} from '../git/export.js';
import type {FetchStats} from '../git/remote.js';
import type {ResolvedRev} from '../git/resolve.js';
import type {ReuseSpec} from '../install/reuse.js';
import type {GitStore} from '../git/store.js';
import {nodeLayout, type NodeLayout} from '../node/layout.js';
import {ReleaseStore, type ReleaseMeta} from '../node/release-store.js';
import type {AppSettings, VendorPin} from '../pins/vendor-pin.js';
import type {Deps} from '../support/deps.js';
import type {BundlePinOptions} from '../bundle/pin.js';
import type {VerifiedBundle} from '../bundle/bundle.js';
import type {ChangesetSigners} from '../signing/changeset.js';
import type {SigningPolicy} from '../signing/policy.js';
import type {ChangesetLocations, Sources, VendorCheckout} from './changeset.js';
import type {VerifiedRelease} from './install-release.js';
import type {DeployPlan} from './plan.js';
import type {ReleaseWriter} from './writer.js';

export type DeployOptions = {
  /** The node root (`--root` / DEPLOY_ROOT). */
  root: string;
  /** Full or abbreviated sha, tag or branch. */
  rev: string;
  /** App repository; remembered in the root after the first deploy. */
  repo?: string | undefined;
  /** Vendor repository URL or path that replaces the one the app pins (an internal mirror). */
  vendorRepo?: string | undefined;
  /** Release id to use instead of a generated one (the same on every host of a fleet). */
  releaseId?: string | undefined;
  /** Set the maintenance flag for the duration of the deploy; cleared once the health check passes. */
  maintenance?: boolean | undefined;
  /** Deploy from this bundle (`deploy bundle`) instead of from git; `rev` is then informational. */
  bundle?: string | undefined;
  /** What the bundle must hash to (lib/bundle/pin.ts): required with `bundle`. */
  bundlePin?: BundlePinOptions | undefined;
  /** Install from scratch even when the previous release's dependencies could be reused. */
  freshInstall?: boolean | undefined;
  /**
   * The node's signing policy file (`--signing-policy` / DEPLOY_SIGNING_POLICY, docs/signing.md):
   * when given, a changeset it does not cover is refused before anything is written.
   */
  signingPolicy?: string | undefined;
  /** Deploy even when the changeset asked for is already live (a new release of the same sha). */
  force?: boolean | undefined;
};

/** The live release, when it is already the changeset a run asks for (lib/deploy/steps/live.ts). */
export type LiveRelease = {id: string; dir: string; meta: ReleaseMeta};

/** The app commit of a release, as recorded and reported. */
export type AppSource = {url: string; requested: string; sha: string; fetch: FetchStats};
export type VendorSource = {
  url: string;
  sha: string;
  source: VendorPin['source'];
  fetch: FetchStats;
};

/**
 * Where a release's files come from: git (the repository route) or a bundle (the release route).
 * `write` writes the release whole, or with `first` only those app paths and the vendor tree,
 * returning what writes the rest (lib/deploy/writer.ts).
 */
export type ReleaseSource = {
  app: AppSource;
  vendor: VendorSource | null;
  settings: AppSettings;
  /** The app tree, when it is known before the write (from git). */
  tree?: TreeFile[];
  write: (
    releaseDir: string,
    first: ReadonlySet<string> | undefined,
  ) => Promise<(() => Promise<void>) | undefined>;
};

/** The app commit fetched from git, before its vendor pin is. */
export type FetchedApp = {
  locations: ChangesetLocations;
  sources: Sources;
  store: GitStore;
  resolved: ResolvedRev;
  tree: TreeFile[];
  settings: AppSettings;
  vendor?: VendorCheckout;
};

/**
 * One deploy: what it was asked, what it runs with, and what is known so far. Each step of the
 * pipeline (lib/deploy/deploy.ts) reads what earlier steps found and adds its own part; the
 * runner (lib/deploy/runner.ts) records the progress in the history, whatever the outcome.
 */
export type DeployRun = {
  readonly options: DeployOptions;
  readonly deps: Deps;
  readonly node: NodeLayout;
  readonly releases: ReleaseStore;
  readonly started: Date;
  /** A dry run plans: steps that would change the node describe themselves instead. */
  readonly plan: DeployPlan | undefined;
  /** Where the app and vendor stores are: the node's repos/, or a scratch directory (dry run). */
  reposDir: string;
  /** A dry run on the node's own stores: they are read, never fetched into. */
  storeOnly: boolean;
  /** The app commit and the vendor commit it pins, as soon as they are known (for the history). */
  appSha?: string;
  vendorSha?: string;
  /** Set when the changeset is already live: the run then changes nothing. */
  live?: LiveRelease;
  /** The release current was when the deploy started. */
  previous?: string | undefined;
  bundle?: VerifiedBundle;
  fetched?: FetchedApp;
  source?: ReleaseSource;
  /** The node's signing policy, when one was given (read before anything else). */
  policy?: SigningPolicy;
  /** Who signed the changeset, once the signing policy has verified it. */
  signers?: ChangesetSigners;
  releaseId?: string;
  releaseDir?: string;
  /** The environment of the release's hooks and health check. */
  hookEnv?: Record<string, string>;
  writer?: ReleaseWriter;
  verified?: VerifiedRelease;
  /** What the install's reuse record is made of, when the installer allows reuse. */
  reusable?: ReuseSpec;
  /** Set once current points at the new release. */
  switched?: boolean;
  pruned: string[];
  /** How long each step took, in the order they ran. */
  phases: Array<{step: string; ms: number}>;
};

export function newRun(
  options: DeployOptions,
  deps: Deps,
  extra: {plan?: DeployPlan; reposDir?: string; storeOnly?: boolean} = {},
): DeployRun {
  const node = nodeLayout(path.resolve(deps.cwd, options.root));
  return {
    options,
    deps,
    node,
    releases: new ReleaseStore(node.root),
    started: deps.clock(),
    plan: extra.plan,
    reposDir: extra.reposDir ?? node.repos,
    storeOnly: extra.storeOnly ?? false,
    pruned: [],
    phases: [],
  };
}

/** What an earlier step must have found: a missing one is a bug in the pipeline's order. */
export function known<K extends keyof DeployRun>(
  run: DeployRun,
  key: K,
): NonNullable<DeployRun[K]> {
  const value = run[key];
  if (value === undefined) throw new Error(`a deploy step ran before ${key} was known`);
  return value;
}
