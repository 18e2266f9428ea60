import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import {describeSigner, type RecordedSigners} from '../signing/recorded.js';
import type {Deps} from '../support/deps.js';
import type {SignatureError} from '../support/errors.js';
import {REPOS_DIR} from '../node/layout.js';
import {DEPLOY_STEPS} from './deploy.js';
import {newRun, type DeployOptions} from './run.js';
import {planSteps} from './runner.js';
import {NotInStore} from './store-only.js';

export type PlanRefusal = {reason: SignatureError['reason']; message: string; hint: string | null};

export type DeployPlan = {
  root: string;
  /** False when the changeset is already live: a deploy would do nothing (`releaseId` is it). */
  changed: boolean;
  /**
   * Where the commits were read: the node's own stores (`node`: they held them, nothing was
   * fetched), or a scratch directory they were fetched into (`scratch`), removed afterwards.
   */
  stores: 'node' | 'scratch';
  releaseId: string;
  current: string | null;
  app: {url: string; rev: string; sha: string};
  vendor: {url: string; sha: string} | null;
  /** With a signing policy: who signed, or why the deploy would be refused (exit 14). */
  signatures: RecordedSigners | {refused: PlanRefusal} | null;
  install: string | null;
  shared: string[];
  hooks: string[];
  healthcheck: string | null;
  prune: string[];
};

/**
 * `deploy --dry-run`: what a deploy would do, and nothing else: the deploy's own steps
 * (lib/deploy/deploy.ts), each adding its part to the plan. The rev is resolved against the node's
 * own stores, read only, when they hold the commits; otherwise the commits are fetched into a
 * scratch directory. Either way the node root is not changed by a single byte.
 */
export async function planDeploy(options: DeployOptions, deps: Deps): Promise<DeployPlan> {
  const fromStores = await planOn(options, deps, undefined).catch((error: unknown) => {
    if (error instanceof NotInStore) return undefined;
    throw error;
  });
  if (fromStores) return fromStores;
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-plan-'));
  try {
    return await planOn(options, deps, path.join(scratch, REPOS_DIR));
  } finally {
    await fse.remove(scratch);
  }
}

/** The plan with the stores in `reposDir` (fetched into), or the node's own (read only). */
async function planOn(
  options: DeployOptions,
  deps: Deps,
  reposDir: string | undefined,
): Promise<DeployPlan> {
  const plan: DeployPlan = {
    root: path.resolve(deps.cwd, options.root),
    changed: true,
    stores: reposDir ? 'scratch' : 'node',
    releaseId: '',
    current: null,
    app: {url: '', rev: options.rev, sha: ''},
    vendor: null,
    signatures: null,
    install: null,
    shared: [],
    hooks: [],
    healthcheck: null,
    prune: [],
  };
  const run = newRun(options, deps, reposDir ? {plan, reposDir} : {plan, storeOnly: true});
  await planSteps(run, DEPLOY_STEPS, plan);
  return plan;
}

export function formatPlan(plan: DeployPlan): string {
  if (!plan.changed) {
    return `${[
      `dry run: nothing was changed in ${plan.root}`,
      `  from    ${describeStores(plan)}`,
      `  already live: releases/${plan.releaseId} is ${plan.app.sha} (${plan.app.rev})`,
      '  a deploy would do nothing (--force deploys it again)',
    ].join('\n')}\n`;
  }
  return `${[
    `dry run: nothing was changed in ${plan.root}`,
    `  from    ${describeStores(plan)}`,
    `  would build releases/${plan.releaseId}`,
    `  app     ${plan.app.sha} (${plan.app.rev}) from ${plan.app.url}`,
    `  vendor  ${plan.vendor ? `${plan.vendor.sha} from ${plan.vendor.url}` : 'none'}`,
    ...formatSignatures(plan.signatures),
    `  install ${plan.install ?? 'nothing'}`,
    ...(plan.shared.length > 0 ? [`  shared  ${plan.shared.join(', ')}`] : []),
    ...plan.hooks.map(h => `  hook    ${h}`),
    ...(plan.healthcheck ? [`  health  ${plan.healthcheck}`] : []),
    `  switch  current -> releases/${plan.releaseId}${plan.current ? ` (now ${plan.current})` : ''}`,
    `  prune   ${plan.prune.length > 0 ? plan.prune.join(', ') : 'nothing'}`,
  ].join('\n')}\n`;
}

function describeStores(plan: DeployPlan): string {
  return plan.stores === 'node'
    ? "the node's stores (they hold the commits; nothing fetched)"
    : 'a scratch fetch (the node does not hold the commits yet)';
}

function formatSignatures(signatures: DeployPlan['signatures']): string[] {
  if (!signatures) return [];
  if ('refused' in signatures) {
    const {message, hint} = signatures.refused;
    return [`  signed  REFUSED: ${message}${hint ? ` ${hint}` : ''}`];
  }
  return [
    `  signed  app: ${describeSigner(signatures.app)}`,
    ...(signatures.vendor ? [`  signed  vendor: ${describeSigner(signatures.vendor)}`] : []),
  ];
}
