import {createHash} from 'node:crypto';
import zlib from 'node:zlib';

/**
 * The pack format (gitformat-pack(5)): object type numbers, the header of each entry and the
 * caps a received pack must stay within. Shared by the reader, the indexer, the check and the
 * merge, which each read entries their own way.
 */

/** The type numbers a pack entry's header carries (5 is reserved, 0 invalid). */
export const ObjectType = {
  commit: 1,
  tree: 2,
  blob: 3,
  tag: 4,
  ofsDelta: 6,
  refDelta: 7,
} as const;
export type ObjectType = (typeof ObjectType)[keyof typeof ObjectType];

/** A whole object's type: what its id is hashed with. */
export type WholeType = 'commit' | 'tree' | 'blob' | 'tag';

/** The name of each whole object type, by number (deltas have none: they become their base's). */
export const TYPE_NAMES: Readonly<Record<number, WholeType>> = {
  [ObjectType.commit]: 'commit',
  [ObjectType.tree]: 'tree',
  [ObjectType.blob]: 'blob',
  [ObjectType.tag]: 'tag',
};

/** The type number of a whole object named `name` ('commit', ...); 0 for any other name. */
export function typeNumber(name: string): number {
  const found = Object.entries(TYPE_NAMES).find(([, typeName]) => typeName === name);
  return found ? Number(found[0]) : 0;
}

/** An object's type number ({@link ObjectType}) and content. */
export type GitObject = {type: number; data: Buffer};

/** Whether `type` is one of the two delta types, whose data is a delta against a base. */
export function isDelta(type: number): boolean {
  return type === ObjectType.ofsDelta || type === ObjectType.refDelta;
}

/** The id git gives an object: the SHA-1 of `<type> <size>\0` and the content. */
export function objectId(name: string, data: Buffer): string {
  return createHash('sha1').update(`${name} ${data.length}\0`).update(data).digest('hex');
}

/** Caps a received pack must stay within: one object's size, and the number of objects. */
export const PACK_LIMITS = {
  maxObjectBytes: 1024 ** 3,
  maxObjects: 10_000_000,
  /** What every object of one received pack may inflate to, in all: far past any real fetch. */
  maxFetchInflatedBytes: 16 * 1024 ** 3,
};

/** The header of one pack entry, as {@link readEntryHeader} reads it. */
export type EntryHeader = {
  type: number;
  /** The inflated size the entry declares (for a delta: the size of the delta). */
  size: number;
  /** For an ofs-delta, how far back from this entry its base starts. */
  back?: number;
  /** For a ref-delta, the id of its base. */
  baseOid?: string;
  /** Where the zlib data starts. */
  dataStart: number;
};

/**
 * Read the header of the pack entry at `at` (type, size, delta base), not reading at or past
 * `end`; undefined when the header runs past it.
 */
export function readEntryHeader(buf: Buffer, at: number, end: number): EntryHeader | undefined {
  let pos = at;
  if (pos >= end) return undefined;
  let c = buf[pos++] ?? 0;
  const type = (c >> 4) & 7;
  let size = c & 15;
  let shift = 4;
  while (c & 0x80) {
    if (pos >= end) return undefined;
    c = buf[pos++] ?? 0;
    size += (c & 0x7f) * 2 ** shift;
    shift += 7;
  }
  if (type === ObjectType.ofsDelta) {
    if (pos >= end) return undefined;
    c = buf[pos++] ?? 0;
    let back = c & 0x7f;
    while (c & 0x80) {
      if (pos >= end) return undefined;
      c = buf[pos++] ?? 0;
      back = (back + 1) * 128 + (c & 0x7f);
    }
    return {type, size, back, dataStart: pos};
  }
  if (type === ObjectType.refDelta) {
    if (pos + 20 > end) return undefined;
    return {type, size, baseOid: buf.toString('hex', pos, pos + 20), dataStart: pos + 20};
  }
  return {type, size, dataStart: pos};
}

/** How many bytes an entry's type-and-size header takes. */
export function typeAndSizeLength(raw: Buffer): number {
  let at = 0;
  while ((raw[at] ?? 0) & 0x80) at++;
  return at + 1;
}

/** An ofs-delta's distance to its base, in git's offset encoding (the inverse of `back`). */
export function encodeOffset(distance: number): Buffer {
  const bytes = [distance & 0x7f];
  let rest = Math.floor(distance / 128);
  while (rest > 0) {
    rest -= 1;
    bytes.unshift(0x80 | (rest & 0x7f));
    rest = Math.floor(rest / 128);
  }
  return Buffer.from(bytes);
}

/**
 * zlib's output chunk for an object that declares `size` bytes: one buffer that holds it whole
 * (a byte more, so the end of the stream is seen without another chunk), within zlib's bounds.
 */
export function inflateChunkSize(size: number): number {
  return Math.min(Math.max(size + 1, zlib.constants.Z_MIN_CHUNK), 64 * 1024 * 1024);
}
