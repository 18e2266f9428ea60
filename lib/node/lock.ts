import {randomBytes} from 'node:crypto';
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import {LockError} from '../support/errors.js';
import {fsyncDir, writeFileAtomic} from '../support/fs.js';
import {interrupt, processScope, processStart, STOP_GRACE_MS} from './processes.js';
import {LOCK_DIR} from './layout.js';

/** Who holds a root's lock. */
export type LockOwner = {
  pid: number;
  /** Start time of the process, from /proc, so a reused pid is not taken for the owner. */
  pidStart: string | null;
  /**
   * The kernel boot id and pid namespace the pid belongs to (lib/node/processes.ts processScope): a pid
   * recorded in another boot, on another machine with the same host name or in a container means
   * nothing here, and such a lock cannot be judged from here.
   */
  bootId?: string | null;
  pidNs?: string | null;
  host: string;
  user: string;
  command: string;
  startedAt: string;
  /** Unique to this acquisition: a lock is only ever removed by the run whose token it carries. */
  token: string;
};

const OWNER_FILE = 'owner.json';
const TAKEOVER_DIR = '.lock.takeover';
/** A lock dir without an owner file this old was left by a run killed between mkdir and write. */
const ORPHAN_MS = 60_000;

export type Lock = {owner: LockOwner; release: () => Promise<void>};

/**
 * Take the root's lock: one deploy, rollback or prune at a time. Creation is atomic (mkdir); the
 * owner is recorded inside. A lock whose owner process is gone (same host, pid dead or reused) is
 * taken over through a second atomic mkdir, so two runs cannot both take over the same stale lock.
 * A live owner is never robbed, however long it runs; the loser names the holder and removes nothing.
 */
export async function acquireLock(
  root: string,
  info: {user: string; command: string},
): Promise<Lock> {
  await fse.ensureDir(root);
  const owner: LockOwner = {
    pid: process.pid,
    pidStart: processStart(process.pid),
    ...processScope(),
    host: os.hostname(),
    user: info.user,
    command: info.command,
    startedAt: new Date().toISOString(),
    token: randomBytes(12).toString('hex'),
  };
  await removeStaleStaging(root);
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await tryCreate(root, owner)) {
      return {owner, release: () => releaseLock(root, owner.token)};
    }
    const held = await readLock(root);
    if (held.state === 'live' || held.state === 'unknown') throw heldError(root, held);
    // The owner is gone: take over, unless another run is already doing so.
    await takeOver(root, held.owner);
  }
  throw heldError(root, await readLock(root));
}

/**
 * Make the lock with its owner already inside: the owner file is written into a fresh directory,
 * which is then renamed to `.lock`. rename(2) of a directory fails when the target exists and is
 * not empty, so exactly one run wins, and nobody ever sees a lock without its owner.
 */
async function tryCreate(root: string, owner: LockOwner): Promise<boolean> {
  const staged = path.join(root, `.lock.new-${owner.token}`);
  await fsp.mkdir(staged);
  try {
    await writeFileAtomic(path.join(staged, OWNER_FILE), `${JSON.stringify(owner, null, 2)}\n`);
    // protection R9-rename-lock: the lock is taken by a rename, never check-then-write
    await fsp.rename(staged, path.join(root, LOCK_DIR));
  } catch (error) {
    await fse.remove(staged);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    throw error;
  }
  await fsyncDir(root);
  return true;
}

/** Staging dirs of runs killed between making their owner file and renaming it into place. */
async function removeStaleStaging(root: string): Promise<void> {
  for (const name of await fsp.readdir(root).catch(() => [] as string[])) {
    if (!name.startsWith('.lock.new-')) continue;
    const dir = path.join(root, name);
    const stat = await fsp.stat(dir).catch(() => undefined);
    if (stat && Date.now() - stat.mtimeMs > ORPHAN_MS) await fse.remove(dir);
  }
}

export type LockState =
  | {state: 'free'; owner: null}
  | {state: 'live' | 'dead'; owner: LockOwner | null}
  /** `why`: what keeps this run from telling whether the owner still runs. */
  | {state: 'unknown'; owner: LockOwner; why: string};

/** Whether the root is locked, by whom, and whether that process still runs. */
export async function readLock(root: string): Promise<LockState> {
  const dir = path.join(root, LOCK_DIR);
  let stat;
  try {
    stat = await fsp.stat(dir);
  } catch {
    return {state: 'free', owner: null};
  }
  let owner: LockOwner | null = null;
  try {
    owner = JSON.parse(await fsp.readFile(path.join(dir, OWNER_FILE), 'utf8')) as LockOwner;
  } catch {
    // Being created right now, or left by a run killed between mkdir and writing its owner.
    return {state: Date.now() - stat.mtimeMs > ORPHAN_MS ? 'dead' : 'live', owner: null};
  }
  const why = unjudgeable(owner);
  // protection R37-unknown: a lock recorded in another boot, pid namespace or host counts as held
  if (why) return {state: 'unknown', owner, why};
  // protection R11-liveness: a live lock owner is never taken for dead
  return {state: isAlive(owner) ? 'live' : 'dead', owner};
}

/**
 * Why this run cannot tell whether the owner still runs, or undefined when it can: only a pid of
 * this host, this boot and this pid namespace, with its start time, says anything here. Anything
 * else counts as held: taking over a live owner's lock runs two deploys at once.
 */
function unjudgeable(owner: LockOwner): string | undefined {
  if (owner.host !== os.hostname()) return `on another host, ${owner.host}`;
  const here = processScope();
  if (!owner.bootId || !owner.pidNs || owner.pidStart === null) {
    return 'recorded without a boot id, pid namespace or process start time';
  }
  if (here.bootId === null || here.pidNs === null) {
    return 'this system does not show boot ids and pid namespaces (/proc)';
  }
  if (owner.bootId !== here.bootId) {
    return 'recorded in another boot, or by another machine with the same host name';
  }
  if (owner.pidNs !== here.pidNs) return 'in another pid namespace (a container?)';
  return undefined;
}

async function takeOver(root: string, dead: LockOwner | null): Promise<void> {
  const guard = path.join(root, TAKEOVER_DIR);
  try {
    await fsp.mkdir(guard);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const stat = await fsp.stat(guard).catch(() => undefined);
    // A taker killed mid-takeover leaves its guard; it is only ever needed for a moment.
    if (stat && Date.now() - stat.mtimeMs > ORPHAN_MS)
      await fsp.rmdir(guard).catch(() => undefined);
    throw new LockError(
      `Another run is taking over the stale lock of ${root} right now.`,
      'Run again in a moment.',
    );
  }
  try {
    // Still the same dead owner? Then move it aside in one step and remove it.
    const now = await readLock(root);
    if (now.state === 'dead' && (now.owner?.token ?? null) === (dead?.token ?? null)) {
      const aside = path.join(root, `.lock.stale-${randomBytes(4).toString('hex')}`);
      await fsp.rename(path.join(root, LOCK_DIR), aside);
      await fse.remove(aside);
    }
  } finally {
    await fsp.rmdir(guard).catch(() => undefined);
  }
}

/** Remove the lock only if it is still ours: a run never deletes another run's lock. */
async function releaseLock(root: string, token: string): Promise<void> {
  const dir = path.join(root, LOCK_DIR);
  try {
    const owner = JSON.parse(await fsp.readFile(path.join(dir, OWNER_FILE), 'utf8')) as LockOwner;
    // protection R12-token: a run removes the lock only while it holds its token
    if (owner.token !== token) return;
  } catch {
    return;
  }
  const aside = path.join(root, `.lock.released-${randomBytes(4).toString('hex')}`);
  await fsp.rename(dir, aside);
  await fse.remove(aside);
}

/**
 * `deploy unlock`: remove a lock whose owner is gone, or any lock with `force`.
 * Returns what was removed (null when the root was not locked).
 */
export async function breakLock(root: string, force: boolean): Promise<LockState> {
  const held = await readLock(root);
  if (held.state === 'free') return held;
  if ((held.state === 'live' || held.state === 'unknown') && !force) {
    throw new LockError(
      `${describeHolder(held.owner)} holds the lock of ${root}${held.state === 'unknown' ? ` (${held.why}: cannot tell whether it still runs)` : ' and is still running'}; not removed.`,
      'Wait for it to finish, or use --force if you are sure it is gone.',
    );
  }
  const aside = path.join(root, `.lock.broken-${randomBytes(4).toString('hex')}`);
  await fsp.rename(path.join(root, LOCK_DIR), aside);
  await fse.remove(aside);
  return held;
}

function heldError(root: string, held: LockState): LockError {
  if (held.state === 'unknown') {
    return new LockError(
      `${root} is locked by ${describeHolder(held.owner)}, ${held.why}: cannot tell from here whether it still runs, so the lock counts as held.`,
      'Wait for it to finish. If you are sure that process is gone, remove the lock with `deploy unlock --force`.',
    );
  }
  return new LockError(
    `${root} is locked by ${describeHolder(held.owner)}.`,
    'Wait for it to finish. If that process is gone, the next run takes the lock over; `deploy unlock` shows and removes a stale lock.',
  );
}

export function describeHolder(owner: LockOwner | null): string {
  if (!owner) return 'a run that is just starting';
  return `${owner.command} (pid ${owner.pid} on ${owner.host}, user ${owner.user}, since ${owner.startedAt})`;
}

function isAlive(owner: LockOwner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  // The pid runs; is it the same process, or a new one that reused the number?
  const start = processStart(owner.pid);
  return start === null || start === owner.pidStart;
}

/**
 * Run `work` holding the root's lock; released on success and on failure. SIGINT / SIGTERM is
 * passed on to the installer or hook that runs (lib/node/processes.ts interrupt), and `work` then fails
 * on its own way out (marking its release failed, writing history) with the lock still held; only
 * if it has not come back well after the installer's grace time is the lock released and the
 * signal taken as it comes (the next run then cleans up, as after SIGKILL).
 */
export async function withLock<T>(
  root: string,
  info: {user: string; command: string},
  work: (lock: Lock) => Promise<T>,
): Promise<T> {
  // protection R10-lock: deploy, rollback and prune run under the lock
  const lock = await acquireLock(root, info);
  let lastResort: NodeJS.Timeout | undefined;
  const handlers = (['SIGINT', 'SIGTERM'] as const).map(signal => {
    const handler = () => {
      process.removeListener(signal, handler);
      // protection R40-interrupt: SIGINT / SIGTERM are passed on to the running installer or hook
      void interrupt(signal);
      lastResort = setTimeout(() => {
        void lock.release().finally(() => {
          process.kill(process.pid, signal);
        });
      }, STOP_GRACE_MS + 15_000);
    };
    process.once(signal, handler);
    return [signal, handler] as const;
  });
  try {
    return await work(lock);
  } finally {
    clearTimeout(lastResort);
    for (const [signal, handler] of handlers) process.removeListener(signal, handler);
    await lock.release();
  }
}
