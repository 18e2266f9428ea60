import {promises as fsp, readdirSync, readFileSync, readlinkSync, writeFileSync} from 'node:fs';
import {InterruptedError} from '../support/errors.js';

/** The start time of a process in clock ticks since boot (/proc/PID/stat field 22), where /proc exists. */
export function processStart(pid: number): string | null {
  return statFields(pid)?.[19] ?? null;
}

/**
 * What tells this machine's running processes apart from those of another machine or container
 * that shares the same host name and file system: the kernel's boot id (a new one each boot, and
 * another on another machine) and the inode of this process's pid namespace (a container has its
 * own, in which pid 1234 is another process than 1234 here). null where /proc does not say.
 */
export function processScope(): {bootId: string | null; pidNs: string | null} {
  let bootId: string | null = null;
  let pidNs: string | null = null;
  try {
    bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    // No /proc: nothing to tell scopes apart by.
  }
  try {
    pidNs = readlinkSync('/proc/self/ns/pid');
  } catch {
    // Likewise.
  }
  return {bootId, pidNs};
}

/** The fields of /proc/PID/stat after the command name (state first); undefined when it is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Whether `pid` still runs (a zombie, already dead and waiting to be reaped, does not). */
function running(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state !== undefined && state !== 'Z' && state !== 'X';
}

/** `pid` and every process below it, from the parent ids in /proc. */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  let names: string[] = [];
  try {
    names = readdirSync('/proc');
  } catch {
    return [pid];
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const ppid = Number(statFields(Number(name))?.[1]);
    if (!Number.isInteger(ppid)) continue;
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i] ?? -1) ?? []));
  return tree;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Gone already.
  }
}

/** A child process (an installer, a hook) recorded where a later run can find it. */
type ChildRecord = {pid: number; start: string | null; command: string};

/**
 * Record the running child `pid` in `file`, so that if this run is killed (SIGKILL leaves its
 * children running, now orphans), the next run can stop it before it cleans up the release the
 * child is still writing into. Synchronous and best effort: a record that cannot be written only
 * loses that protection.
 */
export function recordChild(file: string, pid: number, command: string): void {
  const record: ChildRecord = {pid, start: processStart(pid), command};
  try {
    writeFileSync(file, `${JSON.stringify(record)}\n`);
  } catch {
    // The release directory may be gone or the disk full; the child still runs as it should.
  }
}

/**
 * Stop the child recorded in `file` by a run that did not finish, with everything it started:
 * frozen (SIGSTOP) until no new process appears below it, then SIGKILLed; waits up to `waitMs`
 * for them to be gone. Nothing happens when the record is missing or its process is gone (or the
 * pid now belongs to another process: the start time differs). Removes the record. Returns the
 * commands stopped.
 */
export async function stopRecordedChild(file: string, waitMs = 5000): Promise<string[]> {
  let record: ChildRecord;
  try {
    record = JSON.parse(await fsp.readFile(file, 'utf8')) as ChildRecord;
  } catch {
    return [];
  }
  const stopped: string[] = [];
  if (
    Number.isInteger(record.pid) &&
    record.pid > 1 &&
    record.start !== null &&
    running(record.pid) &&
    processStart(record.pid) === record.start
  ) {
    let tree: number[] = [];
    for (let round = 0; round < 10; round++) {
      const found = processTree(record.pid).filter(pid => pid !== process.pid);
      for (const pid of found) signal(pid, 'SIGSTOP');
      if (found.length === tree.length) break;
      tree = found;
    }
    for (const pid of tree) signal(pid, 'SIGKILL');
    const deadline = Date.now() + waitMs;
    while (tree.some(running) && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 20));
    }
    stopped.push(record.command);
  }
  await fsp.rm(file, {force: true});
  return stopped;
}

/** How long a stopped installer or hook gets to exit after SIGTERM / SIGINT, before SIGKILL. */
export const STOP_GRACE_MS = 5000;

/** Whether any process of group `pgid` is left. */
function groupAlive(pgid: number): boolean {
  try {
    // protection R40-group-alive: the whole process group is watched, not only its leader
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function waitGroupGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (groupAlive(pgid)) {
    if (Date.now() >= deadline) return false;
    await new Promise(resolve => setTimeout(resolve, 20));
  }
  return true;
}

/**
 * Stop process group `pgid` (an installer or hook started as the leader of its own group, and
 * everything it started that stayed in it): `first` to the whole group, then SIGKILL to what is
 * left after `graceMs`. A process that left the group (setsid) is out of reach here; the record
 * beside the log still lets the next run stop it.
 */
export async function stopGroup(
  pgid: number,
  first: NodeJS.Signals,
  graceMs = STOP_GRACE_MS,
): Promise<void> {
  if (!(pgid > 1)) return;
  // protection R40-group-first: the whole process group is signalled
  signal(-pgid, first);
  if (await waitGroupGone(pgid, graceMs)) return;
  // protection R40-group-kill: the whole process group is killed
  signal(-pgid, 'SIGKILL');
  await waitGroupGone(pgid, 2000);
}

/** The process groups of the installers and hooks this process started that still run. */
const runningGroups = new Set<number>();
let interruptedBy: 'SIGINT' | 'SIGTERM' | undefined;

/** Note a child started as leader of its own group; the returned function forgets it again. */
export function trackGroup(pgid: number): () => void {
  runningGroups.add(pgid);
  return () => runningGroups.delete(pgid);
}

/** The signal this run was interrupted by, if any. */
export function interruption(): 'SIGINT' | 'SIGTERM' | undefined {
  return interruptedBy;
}

/** Throw if this run was interrupted: called before a step that must not begin after a signal. */
export function throwIfInterrupted(during?: string): void {
  if (interruptedBy) throw new InterruptedError(interruptedBy, during);
}

/**
 * SIGINT or SIGTERM reached this run: remember it (the steps that follow refuse to start, and a
 * child's failure becomes an {@link InterruptedError}), and pass it on to every running installer
 * or hook group, SIGKILLing what is left after {@link STOP_GRACE_MS}.
 */
export async function interrupt(signalName: 'SIGINT' | 'SIGTERM'): Promise<void> {
  interruptedBy ??= signalName;
  await Promise.all([...runningGroups].map(pgid => stopGroup(pgid, signalName)));
}
