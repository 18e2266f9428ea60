import {createHash, randomBytes, type Hash} from 'node:crypto';
import {closeSync, fsyncSync, openSync, promises as fsp, writeSync} from 'node:fs';
import path from 'node:path';
import {IntegrityError} from '../../support/errors.js';
import {formatBytes, plural} from '../../support/format.js';

/** Where a pack being received is written: beside the store's packs, never read as one. */
export const INCOMING_PACK = /^tmp-fetch-[0-9a-f]{16}\.pack$/;

/**
 * A pack as it arrives from a server, written straight to a file in the store's pack directory
 * and checksummed on the way: the pack is never held in memory, whatever its size. The file is
 * named so that no reader takes it for a pack (they look for `pack-<id>.idx`); it becomes one only
 * once it is indexed and renamed.
 */
export class IncomingPack {
  private readonly hash: Hash = createHash('sha1');
  /** The last 20 bytes so far: the trailer, once the pack ends. */
  private tail = Buffer.alloc(0);
  private closed = false;
  /** The object count of the pack's header, once its first 12 bytes are in. */
  private objects: number | undefined;
  private head = Buffer.alloc(0);
  size = 0;

  private constructor(
    readonly file: string,
    private readonly fd: number,
  ) {}

  /** A new, empty incoming pack in `packDir`; leftovers of a run that was killed are removed. */
  static async create(packDir: string): Promise<IncomingPack> {
    await fsp.mkdir(packDir, {recursive: true});
    await removeLeftovers(packDir);
    const file = path.join(packDir, `tmp-fetch-${randomBytes(8).toString('hex')}.pack`);
    return new IncomingPack(file, openSync(file, 'wx', 0o644));
  }

  write(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) at += writeSync(this.fd, chunk, at, chunk.length - at);
    if (this.size < 12) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, 12 - this.size)]);
      if (this.head.length === 12) this.objects = this.head.readUInt32BE(8);
    }
    this.size += chunk.length;
    // Everything but the last 20 bytes so far is hashed; a chunk is not copied to do it.
    if (chunk.length >= 20) {
      this.hash.update(this.tail);
      this.hash.update(chunk.subarray(0, chunk.length - 20));
      this.tail = Buffer.from(chunk.subarray(chunk.length - 20));
      return;
    }
    const joined = Buffer.concat([this.tail, chunk]);
    const keep = Math.min(20, joined.length);
    this.hash.update(joined.subarray(0, joined.length - keep));
    this.tail = Buffer.from(joined.subarray(joined.length - keep));
  }

  /** The object count a git pack's header declares, once its first 12 bytes are in. */
  get declaredObjects(): number | undefined {
    return this.head.toString('latin1', 0, 4) === 'PACK' ? this.objects : undefined;
  }

  /** How far the pack is: `2,173 objects, 3.1 MiB received`. */
  describe(): string {
    const count = this.objects === undefined ? '' : `${plural(this.objects, 'object')}, `;
    return `${count}${formatBytes(this.size)} received`;
  }

  /**
   * Close the file and check the trailer: the SHA-1 of everything before it. Returns false for
   * an empty answer (no pack sent).
   */
  finish(label: string): boolean {
    // On disk before it can be renamed into place: a crash must not leave a named, empty pack.
    if (!this.closed) fsyncSync(this.fd);
    this.close();
    if (this.size === 0) return false;
    // protection R30-incoming-trailer: a received pack's trailer must match its content
    if (this.size < 32 || !this.hash.digest().equals(this.tail)) {
      throw new IntegrityError(
        `Refused the pack received from ${label}: ${this.size < 32 ? 'not a git pack' : 'its checksum does not match (truncated or damaged in transit)'}.`,
        'Nothing was stored. Check the repository and the server, then run again.',
      );
    }
    return true;
  }

  /** Remove the file (after a failure, or once it has been stored under its own name). */
  async discard(): Promise<void> {
    this.close();
    await fsp.rm(this.file, {force: true});
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

/**
 * Incoming packs left by a fetch that was killed. Only one run fetches into a store at a time (a
 * node's deploys hold its lock; a check or a bundle fetches into a store of its own), so any
 * found here is a leftover.
 */
async function removeLeftovers(packDir: string): Promise<void> {
  for (const name of await fsp.readdir(packDir)) {
    if (INCOMING_PACK.test(name)) await fsp.rm(path.join(packDir, name), {force: true});
  }
}
