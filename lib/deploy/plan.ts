import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fetchChangeset, sourcesFrom} from './changeset.js';
import type {DeployOptions} from './deploy.js';
import type {Deps} from '../support/deps.js';
import {UsageError} from '../support/errors.js';
import {planPrune, prunePolicy} from '../node/lifecycle.js';
import {readNodeSettings} from '../node/settings.js';
import {ReleaseStore} from '../node/release-store.js';
import {formatLocation, parseRepoLocation} from '../git/location.js';

export type DeployPlan = {
  root: string;
  releaseId: string;
  current: string | null;
  app: {url: string; rev: string; sha: string};
  vendor: {url: string; sha: string} | null;
  install: string | null;
  shared: string[];
  hooks: string[];
  healthcheck: string | null;
  prune: string[];
};

/**
 * `deploy --dry-run`: what a deploy would do, and nothing else. The rev is resolved and the pinned
 * vendor commit fetched into a scratch directory, so the node root is not changed by a single byte.
 */
export async function planDeploy(options: DeployOptions, deps: Deps): Promise<DeployPlan> {
  const root = path.resolve(deps.cwd, options.root);
  const releases = new ReleaseStore(root);
  const current = await releases.current();
  const settings = await readNodeSettings(root);
  const repoSpec = options.repo ?? settings.repo;
  if (!repoSpec)
    throw new UsageError(`No app repository is known for ${root}.`, 'Give --repo <url|path>.');
  const location = parseRepoLocation(repoSpec, {cwd: deps.cwd, what: 'app repository'});
  const vendorSpec = options.vendorRepo ?? settings.vendorRepo;
  const vendorOverride = vendorSpec
    ? parseRepoLocation(vendorSpec, {cwd: deps.cwd, what: 'vendor repository'})
    : undefined;
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-plan-'));
  try {
    const sources = sourcesFrom(deps, [location, vendorOverride]);
    const {resolved, settings: appSettings} = await fetchChangeset(
      path.join(scratch, 'repos'),
      location,
      options.rev,
      vendorOverride,
      sources,
    );
    const pin = appSettings.pin;
    const releaseId = await releases.newId(deps.clock(), resolved.sha, options.releaseId);
    const config = appSettings.config;
    // After the switch, the current release becomes a rollback target and the new one current.
    const list = (await releases.list()).map(r =>
      r.id === current && r.meta ? {...r, meta: {...r.meta, state: 'retired' as const}} : r,
    );
    const {remove} = planPrune(list, releaseId, await prunePolicy(root));
    const install = config.install;
    return {
      root,
      releaseId,
      current: current ?? null,
      app: {url: formatLocation(location), rev: options.rev, sha: resolved.sha},
      vendor: pin ? {url: formatLocation(pin.location), sha: pin.sha} : null,
      install: install
        ? install.type === 'command'
          ? install.command.join(' ')
          : install.type
        : null,
      shared: config.shared ?? [],
      hooks: Object.entries(config.hooks ?? {}).map(([name, argv]) => `${name}: ${argv.join(' ')}`),
      healthcheck: config.healthcheck
        ? 'url' in config.healthcheck
          ? config.healthcheck.url
          : config.healthcheck.command.join(' ')
        : null,
      prune: remove.map(r => r.id),
    };
  } finally {
    await fsp.rm(scratch, {recursive: true, force: true});
  }
}

export function formatPlan(plan: DeployPlan): string {
  return `${[
    `dry run: nothing was changed in ${plan.root}`,
    `  would build releases/${plan.releaseId}`,
    `  app     ${plan.app.sha} (${plan.app.rev}) from ${plan.app.url}`,
    `  vendor  ${plan.vendor ? `${plan.vendor.sha} from ${plan.vendor.url}` : 'none'}`,
    `  install ${plan.install ?? 'nothing'}`,
    ...(plan.shared.length > 0 ? [`  shared  ${plan.shared.join(', ')}`] : []),
    ...plan.hooks.map(h => `  hook    ${h}`),
    ...(plan.healthcheck ? [`  health  ${plan.healthcheck}`] : []),
    `  switch  current -> releases/${plan.releaseId}${plan.current ? ` (now ${plan.current})` : ''}`,
    `  prune   ${plan.prune.length > 0 ? plan.prune.join(', ') : 'nothing'}`,
  ].join('\n')}\n`;
}
