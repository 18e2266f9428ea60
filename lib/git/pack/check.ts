import {createHash} from 'node:crypto';
import zlib from 'node:zlib';
import {IntegrityError} from '../../support/errors.js';
import {readDeltaSizes} from './delta.js';
import {inflateChunkSize, isDelta, PACK_LIMITS, readEntryHeader} from './format.js';

/**
 * Check a pack before isomorphic-git indexes it (which inflates every object into memory): the
 * trailer checksum must match, and no object may inflate, or declare through a delta that it
 * inflates, past PACK_LIMITS.maxObjectBytes. Each object is inflated here with that cap, so a
 * compression bomb stops at the cap instead of at the end of the node's memory.
 */
export function checkPack(data: Uint8Array, label: string): void {
  walkPack(data, label);
}

/** One object of a pack as {@link walkPack} finds it. */
export type PackedObject = {
  /** Where its entry starts in the pack, and where the next one starts. */
  offset: number;
  end: number;
  type: number;
  /** The inflated data: the object itself, or for a delta the delta. */
  data: Buffer;
  /** For an ofs-delta, the offset of its base; for a ref-delta, the id of its base. */
  baseOffset?: number;
  baseOid?: string;
};

/**
 * Check a pack as {@link checkPack} does, handing each object, inflated, to `visit`.
 */
export function walkPack(
  data: Uint8Array,
  label: string,
  visit?: (object: PackedObject) => void,
): void {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const refuse = packRefuser(label);
  const count = checkFraming(buf, refuse);
  const end = buf.length - 20;
  let offset = 12;
  for (let i = 0; i < count; i++) {
    const object = readObject(buf, offset, end, i, refuse);
    offset = object.end;
    visit?.(object);
  }
  if (offset !== end) throw refuse('data after the last object');
}

export type Refuse = (why: string) => IntegrityError;

/** How a pack is refused: what is wrong with it, and that nothing was stored. */
export function packRefuser(label: string): Refuse {
  return (why: string) =>
    new IntegrityError(
      `Refused the pack received from ${label}: ${why}.`,
      'Nothing was stored. Check the repository and the server, then run again.',
    );
}

/** Refuse object `i` declaring more than PACK_LIMITS.maxObjectBytes, before it is inflated. */
export function checkDeclaredSize(size: number, i: number, refuse: Refuse): void {
  const max = PACK_LIMITS.maxObjectBytes;
  // protection R17-size-cap: the object size cap, checked before a pack is stored
  if (size > max)
    throw refuse(`object ${i + 1} declares ${size} bytes, more than the ${max} allowed`);
}

/** Refuse delta `i` whose result would be larger than PACK_LIMITS.maxObjectBytes; its size. */
export function checkDeltaResult(delta: Buffer, i: number, refuse: Refuse): number {
  const max = PACK_LIMITS.maxObjectBytes;
  const {resultSize} = readDeltaSizes(delta);
  if (resultSize > max)
    throw refuse(
      `delta ${i + 1} would make an object of ${resultSize} bytes, more than the ${max} allowed`,
    );
  return resultSize;
}

/**
 * `input` inflated to exactly `size` bytes (never more: zlib stops at the cap), and how many
 * input bytes it took. Throws zlib's error (`Z_BUF_ERROR` when the input ends too soon).
 */
export function inflateExactly(input: Buffer, size: number): {data: Buffer; bytesRead: number} {
  const inflated = zlib.inflateSync(input, {
    info: true,
    maxOutputLength: Math.max(size, 1),
    // One output buffer of the declared size (and a byte to see the end), not 16 KiB ones.
    chunkSize: inflateChunkSize(size),
  }) as unknown as {buffer: Buffer; engine: {bytesWritten: number}};
  if (inflated.buffer.length !== size) {
    throw new Error(`it inflates to ${inflated.buffer.length} bytes`);
  }
  return {data: inflated.buffer, bytesRead: inflated.engine.bytesWritten};
}

/** The pack's signature, version, trailer checksum and object count; the count. */
function checkFraming(buf: Buffer, refuse: Refuse): number {
  if (buf.length < 32 || buf.toString('latin1', 0, 4) !== 'PACK') throw refuse('not a git pack');
  const version = buf.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw refuse(`pack version ${version}`);
  const trailer = buf.subarray(buf.length - 20);
  const digest = createHash('sha1')
    .update(buf.subarray(0, buf.length - 20))
    .digest();
  // protection R30-trailer: the pack trailer must match its content
  if (!digest.equals(trailer))
    throw refuse('its checksum does not match (truncated or damaged in transit)');
  const count = buf.readUInt32BE(8);
  if (count > PACK_LIMITS.maxObjects)
    throw refuse(`${count} objects, more than ${PACK_LIMITS.maxObjects}`);
  return count;
}

/** Object `i`, whose entry starts at `start`: its header checked, inflated within the caps. */
function readObject(
  buf: Buffer,
  start: number,
  end: number,
  i: number,
  refuse: Refuse,
): PackedObject {
  const header = readEntryHeader(buf, start, end);
  if (!header) throw refuse('an object header runs past the end');
  const {type, size} = header;
  const baseOffset = header.back === undefined ? undefined : start - header.back;
  if (baseOffset !== undefined && baseOffset < 12)
    throw refuse(`delta ${i + 1} points before the start of the pack`);
  const baseOid = header.baseOid;
  checkDeclaredSize(size, i, refuse);
  let inflated;
  try {
    inflated = inflateExactly(buf.subarray(header.dataStart, end), size);
  } catch (error) {
    throw refuse(
      `object ${i + 1} does not inflate to its declared ${size} bytes (${(error as Error).message})`,
    );
  }
  if (isDelta(type)) checkDeltaResult(inflated.data, i, refuse);
  return {
    offset: start,
    end: header.dataStart + inflated.bytesRead,
    type,
    data: inflated.data,
    ...(baseOffset === undefined ? {} : {baseOffset}),
    ...(baseOid === undefined ? {} : {baseOid}),
  };
}
