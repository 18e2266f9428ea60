import {promises as fsp} from 'node:fs';
import {DEPLOY_JSON, parseDeployConfig} from '../../pins/deploy-config.js';
import {installLog} from '../../node/layout.js';
import {throwIfInterrupted} from '../../node/processes.js';
import {describeError} from '../../support/errors.js';
import path from 'node:path';
import {hookEnvironment, runHealthcheck, runHook} from '../hooks.js';
import {known, type DeployRun} from '../run.js';
import type {Step} from '../runner.js';
import {hookPlace} from './release.js';

/**
 * Point current at the new release, in one rename(2) (lib/node/release-store.ts), then mark it
 * live and the one before it retired.
 */
export const switchCurrent: Step = {
  name: 'switch',
  stage: 'locked',
  async run(run) {
    const releaseId = known(run, 'releaseId');
    throwIfInterrupted(`the switch to ${releaseId}`);
    await run.deps.reporter.phase(
      'switch current',
      () => run.releases.switchTo(releaseId),
      () => `current -> ${releaseId}`,
    );
    run.switched = true;
    await run.releases.setState(releaseId, 'live');
    if (run.previous && run.previous !== releaseId)
      await run.releases.setState(run.previous, 'retired').catch(() => undefined);
  },
  undo: (run, error) => (run.switched ? switchBack(run, error) : Promise.resolve()),
};

/** The app's health check (deploy.json "healthcheck"), after the switch. */
export const healthCheck: Step = {
  name: 'health check',
  stage: 'live',
  when: run => known(run, 'source').settings.config.healthcheck !== undefined,
  async run(run) {
    const check = known(run, 'source').settings.config.healthcheck;
    if (!check) return;
    await run.deps.reporter.phase(
      'health check',
      () => runHealthcheck(check, hookPlace(run)),
      outcome => outcome,
    );
  },
  dryRun(run, plan) {
    const check = known(run, 'source').settings.config.healthcheck;
    if (check) plan.healthcheck = 'url' in check ? check.url : check.command.join(' ');
  },
};

/**
 * After a failed after_switch hook or health check: put back what was live before (running
 * its after_switch hook again, e.g. a service reload), and mark the new release bad.
 */
async function switchBack(run: DeployRun, cause: unknown): Promise<void> {
  const {previous, releases, deps} = run;
  const releaseId = known(run, 'releaseId');
  deps.reporter.warn(
    `${describeError(cause).split('\n')[0] ?? ''}: switching back${previous ? ` to ${previous}` : ''}`,
  );
  if (previous && previous !== releaseId) {
    await releases.switchTo(previous);
    await releases.setState(previous, 'live');
    const previousDir = releases.dir(previous);
    const previousHooks = await readReleaseConfig(previousDir);
    const source = known(run, 'source');
    await runHook(
      'after_switch',
      previousHooks?.hooks?.after_switch ?? source.settings.config.hooks?.after_switch,
      {
        env: hookEnvironment(deps.env, {
          releaseDir: previousDir,
          appRev: source.app.sha,
          vendorRev: source.vendor?.sha ?? null,
          previousRelease: releases.dir(releaseId),
        }),
        cwd: previousDir,
        logFile: installLog(previousDir),
      },
    ).catch((error: unknown) => {
      deps.reporter.warn(`after_switch of ${previous} failed too: ${describeError(error)}`);
    });
  } else {
    // There was no release before this one: back to no current at all.
    await fsp.rm(releases.currentLink, {force: true});
  }
  await releases.setState(releaseId, 'bad', {error: describeError(cause)});
}

/** The deploy.json a release was built from, read back from its directory. */
async function readReleaseConfig(dir: string) {
  try {
    return parseDeployConfig(await fsp.readFile(path.join(dir, DEPLOY_JSON), 'utf8'), DEPLOY_JSON);
  } catch {
    return undefined;
  }
}
