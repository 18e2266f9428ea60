import {closeSync, fstatSync, openSync, readdirSync, readSync} from 'node:fs';
import path from 'node:path';
import {inflateSync} from 'node:zlib';
import {IntegrityError} from '../../support/errors.js';
import {applyDelta} from './delta.js';
import {
  inflateChunkSize,
  isDelta,
  objectId,
  ObjectType,
  PACK_LIMITS,
  readEntryHeader,
  TYPE_NAMES,
  type GitObject,
} from './format.js';
import {entryEnd, findOffset, PackIndexCache, type PackIndex} from './idx.js';

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

  /**
   * Open every pack of `gitdir`, their indexes parsed through `indexes` (the store's, so that
   * opening again does not parse them again); the caller must close() the reader.
   */
  static open(gitdir: string, indexes = new PackIndexCache()): PackReader {
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
        packs.push(openPack(path.join(dir, name), packFile, indexes));
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
    if (object && object.type !== ObjectType.blob) {
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
    if (objectId(name, object.data) !== oid) {
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
      const offset = findOffset(pack, want);
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
    if (isDelta(type)) {
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

const MAX_DELTA_DEPTH = 4096;
const BASE_CACHE_ENTRIES = 512;

export type Pack = PackIndex & {id: number; file: string; fd: number; size: number};

let packIds = 0;

/** Open the pack `packFile` with its index `idxFile` (parsed through `indexes`). */
export function openPack(idxFile: string, packFile: string, indexes = new PackIndexCache()): Pack {
  const index = indexes.read(idxFile);
  const fd = openSync(packFile, 'r');
  return {...index, id: packIds++, file: packFile, fd, size: fstatSync(fd).size};
}

/** The bytes of the pack entry at `offset`, up to where the next one starts. */
export function readEntryBytes(pack: Pack, offset: number): Buffer {
  const raw = Buffer.allocUnsafe(entryEnd(pack, offset, pack.size) - offset);
  let got = 0;
  while (got < raw.length) {
    const n = readSync(pack.fd, raw, got, raw.length - got, offset + got);
    if (n === 0) throw new IntegrityError(`${pack.file} ends inside an object.`);
    got += n;
  }
  return raw;
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
