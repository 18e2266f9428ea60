import {createHash} from 'node:crypto';
import {closeSync, fsyncSync, openSync, promises as fsp, rmSync, writeSync} from 'node:fs';
import path from 'node:path';
import {crc32} from 'node:zlib';
import {IntegrityError} from '../../support/errors.js';
import {fsyncDir} from '../../support/fs.js';
import {encodeOffset, ObjectType, readEntryHeader, typeAndSizeLength} from './format.js';
import {writePackIndex, type IndexEntry} from './idx.js';
import {openPack, readEntryBytes, type Pack} from './reader.js';

/** A store is consolidated once it holds this many packs (one is added per fetch). */
export const CONSOLIDATE_AT_PACKS = 16;

const PACK_NAME = /^pack-[0-9a-f]{40}\.idx$/;
/** Left by a consolidation that was killed before it finished. */
const TEMP_PACK = /^tmp-consolidate-/;

/**
 * Merge every pack of the store at `gitdir` into one, when it holds at least `atPacks`: each
 * fetch adds a pack, and every object lookup (ours and isomorphic-git's) goes through all of
 * them, so a node that has deployed for months would otherwise slow down with every deploy.
 *
 * Entries are copied as they are (compressed data untouched; an ofs-delta gets its base's new
 * offset), each object once, so nothing is inflated or recompressed; the new index is built from
 * the ids the old indexes give. The new pack and index are written and synced before the old
 * ones are removed (index first): a run killed at any point leaves a store that reads the same.
 * Returns what was merged, or undefined when there was nothing to do.
 */
export async function consolidatePacks(
  gitdir: string,
  atPacks = CONSOLIDATE_AT_PACKS,
): Promise<{packs: number; objects: number} | undefined> {
  const dir = path.join(gitdir, 'objects', 'pack');
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return undefined;
  }
  for (const name of names.filter(n => TEMP_PACK.test(n))) {
    await fsp.rm(path.join(dir, name), {force: true});
  }
  const idxNames = names.filter(n => PACK_NAME.test(n)).sort();
  if (idxNames.length < atPacks) return undefined;

  const packs: Pack[] = [];
  try {
    for (const name of idxNames) {
      packs.push(openPack(path.join(dir, name), path.join(dir, name.replace(/\.idx$/, '.pack'))));
    }
    const {file, checksum, entries} = writeMergedPack(dir, packs);
    const base = `pack-${checksum.toString('hex')}`;
    const index = writePackIndex(entries, checksum);
    const idxTemp = path.join(dir, `tmp-consolidate-${process.pid}.idx`);
    const fd = openSync(idxTemp, 'wx', 0o444);
    try {
      writeSync(fd, index);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // The pack before its index: a store never lists an index whose pack is missing.
    await fsp.rename(file, path.join(dir, `${base}.pack`));
    await fsp.rename(idxTemp, path.join(dir, `${base}.idx`));
    await fsyncDir(dir);
    for (const pack of packs) {
      const old = path.basename(pack.file, '.pack');
      if (old === base) continue;
      await fsp.rm(path.join(dir, `${old}.idx`), {force: true});
      await fsp.rm(path.join(dir, `${old}.pack`), {force: true});
    }
    await fsyncDir(dir);
    return {packs: packs.length, objects: entries.length};
  } finally {
    for (const pack of packs) closeSync(pack.fd);
  }
}

/** Write every object of `packs` once into a temp pack in `dir`; its checksum and index entries. */
function writeMergedPack(
  dir: string,
  packs: Pack[],
): {file: string; checksum: Buffer; entries: IndexEntry[]} {
  const idAt = packs.map(idsByOffset);
  const distinct = new Set<string>();
  for (const map of idAt) for (const id of map.values()) distinct.add(id);

  const file = path.join(dir, `tmp-consolidate-${process.pid}.pack`);
  const out = new PackFileWriter(file);
  const newOffset = new Map<string, number>();
  const entries: IndexEntry[] = [];
  let failed = false;
  try {
    const header = Buffer.alloc(12);
    header.write('PACK', 0, 'latin1');
    header.writeUInt32BE(2, 4);
    header.writeUInt32BE(distinct.size, 8);
    out.write(header);
    for (const [p, pack] of packs.entries()) {
      for (const offset of pack.sorted) {
        const id = idAt[p]?.get(offset);
        if (!id) throw new IntegrityError(`${pack.file}: no index entry for offset ${offset}.`);
        if (newOffset.has(id)) continue;
        const entry = relocatedEntry(pack, offset, idAt[p], newOffset, out.position);
        newOffset.set(id, out.position);
        entries.push({id, offset: out.position, crc: crc32(entry)});
        out.write(entry);
      }
    }
    if (entries.length !== distinct.size) {
      throw new IntegrityError(`Merged ${entries.length} objects of ${distinct.size}.`);
    }
    return {file, checksum: out.finish(), entries};
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    out.close();
    if (failed) rmSync(file, {force: true});
  }
}

/** Which id sits at each offset of a pack. */
function idsByOffset(pack: Pack): Map<number, string> {
  const map = new Map<number, string>();
  for (let i = 0; i < pack.count; i++) {
    map.set(pack.offsets[i] ?? 0, pack.ids.toString('hex', i * 20, i * 20 + 20));
  }
  return map;
}

/**
 * The entry at `offset` as it goes into the new pack at `position`: as it was, or, for an
 * ofs-delta, with the distance to its base (already copied, at `newOffset`) rewritten.
 */
function relocatedEntry(
  pack: Pack,
  offset: number,
  ids: Map<number, string> | undefined,
  newOffset: Map<string, number>,
  position: number,
): Buffer {
  const raw = readEntryBytes(pack, offset);
  const entryHeader = readEntryHeader(raw, 0, raw.length);
  if (!entryHeader) throw new IntegrityError(`${pack.file}: a damaged entry header.`);
  if (entryHeader.type !== ObjectType.ofsDelta) return raw;
  const baseId = ids?.get(offset - (entryHeader.back ?? 0));
  const base = baseId === undefined ? undefined : newOffset.get(baseId);
  if (base === undefined) {
    throw new IntegrityError(`${pack.file}: the delta at ${offset} has no base before it.`);
  }
  // The type-and-size bytes, the base's distance in the new pack, the data as it was.
  const sizeBytes = typeAndSizeLength(raw);
  return Buffer.concat([
    raw.subarray(0, sizeBytes),
    encodeOffset(position - base),
    raw.subarray(entryHeader.dataStart),
  ]);
}

/** A pack file written front to back, hashed as it goes; `finish` appends the trailer. */
class PackFileWriter {
  position = 0;
  private readonly fd: number;
  private readonly hash = createHash('sha1');

  constructor(file: string) {
    this.fd = openSync(file, 'wx', 0o444);
  }

  write(data: Buffer): void {
    let done = 0;
    while (done < data.length) {
      done += writeSync(this.fd, data, done, data.length - done, this.position + done);
    }
    this.hash.update(data);
    this.position += data.length;
  }

  /** The sha1 of everything written, appended as the pack's trailer and synced; returned. */
  finish(): Buffer {
    const checksum = this.hash.digest();
    let done = 0;
    while (done < 20) done += writeSync(this.fd, checksum, done, 20 - done, this.position + done);
    fsyncSync(this.fd);
    return checksum;
  }

  close(): void {
    closeSync(this.fd);
  }
}
