import {createHash} from 'node:crypto';
import {crc32} from 'node:zlib';
import {IntegrityError} from '../../support/errors.js';
import {OFS_DELTA, REF_DELTA, walkPack, type PackedObject} from './check.js';
import {applyDelta, TYPE_NAMES, type GitObject} from './reader.js';

/**
 * Build the version 2 index (`.idx`) of a pack received from a server, with Node's zlib and
 * hashing, as `git index-pack` would write it: every object inflated (and checked, as checkPack
 * does), deltas applied, every object's id computed. isomorphic-git builds the same index in
 * JavaScript (pako), which is most of the CPU time of a first fetch. A thin pack's ref-deltas may
 * name bases outside the pack: `external` reads those from the store, and when it has no such
 * object the pack cannot be indexed here (undefined is returned; the caller lets isomorphic-git
 * index it).
 */
export function indexPack(
  data: Uint8Array,
  label: string,
  external: (oid: string) => GitObject | undefined,
): Buffer | undefined {
  const pack = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const objects: PackedObject[] = [];
  walkPack(pack, label, object => objects.push(object));
  const byOffset = new Map<number, number>();
  for (const [i, object] of objects.entries()) byOffset.set(object.offset, i);
  const resolved = new Array<GitObject | undefined>(objects.length).fill(undefined);
  const ids: string[] = new Array<string>(objects.length);
  const byId = new Map<string, number>();
  const refuse = (why: string) =>
    new IntegrityError(`Refused the pack received from ${label}: ${why}.`);

  const finish = (i: number, object: GitObject) => {
    resolved[i] = object;
    const name = TYPE_NAMES[object.type];
    if (!name) throw refuse(`object at ${objects[i]?.offset ?? 0} has unknown type ${object.type}`);
    const id = createHash('sha1')
      .update(`${name} ${object.data.length}\0`)
      .update(object.data)
      .digest('hex');
    ids[i] = id;
    byId.set(id, i);
  };
  // Resolve an object whose base is known (walking down ofs-delta chains); undefined while a
  // ref-delta's base is not found yet.
  const resolve = (i: number, depth: number): GitObject | undefined => {
    const done = resolved[i];
    if (done) return done;
    if (depth > 10_000) throw refuse('a delta chain loops');
    const object = objects[i];
    if (!object) throw refuse('an object is missing');
    let base: GitObject | undefined;
    if (object.type === OFS_DELTA) {
      const at = byOffset.get(object.baseOffset ?? -1);
      if (at === undefined) throw refuse(`delta at ${object.offset} points at no object`);
      base = resolve(at, depth + 1);
    } else if (object.type === REF_DELTA) {
      const inPack = byId.get(object.baseOid ?? '');
      base = inPack === undefined ? external(object.baseOid ?? '') : resolve(inPack, depth + 1);
    } else {
      finish(i, {type: object.type, data: object.data});
      return resolved[i];
    }
    if (!base) return undefined;
    finish(i, {type: base.type, data: applyDelta(base.data, object.data, label)});
    return resolved[i];
  };
  // Whole objects first, then deltas until no pass makes progress (a ref-delta's base may come
  // later in the pack).
  for (let i = 0; i < objects.length; i++) {
    const type = objects[i]?.type;
    if (type !== OFS_DELTA && type !== REF_DELTA) resolve(i, 0);
  }
  for (let progress = true; progress;) {
    progress = false;
    for (let i = 0; i < objects.length; i++) {
      if (!resolved[i] && resolve(i, 0)) progress = true;
    }
  }
  for (let i = 0; i < objects.length; i++) if (!resolved[i]) return undefined;
  // Only the ids, offsets and CRCs are needed from here on.
  resolved.length = 0;
  return writePackIndex(
    objects.map((object, i) => ({
      id: ids[i] ?? '',
      offset: object.offset,
      crc: crc32(pack.subarray(object.offset, object.end)),
    })),
    pack.subarray(pack.length - 20),
  );
}

/** One object of a pack, as its index records it. */
export type IndexEntry = {id: string; offset: number; crc: number};

/**
 * A version 2 pack index (`.idx`), as `git index-pack` writes it: fan-out table, sorted ids,
 * CRC-32s and offsets of the entries (large offsets in a table of their own), the pack's
 * checksum and the index's own.
 */
export function writePackIndex(entries: IndexEntry[], packChecksum: Buffer): Buffer {
  // Plain code-unit order: the ids are lower-case hex, so this is the index's byte order.
  const sorted = [...entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const count = sorted.length;
  const large: bigint[] = [];
  const header = Buffer.alloc(8 + 256 * 4);
  header.writeUInt32BE(0xff744f63, 0);
  header.writeUInt32BE(2, 4);
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
