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

export type PlanRefusal = {reason: SignatureError['reason']; message: string; hint: string | null};

export type DeployPlan = {
  root: string;
  /** False when the changeset is already live: a deploy would do nothing (`releaseId` is it). */
  changed: boolean;
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
 * (lib/deploy/deploy.ts), each adding its part to the plan. The rev is resolved and the pinned
 * vendor commit fetched into a scratch directory, so the node root is not changed by a single byte.
 */
export async function planDeploy(options: DeployOptions, deps: Deps): Promise<DeployPlan> {
  const root = path.resolve(deps.cwd, options.root);
  const plan: DeployPlan = {
    root,
    changed: true,
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
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-plan-'));
  try {
    const run = newRun(options, deps, {plan, reposDir: path.join(scratch, REPOS_DIR)});
    await planSteps(run, DEPLOY_STEPS, plan);
    return plan;
  } finally {
    await fse.remove(scratch);
  }
}

export function formatPlan(plan: DeployPlan): string {
  if (!plan.changed) {
    return `${[
      `dry run: nothing was changed in ${plan.root}`,
      `  already live: releases/${plan.releaseId} is ${plan.app.sha} (${plan.app.rev})`,
      '  a deploy would do nothing (--force deploys it again)',
    ].join('\n')}\n`;
  }
  return `${[
    `dry run: nothing was changed in ${plan.root}`,
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
