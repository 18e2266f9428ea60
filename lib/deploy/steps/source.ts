import path from 'node:path';
import {extractBundle, verifyBundle} from '../../bundle/bundle.js';
import {resolveBundlePin} from '../../bundle/pin.js';
import {formatLocation} from '../../git/location.js';
import {readNodeSettings, writeNodeSettings} from '../../node/settings.js';
import {throwIfInterrupted} from '../../node/processes.js';
import {UsageError} from '../../support/errors.js';
import {detailsOnly} from '../../support/reporter.js';
import {
  changesetLocations,
  fetchVendor,
  readApp,
  resolveApp,
  sourcesFrom,
  type ChangesetLocations,
} from '../changeset.js';
import {known, type DeployRun, type FetchedApp, type ReleaseSource} from '../run.js';
import type {Step} from '../runner.js';
import {previousRelease} from '../previous-files.js';
import {writeTreesInTwo} from '../writer.js';

const fromGit = (run: DeployRun) => !run.options.bundle;
const fromBundle = (run: DeployRun) => run.options.bundle !== undefined;

/**
 * A bundle is read and checked whole, against the node's pin (or its explicit lack of one), before
 * the lock is taken or anything in the root is touched: reading it changes nothing.
 */
export const verifyBundleStep: Step = {
  name: 'verify the bundle',
  stage: 'unlocked',
  when: fromBundle,
  async run(run) {
    const file = run.options.bundle ?? '';
    const {deps} = run;
    const full = path.resolve(deps.cwd, file);
    const pin = await resolveBundlePin(run.options.bundlePin ?? {}, full, deps.cwd);
    if (!pin)
      deps.reporter.warn(
        `${file} is not pinned (--insecure-unpinned-bundle): only its own checksums are checked`,
      );
    run.bundle = await deps.reporter.phase(
      'verify bundle',
      () => verifyBundle(full, pin),
      () => `${file}${pin ? ` matches ${pin.from}` : ''}`,
    );
  },
};

/** The release route: the changeset is what the verified bundle holds. */
export const bundleSource: Step = {
  name: 'read the bundle',
  stage: 'locked',
  when: fromBundle,
  run(run) {
    const bundle = known(run, 'bundle');
    const none = {fetched: false, objects: 0, bytes: 0};
    run.appSha = bundle.meta.app.sha;
    if (bundle.meta.vendor) run.vendorSha = bundle.meta.vendor.sha;
    run.source = {
      app: {...bundle.meta.app, fetch: none},
      vendor: bundle.meta.vendor ? {...bundle.meta.vendor, fetch: none} : null,
      settings: bundle.settings,
      write: async dir => {
        await extractBundle(bundle, dir);
        return undefined;
      },
    };
    return Promise.resolve();
  },
};

/** Resolve the rev in the app repository, fetch that commit, and read deploy.json from it. */
export const resolveAppStep: Step = {
  name: 'resolve the app',
  stage: 'locked',
  when: fromGit,
  async run(run) {
    const locations = await nodeLocations(run);
    const sources = {
      ...sourcesFrom(run.deps, [locations.app, locations.vendorOverride]),
      storeOnly: run.storeOnly,
    };
    const {store, resolved} = await resolveApp(
      run.reposDir,
      locations.app,
      run.options.rev,
      sources,
    );
    run.appSha = resolved.sha;
    const app = await readApp(store, resolved.sha, locations.app, locations.vendorOverride);
    if (app.settings.pin) run.vendorSha = app.settings.pin.sha;
    run.fetched = {locations, sources, store, resolved, ...app};
  },
  async dryRun(run, plan) {
    await resolveAppStep.run(run);
    const {locations, resolved} = known(run, 'fetched');
    plan.app = {url: formatLocation(locations.app), rev: run.options.rev, sha: resolved.sha};
  },
};

/** Remember the repositories in node.json, so later deploys need no --repo. */
export const rememberRepos: Step = {
  name: 'remember the repositories',
  stage: 'locked',
  when: fromGit,
  async run(run) {
    const {app, vendorOverride} = known(run, 'fetched').locations;
    const settings = await readNodeSettings(run.node.root);
    const next = {
      ...settings,
      repo: formatLocation(app),
      ...(vendorOverride ? {vendorRepo: formatLocation(vendorOverride)} : {}),
    };
    if (next.repo !== settings.repo || next.vendorRepo !== settings.vendorRepo)
      await writeNodeSettings(run.node.root, next);
  },
};

/** Fetch the vendor commit the app pins; the changeset is then whole. */
export const fetchVendorStep: Step = {
  name: 'fetch the vendor commit',
  stage: 'locked',
  when: fromGit,
  async run(run) {
    const fetched = known(run, 'fetched');
    const pin = fetched.settings.pin;
    if (pin)
      fetched.vendor = await fetchVendor(run.reposDir, pin, fetched.resolved.sha, fetched.sources);
    run.source = gitSource(run, fetched);
    throwIfInterrupted('the fetch');
  },
  async dryRun(run, plan) {
    await fetchVendorStep.run(run);
    const pin = known(run, 'fetched').settings.pin;
    plan.vendor = pin ? {url: formatLocation(pin.location), sha: pin.sha} : null;
  },
};

function gitSource(run: DeployRun, fetched: FetchedApp): ReleaseSource {
  const {store, resolved, tree, vendor} = fetched;
  const app = {store, sha: resolved.sha, tree};
  return {
    app: {
      url: formatLocation(fetched.locations.app),
      requested: run.options.rev,
      sha: resolved.sha,
      fetch: resolved.fetch,
    },
    vendor: vendor
      ? {
          url: formatLocation(vendor.pin.location),
          sha: vendor.pin.sha,
          source: vendor.pin.source,
          fetch: vendor.fetch,
        }
      : null,
    settings: fetched.settings,
    tree,
    write: async (dir, first) => {
      const previous = await previousRelease(run.releases, run.previous);
      // The file counts of the trees written are detail of the write and install lines.
      const reporter = detailsOnly(run.deps.reporter);
      const rest = await writeTreesInTwo(dir, app, vendor, reporter, first ?? new Set(), {
        record: true,
        previous,
      });
      if (first) return rest;
      await rest();
      return undefined;
    },
  };
}

/** The app repository and vendor mirror: from the options, else what the node remembers. */
async function nodeLocations(run: DeployRun): Promise<ChangesetLocations> {
  const settings = await readNodeSettings(run.node.root);
  return changesetLocations(
    {
      repo: run.options.repo ?? settings.repo,
      vendorRepo: run.options.vendorRepo ?? settings.vendorRepo,
    },
    run.deps.cwd,
    () =>
      new UsageError(
        `No app repository is known for ${run.node.root}.`,
        'Give --repo <url|path> on the first deploy; later deploys reuse it.',
      ),
  );
}
