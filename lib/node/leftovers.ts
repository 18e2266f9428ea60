import {promises as fsp} from 'node:fs';
import path from 'node:path';
import * as fse from 'fs-extra/esm';

/**
 * Directories that a run renames aside in one step so that it can then delete them (a half-deleted
 * release or lock is never taken for a whole one), and that stay behind when the run is killed
 * before the delete finishes. Only the exact names we make are matched:
 *
 *   releases/.pruning-<release id>                  prune, removing a release
 *   .lock.stale-<8 hex>, .lock.released-<8 hex>,     lock takeover, release and `deploy unlock`,
 *   .lock.broken-<8 hex>                            removing an old `.lock`
 *
 * `.lock.new-<token>` is not one of them: a run that does not hold the lock yet writes its owner
 * file there, and lib/node/lock.ts removes one only once it is old.
 */
const IN_RELEASES = /^\.pruning-[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const IN_ROOT = /^\.lock\.(stale|released|broken)-[0-9a-f]{8}$/;

/**
 * Remove what earlier runs left of the directories above. Call only while holding the root's lock
 * (lib/node/lifecycle.ts `recoverInterrupted`).
 *
 * None of them can belong to a run that still needs it. A `.pruning-*` is made and deleted by a
 * prune that holds the lock, and that prune returns before its lock is released: while we hold the
 * lock no prune is running, so each one we find was left by a killed run. (A prune stopped by
 * SIGINT or SIGTERM releases its lock as it dies and may go on deleting for that moment: see
 * below.) The `.lock.*` ones hold only the owner file of a lock that has already ended: from the
 * moment it is renamed aside, no run reads it or writes into it again, and the one thing its maker
 * still does is delete it. A taker or a releaser may be doing that as we start (each renames it
 * aside just before the lock becomes free), so both may delete the same directory at once;
 * deleting is all either does, with `force`, so nothing is lost.
 *
 * Best effort: a leftover that cannot be removed now is not part of any release and must not fail
 * the run; the next run tries again. Returns the paths removed, relative to the root.
 */
export async function removeLeftovers(root: string): Promise<string[]> {
  const removed: string[] = [];
  for (const [dir, form] of [
    ['.', IN_ROOT],
    ['releases', IN_RELEASES],
  ] as const) {
    const names = await fsp.readdir(path.join(root, dir)).catch(() => [] as string[]);
    for (const name of names.filter(n => form.test(n))) {
      const full = path.join(root, dir, name);
      // We only ever rename directories aside; anything else by that name is not ours.
      const stat = await fsp.lstat(full).catch(() => undefined);
      if (!stat?.isDirectory()) continue;
      try {
        await fse.remove(full);
        removed.push(path.join(dir, name));
      } catch {
        // Left for the next run (see above).
      }
    }
  }
  return removed;
}
