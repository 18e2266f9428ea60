import {createHash} from 'node:crypto';
import {closeSync, fstatSync, openSync, readFileSync} from 'node:fs';
import {IntegrityError} from '../../support/errors.js';

/**
 * The version 2 pack index (`.idx`, gitformat-pack(5)), read and written here: a fan-out table,
 * the sorted object ids, a CRC-32 and an offset per object (offsets past 2 GiB in a table of
 * their own), the pack's checksum and the index's own.
 */

const IDX_MAGIC = 0xff744f63;
const IDX_VERSION = 2;
const HEADER_BYTES = 8 + 256 * 4;

/** What a pack's `.idx` says: its object ids, in order, and where each one starts. */
export type PackIndex = {
  count: number;
  fanout: Uint32Array;
  ids: Buffer;
  offsets: number[];
  /** The offsets in pack order, to find where each object ends. */
  sorted: Float64Array;
};

/** Parse the index `idx` (read from `file`, named in errors). */
export function parsePackIndex(idx: Buffer, file: string): PackIndex {
  if (idx.readUInt32BE(0) !== IDX_MAGIC || idx.readUInt32BE(4) !== IDX_VERSION) {
    throw new IntegrityError(`${file} is not a version 2 pack index.`);
  }
  const fanout = new Uint32Array(256);
  for (let i = 0; i < 256; i++) fanout[i] = idx.readUInt32BE(8 + i * 4);
  const count = fanout[255] ?? 0;
  const idsAt = HEADER_BYTES;
  const offsetsAt = idsAt + count * 20 + count * 4;
  const largeAt = offsetsAt + count * 4;
  const offsets: number[] = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    const small = idx.readUInt32BE(offsetsAt + i * 4);
    offsets[i] =
      small & 0x80000000 ? Number(idx.readBigUInt64BE(largeAt + (small & 0x7fffffff) * 8)) : small;
  }
  return {
    count,
    fanout,
    ids: idx.subarray(idsAt, idsAt + count * 20),
    offsets,
    sorted: Float64Array.from(offsets).sort(),
  };
}

/**
 * Parsed indexes, by file, for one store: a deploy opens a store's packs several times (listing,
 * reading deploy.json, writing), and an index is never changed in place (it is written under a
 * temp name and renamed, and named after its pack's checksum), so its size and mtime identify it.
 */
export class PackIndexCache {
  private readonly byFile = new Map<string, {size: number; mtimeMs: number; index: PackIndex}>();

  /** The index in `idxFile`, parsed again only when the file is not the one parsed before. */
  read(idxFile: string): PackIndex {
    const fd = openSync(idxFile, 'r');
    try {
      const {size, mtimeMs} = fstatSync(fd);
      const cached = this.byFile.get(idxFile);
      if (cached && cached.size === size && cached.mtimeMs === mtimeMs) return cached.index;
      const index = parsePackIndex(readFileSync(fd), idxFile);
      this.byFile.set(idxFile, {size, mtimeMs, index});
      return index;
    } finally {
      closeSync(fd);
    }
  }
}

/** Where object `want` (20 bytes) starts: a binary search within the fan-out table's range. */
export function findOffset(index: PackIndex, want: Buffer): number | undefined {
  const first = want[0] ?? 0;
  let lo = first === 0 ? 0 : (index.fanout[first - 1] ?? 0);
  let hi = (index.fanout[first] ?? 0) - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const cmp = index.ids.compare(want, 0, 20, mid * 20, mid * 20 + 20);
    if (cmp === 0) return index.offsets[mid];
    if (cmp < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** Where the object at `offset` ends: the next object's offset, or the pack's 20-byte trailer. */
export function entryEnd(index: PackIndex, offset: number, packSize: number): number {
  let lo = 0;
  let hi = index.sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const value = index.sorted[mid] ?? 0;
    if (value <= offset) lo = mid + 1;
    else hi = mid - 1;
  }
  return lo < index.sorted.length ? (index.sorted[lo] ?? packSize - 20) : packSize - 20;
}

/** One object of a pack, as its index records it. */
export type IndexEntry = {id: string; offset: number; crc: number};

/** The index of a pack holding `entries` whose trailer is `packChecksum`, as git writes it. */
export function writePackIndex(entries: IndexEntry[], packChecksum: Buffer): Buffer {
  // Plain code-unit order: the ids are lower-case hex, so this is the index's byte order.
  const sorted = [...entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const count = sorted.length;
  const large: bigint[] = [];
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(IDX_MAGIC, 0);
  header.writeUInt32BE(IDX_VERSION, 4);
  const fanout = new Array<number>(256).fill(0);
  for (const entry of sorted) {
    const first = parseInt(entry.id.slice(0, 2), 16);
    fanout[first] = (fanout[first] ?? 0) + 1;
  }
  let running = 0;
  for (let b = 0; b < 256; b++) {
    running += fanout[b] ?? 0;
    header.writeUInt32BE(running, 8 + b * 4);
  }
  const names = Buffer.alloc(count * 20);
  const crcs = Buffer.alloc(count * 4);
  const offsets = Buffer.alloc(count * 4);
  for (const [k, entry] of sorted.entries()) {
    names.write(entry.id, k * 20, 'hex');
    crcs.writeUInt32BE(entry.crc >>> 0, k * 4);
    if (entry.offset < 0x80000000) offsets.writeUInt32BE(entry.offset, k * 4);
    else {
      offsets.writeUInt32BE((0x80000000 | large.length) >>> 0, k * 4);
      large.push(BigInt(entry.offset));
    }
  }
  const parts: Buffer[] = [header, names, crcs, offsets];
  if (large.length > 0) {
    const table = Buffer.alloc(large.length * 8);
    for (const [k, value] of large.entries()) table.writeBigUInt64BE(value, k * 8);
    parts.push(table);
  }
  parts.push(packChecksum);
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}
