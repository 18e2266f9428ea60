import {promises as fsp} from 'node:fs';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import type {Deps} from '../support/deps.js';
import {ConfigError, DeployError, describeError, UsageError} from '../support/errors.js';
import {appendHistory} from './history.js';
import {removeLeftovers} from './leftovers.js';
import {withLock} from './lock.js';
import {runningRecord} from './run-logged.js';
import {readNodeSettings} from './settings.js';
import {stopRecordedChild} from './processes.js';
import {installLog} from './layout.js';
import {ReleaseStore, type ReleaseInfo, type ReleaseState} from './release-store.js';

/** States a release can be switched back to. */
// protection R5-targets: rollback skips failed and bad releases
const ROLLBACK_TARGETS: ReleaseState[] = ['retired', 'ready'];

export type PrunePolicy = {keep: number; keepFailed: number};
export const DEFAULT_PRUNE: PrunePolicy = {keep: 5, keepFailed: 2};

/**
 * Bring the root back to a known state after a run that was killed: releases left `building`
 * are marked `failed` (kept as evidence, never switched to); a release a killed run was still
 * making (lib/node/release-store.ts create) is removed; so are the directories a killed prune or lock
 * takeover had renamed aside to delete (lib/node/leftovers.ts). A directory whose metadata this version
 * cannot read, or that has none, is left as it is. `current`'s target is never touched. Called
 * only under the root's lock.
 */
export async function recoverInterrupted(store: ReleaseStore): Promise<string[]> {
  const current = await store.current();
  const recovered = await removeLeftovers(store.root);
  await store.removeStaged();
  for (const release of await store.list()) {
    if (release.id === current) continue;
    // protection R39-keep-unreadable: a release whose metadata cannot be read is kept
    // protection R1-building: a release a killed run left building is marked failed by the next run
    if (release.meta?.state === 'building') {
      // A run killed mid-install leaves its installer (or hook) running, still writing here.
      // protection R1-stop-child: the installer a killed run left running is stopped first
      await stopRecordedChild(runningRecord(installLog(release.dir)));
      await store.markFailed(release.id, {
        error: 'interrupted: the run that was building this release did not finish',
        finishedAt: new Date().toISOString(),
      });
      recovered.push(release.id);
    }
  }
  return recovered;
}

/**
 * Most recent first, by the node's own order of events (lib/node/release-store.ts `seq`, `liveSeq`):
 * the release live last, or made last, comes first, whatever the clock said at the time or how
 * the ids sort. Releases made before that order was recorded come after, by recorded time.
 */
function newestFirst(releases: ReleaseInfo[]): ReleaseInfo[] {
  // protection R38-recency: the node's recorded order of events decides, not release times or ids
  const recency = (r: ReleaseInfo) => Math.max(r.meta?.seq ?? 0, r.meta?.liveSeq ?? 0);
  // protection R6-order: releases most recent first, by their recorded order
  return [...releases].sort(
    (a, b) =>
      recency(b) - recency(a) ||
      (b.meta?.createdAt ?? '').localeCompare(a.meta?.createdAt ?? '') ||
      b.id.localeCompare(a.id),
  );
}

/**
 * Which releases a prune removes: failed and bad ones beyond `keepFailed` first, then good ones
 * beyond the newest `keep` that can be rolled back to. Never `current`, never the last good
 * release, never one that is still building.
 */
export function planPrune(
  releases: ReleaseInfo[],
  current: string | undefined,
  policy: PrunePolicy,
) {
  const sorted = newestFirst(releases);
  const lastGood = sorted.find(
    r => r.id !== current && r.meta && ROLLBACK_TARGETS.includes(r.meta.state),
  );
  const protectedIds = new Set(
    [current, lastGood?.id].filter((id): id is string => id !== undefined),
  );
  const failed = sorted.filter(
    r => r.meta && (r.meta.state === 'failed' || r.meta.state === 'bad') && !protectedIds.has(r.id),
  );
  const good = sorted.filter(
    r => r.meta && ROLLBACK_TARGETS.includes(r.meta.state) && r.id !== current,
  );
  const remove = [
    ...failed.slice(policy.keepFailed),
    ...good.slice(policy.keep).filter(r => !protectedIds.has(r.id)),
  ];
  return {remove, lastGood: lastGood?.id};
}

export type PruneResult = {
  removed: string[];
  kept: string[];
  /** Kept because their release.json cannot be read by this version: id and why. */
  unreadable: {id: string; why: string}[];
  /** Directories of releases/ without metadata: kept unless `removeUnknown` was asked for. */
  unknown: string[];
  dryRun: boolean;
};

async function pruneLocked(
  store: ReleaseStore,
  policy: PrunePolicy,
  dryRun: boolean,
  removeUnknown = false,
): Promise<PruneResult> {
  const releases = await store.list();
  const current = await store.current();
  const unknown = releases.filter(r => !r.meta && r.unreadable === undefined && r.id !== current);
  const remove = [
    ...planPrune(releases, current, policy).remove,
    ...(removeUnknown ? unknown : []),
  ];
  if (!dryRun) {
    for (const release of remove) {
      // Renamed out of releases/ first, so a half-removed release is never listed as one.
      const aside = path.join(store.releasesDir, `.pruning-${release.id}`);
      await fsp.rename(release.dir, aside);
      await fse.remove(aside);
    }
  }
  const removed = new Set(remove.map(r => r.id));
  return {
    removed: [...removed],
    kept: releases.filter(r => !removed.has(r.id)).map(r => r.id),
    unreadable: releases.flatMap(r => (r.unreadable ? [{id: r.id, why: r.unreadable}] : [])),
    unknown: unknown.filter(r => !removed.has(r.id)).map(r => r.id),
    dryRun,
  };
}

/** The node's prune policy: node.json `keepReleases` / `keepFailed`, else the defaults. */
export async function prunePolicy(root: string, keep?: number): Promise<PrunePolicy> {
  const settings = await readNodeSettings(root);
  return {
    keep: keep ?? settings.keepReleases ?? DEFAULT_PRUNE.keep,
    keepFailed: settings.keepFailed ?? DEFAULT_PRUNE.keepFailed,
  };
}

/** Prune under an already held lock (after a deploy). */
export function pruneHeld(store: ReleaseStore, policy: PrunePolicy): Promise<PruneResult> {
  return pruneLocked(store, policy, false);
}

/** `deploy prune`: remove old releases by the policy, under the root's lock. */
export async function prune(
  options: {
    root: string;
    keep?: number | undefined;
    dryRun?: boolean;
    /** Also remove the directories of releases/ that have no metadata at all. */
    removeUnknown?: boolean;
  },
  deps: Deps,
): Promise<PruneResult> {
  const root = path.resolve(deps.cwd, options.root);
  if (options.keep !== undefined && !(Number.isInteger(options.keep) && options.keep >= 1)) {
    throw new UsageError('--keep must be a whole number of at least 1.');
  }
  const store = new ReleaseStore(root);
  return withLock(root, {user: deps.identity.user, command: 'deploy prune'}, async () => {
    if (!options.dryRun) await recoverInterrupted(store);
    const result = await pruneLocked(
      store,
      await prunePolicy(root, options.keep),
      options.dryRun ?? false,
      options.removeUnknown,
    );
    if (!options.dryRun) {
      await appendHistory(root, {
        time: deps.clock().toISOString(),
        command: 'prune',
        user: deps.identity.user,
        host: deps.identity.host,
        outcome: 'success',
        pruned: result.removed,
      });
    }
    return result;
  });
}

export type RollbackResult = {from: string; to: string; reason: string; dryRun: boolean};

/**
 * `deploy rollback`: switch `current` to the newest earlier release that was live and good (or the
 * one `to` names: a release id or an app rev), and mark the release left as `bad` with the reason.
 */
export async function rollback(
  options: {root: string; to?: string | undefined; reason?: string | undefined; dryRun?: boolean},
  deps: Deps,
): Promise<RollbackResult> {
  const root = path.resolve(deps.cwd, options.root);
  const store = new ReleaseStore(root);
  const base = {command: 'rollback', user: deps.identity.user, host: deps.identity.host};
  return withLock(root, {user: deps.identity.user, command: 'deploy rollback'}, async () => {
    try {
      const current = await store.current();
      if (!current) throw new ConfigError(`${root} has no current release to roll back from.`);
      const target = pickRollbackTarget(await store.list(), current, options.to);
      const reason = options.reason ?? `rolled back to ${target.id}`;
      const result = {from: current, to: target.id, reason, dryRun: options.dryRun ?? false};
      if (options.dryRun) return result;
      await store.switchTo(target.id);
      await store.setState(target.id, 'live');
      await store.setState(current, 'bad', {error: reason});
      await appendHistory(root, {
        ...base,
        time: deps.clock().toISOString(),
        outcome: 'success',
        releaseId: target.id,
        previousReleaseId: current,
        reason,
      });
      return result;
    } catch (error) {
      if (!options.dryRun) {
        await appendHistory(root, {
          ...base,
          time: deps.clock().toISOString(),
          outcome: 'failure',
          error: {
            code: error instanceof DeployError ? error.code : 'EINTERNAL',
            message: describeError(error),
          },
        }).catch(() => undefined);
      }
      throw error;
    }
  });
}

function pickRollbackTarget(
  releases: ReleaseInfo[],
  current: string,
  to: string | undefined,
): ReleaseInfo {
  const sorted = newestFirst(releases);
  if (to === undefined) {
    // A retired release was live before the current one went live: the most recent such one.
    const target = sorted.find(r => r.id !== current && r.meta?.state === 'retired');
    if (!target) {
      throw new ConfigError(
        `No earlier release that was live and good is left to roll back to from ${current}.`,
        'Deploy a known good rev instead: deploy --rev <rev>.',
      );
    }
    return target;
  }
  const byId = sorted.find(r => r.id === to);
  const candidates = byId
    ? [byId]
    : sorted.filter(
        r => r.meta && (r.meta.app.sha.startsWith(to.toLowerCase()) || r.meta.app.requested === to),
      );
  if (candidates.length === 0) {
    throw new ConfigError(
      `No release ${to} on this node (it may have been pruned).`,
      `Deploy it again instead: deploy --rev ${to}.`,
    );
  }
  const usable = candidates.find(
    r => r.id !== current && r.meta && ROLLBACK_TARGETS.includes(r.meta.state),
  );
  if (!usable) {
    const states = candidates
      .map(r => `${r.id} is ${r.id === current ? 'current' : (r.meta?.state ?? 'incomplete')}`)
      .join(', ');
    throw new ConfigError(
      `Cannot roll back to ${to}: ${states}.`,
      `Only a complete release that was not marked bad can be switched to; deploy it again with deploy --rev ${to}.`,
    );
  }
  return usable;
}
