import {IntegrityError} from '../../support/errors.js';
import {PACK_LIMITS} from './format.js';

/**
 * Git's delta encoding (gitformat-pack(5), "Deltified representation"): two sizes, then copy
 * instructions (a range of the base) and insert instructions (literal bytes).
 */

/**
 * The two sizes a delta starts with: of the base it applies to, of the object it makes; and where
 * its instructions start.
 */
export function readDeltaSizes(delta: Buffer): {baseSize: number; resultSize: number; at: number} {
  let at = 0;
  const varint = () => {
    let value = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = delta[at++] ?? 0;
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80 && at < delta.length);
    return value;
  };
  const baseSize = varint();
  const resultSize = varint();
  return {baseSize, resultSize, at};
}

/**
 * The object `delta` makes from `base`. Every instruction is bounds-checked against the base and
 * the declared result size, so a corrupt delta is an IntegrityError naming `file`, never a read
 * outside either buffer.
 */
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
