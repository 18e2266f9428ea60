import {createHash} from 'node:crypto';
import {closeSync, fstatSync, openSync, readdirSync, readFileSync, readSync} from 'node:fs';
import path from 'node:path';
import {inflateSync} from 'node:zlib';
import {IntegrityError} from '../../support/errors.js';
import {
  inflateChunkSize,
  OFS_DELTA,
  PACK_LIMITS,
  readDeltaSizes,
  readEntryHeader,
  REF_DELTA,
} from './check.js';

/**
 * Reads blobs straight from a store's pack files (index version 2) with Node's zlib, for writing
 * release trees: isomorphic-git's readBlob looks each object up through several file system
 * calls and inflates it in JavaScript, which dominates the export of a tree of thousands of
 * files. Each object is read with one positioned read of exactly its bytes (its end is the next
 * object's offset), deltas are applied here, and every blob is hashed and compared with the id
 * the tree gives before it is returned: bytes that do not match are never written. Objects not in
 * a pack (none, in stores written by fetch) are left to the caller's fallback.
 */
export class PackReader {
  private readonly bases = new Map<number, Map<number, GitObject>>();

  private constructor(private readonly packs: Pack[]) {}

  /** Open every pack of `gitdir`; the caller must close() the reader. */
  static open(gitdir: string): PackReader {
    const dir = path.join(gitdir, 'objects', 'pack');
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      names = [];
    }
    const packs: Pack[] = [];
    try {
      for (const name of names.sort()) {
        if (!/^pack-[0-9a-f]{40}\.idx$/.test(name)) continue;
        const packFile = path.join(dir, name.replace(/\.idx$/, '.pack'));
        packs.push(openPack(path.join(dir, name), packFile));
      }
    } catch (error) {
      for (const pack of packs) closeSync(pack.fd);
      throw error;
    }
    return new PackReader(packs);
  }

  close(): void {
    for (const pack of this.packs) closeSync(pack.fd);
    this.packs.length = 0;
  }

  /**
   * The content of blob `oid`, checked against its id; undefined when no pack holds it.
   * Throws when the pack holds it but the bytes are damaged or of another type.
   */
  readBlob(oid: string): Buffer | undefined {
    const object = this.readObject(oid);
    if (object && object.type !== 3) {
      throw new IntegrityError(`Object ${oid} is a ${TYPE_NAMES[object.type] ?? '?'}, not a blob.`);
    }
    return object?.data;
  }

  /** Any object, checked against its id; undefined when no pack holds it. */
  readObject(oid: string): GitObject | undefined {
    const found = this.find(oid);
    if (!found) return undefined;
    const object = this.readAt(found.pack, found.offset, 0);
    const name = TYPE_NAMES[object.type] ?? '?';
    const actual = createHash('sha1')
      .update(`${name} ${object.data.length}\0`)
      .update(object.data)
      .digest('hex');
    if (actual !== oid) {
      throw new IntegrityError(
        `Object ${oid} in ${path.basename(found.pack.file)} is damaged: its content does not hash to its id.`,
        'Remove the repository under <root>/repos/ and deploy again to fetch it afresh.',
      );
    }
    return object;
  }

  private find(oid: string): {pack: Pack; offset: number} | undefined {
    const want = Buffer.from(oid, 'hex');
    for (const pack of this.packs) {
      const offset = lookup(pack, want);
      if (offset !== undefined) return {pack, offset};
    }
    return undefined;
  }

  private readAt(pack: Pack, offset: number, depth: number): GitObject {
    if (depth > MAX_DELTA_DEPTH)
      throw new IntegrityError(`Delta chain longer than ${MAX_DELTA_DEPTH} in ${pack.file}.`);
    const cached = this.bases.get(pack.id)?.get(offset);
    if (cached) return cached;
    const raw = readEntryBytes(pack, offset);
    const header = readEntryHeader(raw, 0, raw.length);
    if (!header) throw new IntegrityError(`An object header in ${pack.file} runs past its end.`);
    const {type, size} = header;
    if (size > PACK_LIMITS.maxObjectBytes) {
      throw new IntegrityError(`An object in ${pack.file} declares ${size} bytes, over the limit.`);
    }
    const data = inflate(raw.subarray(header.dataStart), size, pack.file);
    let result: GitObject;
    if (type === OFS_DELTA || type === REF_DELTA) {
      let base: GitObject;
      if (header.back !== undefined) {
        base = this.readAt(pack, offset - header.back, depth + 1);
      } else {
        const baseOid = header.baseOid ?? '';
        const found = this.find(baseOid);
        if (!found) throw new IntegrityError(`Delta base ${baseOid} is in no pack of this store.`);
        base = this.readAt(found.pack, found.offset, depth + 1);
      }
      result = {type: base.type, data: applyDelta(base.data, data, pack.file)};
    } else {
      result = {type, data};
    }
    // Delta bases are read again and again: keep the ones other objects point back to.
    if (depth > 0) {
      let cache = this.bases.get(pack.id);
      if (!cache) {
        cache = new Map<number, GitObject>();
        this.bases.set(pack.id, cache);
      }
      if (cache.size >= BASE_CACHE_ENTRIES) cache.clear();
      cache.set(offset, result);
    }
    return result;
  }
}

export const TYPE_NAMES: Record<number, string> = {1: 'commit', 2: 'tree', 3: 'blob', 4: 'tag'};

/** An object's type number (1 commit, 2 tree, 3 blob, 4 tag) and content. */
export type GitObject = {type: number; data: Buffer};
const MAX_DELTA_DEPTH = 4096;
const BASE_CACHE_ENTRIES = 512;

/** What a pack's `.idx` (version 2) says: its object ids, in order, and where each one starts. */
type PackIndex = {
  count: number;
  fanout: Uint32Array;
  ids: Buffer;
  offsets: number[];
  /** The offsets in pack order, to find where each object ends. */
  sorted: Float64Array;
};

export type Pack = PackIndex & {id: number; file: string; fd: number; size: number};

let packIds = 0;

/**
 * Parsed indexes, by file: a deploy opens a store's packs several times (listing, reading
 * deploy.json, writing), and an index is never changed in place (it is written under a temp
 * name and renamed, and named after its pack's checksum), so its size and mtime identify it.
 */
const parsedIndexes = new Map<string, {size: number; mtimeMs: number; index: PackIndex}>();

function readPackIndex(idxFile: string): PackIndex {
  const fd = openSync(idxFile, 'r');
  try {
    const {size, mtimeMs} = fstatSync(fd);
    const cached = parsedIndexes.get(idxFile);
    if (cached && cached.size === size && cached.mtimeMs === mtimeMs) return cached.index;
    const idx = readFileSync(fd);
    if (idx.readUInt32BE(0) !== 0xff744f63 || idx.readUInt32BE(4) !== 2) {
      throw new IntegrityError(`${idxFile} is not a version 2 pack index.`);
    }
    const fanout = new Uint32Array(256);
    for (let i = 0; i < 256; i++) fanout[i] = idx.readUInt32BE(8 + i * 4);
    const count = fanout[255] ?? 0;
    const idsAt = 8 + 256 * 4;
    const offsetsAt = idsAt + count * 20 + count * 4;
    const largeAt = offsetsAt + count * 4;
    const offsets: number[] = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      const small = idx.readUInt32BE(offsetsAt + i * 4);
      offsets[i] =
        small & 0x80000000
          ? Number(idx.readBigUInt64BE(largeAt + (small & 0x7fffffff) * 8))
          : small;
    }
    const index: PackIndex = {
      count,
      fanout,
      ids: idx.subarray(idsAt, idsAt + count * 20),
      offsets,
      sorted: Float64Array.from(offsets).sort(),
    };
    parsedIndexes.set(idxFile, {size, mtimeMs, index});
    return index;
  } finally {
    closeSync(fd);
  }
}

export function openPack(idxFile: string, packFile: string): Pack {
  const index = readPackIndex(idxFile);
  const fd = openSync(packFile, 'r');
  return {...index, id: packIds++, file: packFile, fd, size: fstatSync(fd).size};
}

/** The bytes of the pack entry at `offset`, up to where the next one starts. */
export function readEntryBytes(pack: Pack, offset: number): Buffer {
  const raw = Buffer.allocUnsafe(nextOffset(pack, offset) - offset);
  let got = 0;
  while (got < raw.length) {
    const n = readSync(pack.fd, raw, got, raw.length - got, offset + got);
    if (n === 0) throw new IntegrityError(`${pack.file} ends inside an object.`);
    got += n;
  }
  return raw;
}

/** Binary search of the sorted ids, within the range the fan-out table gives. */
function lookup(pack: Pack, want: Buffer): number | undefined {
  const first = want[0] ?? 0;
  let lo = first === 0 ? 0 : (pack.fanout[first - 1] ?? 0);
  let hi = (pack.fanout[first] ?? 0) - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const cmp = pack.ids.compare(want, 0, 20, mid * 20, mid * 20 + 20);
    if (cmp === 0) return pack.offsets[mid];
    if (cmp < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** Where the object at `offset` ends: the next object's offset, or the trailer. */
export function nextOffset(pack: Pack, offset: number): number {
  let lo = 0;
  let hi = pack.sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const value = pack.sorted[mid] ?? 0;
    if (value <= offset) lo = mid + 1;
    else hi = mid - 1;
  }
  return lo < pack.sorted.length ? (pack.sorted[lo] ?? pack.size - 20) : pack.size - 20;
}

function inflate(data: Buffer, size: number, file: string): Buffer {
  let out: Buffer;
  try {
    out = inflateSync(data, {
      maxOutputLength: Math.max(size, 1),
      chunkSize: inflateChunkSize(size),
    });
  } catch (error) {
    throw new IntegrityError(`An object in ${file} does not inflate: ${(error as Error).message}.`);
  }
  if (out.length !== size) {
    throw new IntegrityError(
      `An object in ${file} inflates to ${out.length} bytes, not the ${size} it declares.`,
    );
  }
  return out;
}

export function applyDelta(base: Buffer, delta: Buffer, file: string): Buffer {
  const bad = (why: string) => new IntegrityError(`A delta in ${file} is corrupt: ${why}.`);
  const {baseSize, resultSize: size, at} = readDeltaSizes(delta);
  if (baseSize !== base.length) throw bad('its base has another size');
  if (size > PACK_LIMITS.maxObjectBytes) throw bad(`it declares ${size} bytes, over the limit`);
  let pos = at;
  const out = Buffer.allocUnsafe(size);
  let written = 0;
  while (pos < delta.length) {
    const op = delta[pos++] ?? 0;
    if (op & 0x80) {
      let from = 0;
      let length = 0;
      for (let i = 0; i < 4; i++) if (op & (1 << i)) from += (delta[pos++] ?? 0) * 2 ** (8 * i);
      for (let i = 0; i < 3; i++) if (op & (16 << i)) length += (delta[pos++] ?? 0) * 2 ** (8 * i);
      if (length === 0) length = 0x10000;
      if (from + length > base.length || written + length > size)
        throw bad('a copy leaves its bounds');
      base.copy(out, written, from, from + length);
      written += length;
    } else if (op > 0) {
      if (pos + op > delta.length || written + op > size) throw bad('an insert leaves its bounds');
      delta.copy(out, written, pos, pos + op);
      pos += op;
      written += op;
    } else {
      throw bad('opcode 0');
    }
  }
  if (written !== size) throw bad(`it builds ${written} bytes, not ${size}`);
  return out;
}
