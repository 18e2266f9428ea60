import {createHash} from 'node:crypto';
import {closeSync, fstatSync, openSync, readSync, writeSync} from 'node:fs';
import zlib, {crc32} from 'node:zlib';
import {
  checkDeclaredSize,
  checkDeltaResult,
  inflateExactly,
  packRefuser,
  type Refuse,
} from './check.js';
import {applyDelta} from './delta.js';
import {
  isDelta,
  objectId,
  ObjectType,
  PACK_LIMITS,
  readEntryHeader,
  TYPE_NAMES,
  type GitObject,
} from './format.js';
import {writePackIndex, type IndexEntry} from './idx.js';

/**
 * Build the version 2 index (`.idx`) of a pack file received from a server, as `git index-pack`
 * does and in the same bounded way: the pack is read from disk, never held whole, and no more
 * than one chain of delta bases is held inflated at a time (capped at {@link BASE_BYTES}; bases
 * past the cap are inflated again when needed). Memory therefore does not grow with the pack or
 * with the history it carries.
 *
 * Pass one reads every entry in order: each is inflated under the caps of
 * {@link PACK_LIMITS} (a compression bomb stops at the cap), whole objects are hashed, and what
 * the pack inflates to in total is capped. Pass two applies the deltas, base first.
 *
 * A thin pack's ref-deltas name bases outside the pack; `external` reads those from the store,
 * and they are appended to the pack, as `git index-pack --fix-thin` does, so that every pack of a
 * store stands alone (native git reads it). A base in neither is refused.
 */
export function indexPackFile(
  file: string,
  label: string,
  external: (oid: string) => GitObject | undefined,
  baseBytes = BASE_BYTES,
): {index: Buffer; checksum: Buffer; objects: number; received: number; reinflated: number} {
  const fd = openSync(file, 'r+');
  try {
    const entries = readEntries(new PackFile(fd), label);
    const resolver = new DeltaResolver(new PackFile(fd), entries, label, external, baseBytes);
    resolver.resolveAll();
    const appended = resolver.externalBases();
    const checksum = appended.length > 0 ? appendBases(fd, entries, appended) : trailerOf(fd);
    const index = writePackIndex(indexEntries(entries), checksum);
    const objects = entries.count + appended.length;
    return {index, checksum, objects, received: entries.count, reinflated: resolver.reinflated};
  } finally {
    closeSync(fd);
  }
}

/** Inflated delta bases held at once beyond the chain being applied. */
export const BASE_BYTES = 64 * 1024 * 1024;

/** What pass one learns of every entry, in pack order. */
type Entries = {
  count: number;
  offsets: number[];
  ends: number[];
  dataStarts: number[];
  types: Uint8Array;
  crcs: Uint32Array;
  /** Ofs-delta: the entry index of its base; -1 otherwise. */
  bases: Int32Array;
  /** Ref-delta: the id of its base. */
  baseOids: Map<number, string>;
  /** Every entry's object id, once known. */
  ids: string[];
  /** Whole object types, for deltas once their chain is resolved. */
  objectTypes: Uint8Array;
  /** The inflated size each entry declares (for a delta, of the delta). */
  sizes: number[];
  /** Index entries of the bases appended to a thin pack. */
  extra: IndexEntry[];
};

/** Positioned reads of a pack file, through a window for the sequential first pass. */
class PackFile {
  readonly size: number;
  private window: Buffer = Buffer.alloc(0);
  private windowStart = 0;

  constructor(readonly fd: number) {
    this.size = fstatSync(fd).size;
  }

  /** Bytes [at, at + length), clipped at the end of the file. */
  bytes(at: number, length: number): Buffer {
    const end = Math.min(at + length, this.size);
    const windowEnd = this.windowStart + this.window.length;
    if (at >= this.windowStart && end <= windowEnd) {
      return this.window.subarray(at - this.windowStart, end - this.windowStart);
    }
    this.window = this.exact(at, Math.min(Math.max(end - at, 4 * 1024 * 1024), this.size - at));
    this.windowStart = at;
    return this.window.subarray(0, end - at);
  }

  /** Exactly bytes [at, at + length), read anew. */
  exact(at: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, at + done);
      if (n === 0) break;
      done += n;
    }
    return out.subarray(0, done);
  }
}

/** Pass one: every entry's place, type, CRC and base, whole objects hashed, all within the caps. */
function readEntries(pack: PackFile, label: string): Entries {
  const refuse = packRefuser(label);
  const count = checkHeader(pack, refuse);
  const entries: Entries = {
    count,
    offsets: [],
    ends: [],
    dataStarts: [],
    types: new Uint8Array(count),
    crcs: new Uint32Array(count),
    bases: new Int32Array(count).fill(-1),
    baseOids: new Map(),
    ids: new Array<string>(count),
    objectTypes: new Uint8Array(count),
    sizes: [],
    extra: [],
  };
  const byOffset = new Map<number, number>();
  const end = pack.size - 20;
  let offset = 12;
  let inflatedTotal = 0;
  for (let i = 0; i < count; i++) {
    const header = readEntryHeader(pack.bytes(offset, 64), 0, Math.min(64, end - offset));
    if (!header) throw refuse('an object header runs past the end');
    const dataStart = offset + header.dataStart;
    const {data, bytesRead} = inflateEntry(pack, dataStart, end, header.size, i, refuse);
    entries.offsets.push(offset);
    entries.dataStarts.push(dataStart);
    entries.sizes.push(header.size);
    entries.ends.push(dataStart + bytesRead);
    entries.types[i] = header.type;
    entries.crcs[i] = crc32(pack.bytes(offset, dataStart + bytesRead - offset));
    byOffset.set(offset, i);
    inflatedTotal += readBase(entries, i, header, offset, byOffset, data, refuse);
    // protection R17-total-cap: what one fetch may inflate to, in all
    if (inflatedTotal > PACK_LIMITS.maxFetchInflatedBytes) {
      throw refuse(
        `its objects inflate to more than the ${PACK_LIMITS.maxFetchInflatedBytes} bytes one fetch may hold`,
      );
    }
    offset = dataStart + bytesRead;
  }
  if (offset !== end) throw refuse('data after the last object');
  return entries;
}

/** The pack's signature, version and object count (its trailer was checked as it arrived). */
function checkHeader(pack: PackFile, refuse: Refuse): number {
  const head = pack.bytes(0, 12);
  if (pack.size < 32 || head.toString('latin1', 0, 4) !== 'PACK') throw refuse('not a git pack');
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw refuse(`pack version ${version}`);
  const count = head.readUInt32BE(8);
  if (count > PACK_LIMITS.maxObjects)
    throw refuse(`${count} objects, more than ${PACK_LIMITS.maxObjects}`);
  return count;
}

/**
 * Record entry `i`'s base (a delta) or its id (a whole object); return the bytes the object
 * inflates to, for the total cap.
 */
function readBase(
  entries: Entries,
  i: number,
  header: NonNullable<ReturnType<typeof readEntryHeader>>,
  offset: number,
  byOffset: Map<number, number>,
  data: Buffer,
  refuse: Refuse,
): number {
  if (!isDelta(header.type)) {
    const name = TYPE_NAMES[header.type];
    if (!name) throw refuse(`object at ${offset} has unknown type ${header.type}`);
    entries.ids[i] = objectId(name, data);
    entries.objectTypes[i] = header.type;
    return data.length;
  }
  const resultSize = checkDeltaResult(data, i, refuse);
  if (header.type === ObjectType.ofsDelta) {
    const base = byOffset.get(offset - (header.back ?? 0));
    if (base === undefined || !header.back)
      throw refuse(`delta at ${offset} points at no object before it`);
    entries.bases[i] = base;
  } else {
    entries.baseOids.set(i, header.baseOid ?? '');
  }
  return resultSize;
}

/**
 * The data at `dataStart` inflated to exactly `size` bytes, and how many compressed bytes it
 * took. The compressed length is not known beforehand: a window a little larger than `size` is
 * tried first (deflate rarely adds more), then larger ones.
 */
function inflateEntry(
  pack: PackFile,
  dataStart: number,
  end: number,
  size: number,
  i: number,
  refuse: Refuse,
): {data: Buffer; bytesRead: number} {
  checkDeclaredSize(size, i, refuse);
  for (let want = size + 1024 + Math.ceil(size / 8); ; want *= 4) {
    const input = pack.bytes(dataStart, Math.min(want, end - dataStart));
    try {
      return inflateExactly(input, size);
    } catch (error) {
      const truncated = (error as {code?: string}).code === 'Z_BUF_ERROR';
      if (truncated && dataStart + input.length < end) continue;
      throw refuse(
        `object ${i + 1} does not inflate to its declared ${size} bytes (${(error as Error).message})`,
      );
    }
  }
}

/** One object on the chain being resolved: its data (unless dropped) and the deltas on it. */
type Frame = {entry: number; data: Buffer | undefined; children: number[]; next: number};

/** Pass two: the deltas applied, each chain from its base, to learn every object's id. */
class DeltaResolver {
  private readonly refuse: Refuse;
  private readonly ofsChildren = new Map<number, number[]>();
  private readonly refChildren = new Map<string, number[]>();
  private readonly external: GitObject[] = [];
  private readonly externalIds: string[] = [];
  /** Bases let go under the cap and inflated again. */
  reinflated = 0;

  constructor(
    private readonly pack: PackFile,
    private readonly entries: Entries,
    private readonly label: string,
    private readonly readExternal: (oid: string) => GitObject | undefined,
    private readonly baseBytes: number,
  ) {
    this.refuse = packRefuser(label);
    for (let i = 0; i < entries.count; i++) {
      const base = entries.bases[i] ?? -1;
      if (base >= 0) push(this.ofsChildren, base, i);
    }
    for (const [i, oid] of entries.baseOids) push(this.refChildren, oid, i);
  }

  resolveAll(): void {
    const {entries} = this;
    for (let i = 0; i < entries.count; i++) {
      if (!isDelta(entries.types[i] ?? 0) && this.hasChildren(i)) this.resolveChain(i);
    }
    // What is left waits on bases outside the pack (a thin pack): from the store.
    for (const oid of [...this.refChildren.keys()]) {
      const base = this.readExternal(oid);
      if (!base) {
        throw this.refuse(`a delta's base ${oid} is neither in the pack nor in this store`);
      }
      this.external.push(base);
      this.externalIds.push(oid);
      this.resolveChain(-1, base);
    }
    for (let i = 0; i < entries.count; i++) {
      if (!entries.ids[i]) throw this.refuse(`delta ${i + 1} has no base (its chain loops)`);
    }
  }

  /** The bases read from the store, to append to the pack. */
  externalBases(): Array<GitObject & {id: string}> {
    return this.external.map((object, k) => ({...object, id: this.externalIds[k] ?? ''}));
  }

  private hasChildren(i: number): boolean {
    return this.ofsChildren.has(i) || this.refChildren.has(this.entries.ids[i] ?? '');
  }

  /** The deltas on entry `i` (id `id`); its ref-deltas are taken from the waiting list. */
  private childrenOf(i: number, id: string): number[] {
    const byRef = this.refChildren.get(id) ?? [];
    this.refChildren.delete(id);
    return [...(i >= 0 ? (this.ofsChildren.get(i) ?? []) : []), ...byRef];
  }

  /**
   * Apply every delta that rests, directly or down a chain, on entry `root` (or on `outside`, a
   * base from the store). A base whose last delta is applied is let go; past BASE_BYTES held,
   * the lowest bases are let go and inflated again if another delta needs them.
   */
  private resolveChain(root: number, outside?: GitObject): void {
    const type = outside ? outside.type : (this.entries.objectTypes[root] ?? 0);
    const rootId = outside ? (this.externalIds.at(-1) ?? '') : (this.entries.ids[root] ?? '');
    const stack: Frame[] = [
      {entry: root, data: outside?.data ?? this.inflate(root), children: [], next: 0},
    ];
    (stack[0] as Frame).children = this.childrenOf(root, rootId);
    let held = stack[0]?.data?.length ?? 0;
    while (stack.length > 0) {
      const top = stack.at(-1) as Frame;
      if (top.next >= top.children.length) {
        held -= top.data?.length ?? 0;
        stack.pop();
        continue;
      }
      if (stack.length > 10_000) throw this.refuse('a delta chain is deeper than 10,000');
      const child = top.children[top.next++] as number;
      const base = top.data ?? this.rebuild(stack, stack.length - 1, outside);
      const data = applyDelta(base, this.inflate(child), this.label);
      if (top.next >= top.children.length && top.data) {
        held -= top.data.length;
        top.data = undefined;
      }
      const id = this.finish(child, type, data);
      const children = this.childrenOf(child, id);
      if (children.length === 0) continue;
      stack.push({entry: child, data, children, next: 0});
      held += data.length;
      for (let k = 0; held > this.baseBytes && k < stack.length - 1; k++) {
        const frame = stack[k] as Frame;
        held -= frame.data?.length ?? 0;
        frame.data = undefined;
      }
    }
  }

  /** The data of the object on frame `k`, let go earlier: from the nearest base still held. */
  private rebuild(stack: Frame[], k: number, outside: GitObject | undefined): Buffer {
    this.reinflated++;
    let j = k;
    while (j > 0 && !stack[j]?.data) j--;
    let data = stack[j]?.data ?? (outside ? outside.data : this.inflate(stack[0]?.entry ?? 0));
    for (let m = j + 1; m <= k; m++) {
      data = applyDelta(data, this.inflate(stack[m]?.entry ?? 0), this.label);
    }
    return data;
  }

  private finish(i: number, type: number, data: Buffer): string {
    const name = TYPE_NAMES[type];
    if (!name) throw this.refuse(`object ${i + 1} has unknown type ${type}`);
    const id = objectId(name, data);
    this.entries.ids[i] = id;
    this.entries.objectTypes[i] = type;
    return id;
  }

  /** Entry `i`'s inflated data (for a delta, the delta), read again from the pack. */
  private inflate(i: number): Buffer {
    const {dataStarts, ends} = this.entries;
    const start = dataStarts[i] ?? 0;
    const input = this.pack.exact(start, (ends[i] ?? 0) - start);
    return inflateExactly(input, this.entries.sizes[i] ?? 0).data;
  }
}

function push<K>(map: Map<K, number[]>, key: K, value: number): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** The pack's trailer: the checksum of everything before it. */
function trailerOf(fd: number): Buffer {
  const size = fstatSync(fd).size;
  const out = Buffer.alloc(20);
  readSync(fd, out, 0, 20, size - 20);
  return out;
}

/**
 * Append `bases` to the pack as whole objects (the trailer overwritten), count them in its
 * header, and write the new trailer; their index entries join `entries`. Returns the new trailer.
 */
function appendBases(fd: number, entries: Entries, bases: Array<GitObject & {id: string}>): Buffer {
  let at = fstatSync(fd).size - 20;
  for (const base of bases) {
    const body = Buffer.concat([
      entryHeader(base.type, base.data.length),
      zlib.deflateSync(base.data),
    ]);
    writeSync(fd, body, 0, body.length, at);
    entries.extra.push({id: base.id, offset: at, crc: crc32(body)});
    at += body.length;
  }
  const count = Buffer.alloc(4);
  count.writeUInt32BE(entries.count + bases.length);
  writeSync(fd, count, 0, 4, 8);
  const hash = createHash('sha1');
  const chunk = Buffer.allocUnsafe(1024 * 1024);
  for (let pos = 0; pos < at;) {
    const n = readSync(fd, chunk, 0, Math.min(chunk.length, at - pos), pos);
    hash.update(chunk.subarray(0, n));
    pos += n;
  }
  const trailer = hash.digest();
  writeSync(fd, trailer, 0, 20, at);
  return trailer;
}

/** A pack entry's type-and-size header. */
function entryHeader(type: number, size: number): Buffer {
  const bytes: number[] = [];
  let byte = (type << 4) | (size & 15);
  for (let rest = Math.floor(size / 16); rest > 0; rest = Math.floor(rest / 128)) {
    bytes.push(byte | 0x80);
    byte = rest & 0x7f;
  }
  bytes.push(byte);
  return Buffer.from(bytes);
}

function indexEntries(entries: Entries): IndexEntry[] {
  const out: IndexEntry[] = [];
  for (let i = 0; i < entries.count; i++) {
    out.push({
      id: entries.ids[i] ?? '',
      offset: entries.offsets[i] ?? 0,
      crc: entries.crcs[i] ?? 0,
    });
  }
  return [...out, ...entries.extra];
}
