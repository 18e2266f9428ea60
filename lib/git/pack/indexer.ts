import {crc32} from 'node:zlib';
import {IntegrityError} from '../../support/errors.js';
import {walkPack, type PackedObject} from './check.js';
import {applyDelta} from './delta.js';
import {isDelta, objectId, ObjectType, TYPE_NAMES, type GitObject} from './format.js';
import {writePackIndex} from './idx.js';

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
    const id = objectId(name, object.data);
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
    if (object.type === ObjectType.ofsDelta) {
      const at = byOffset.get(object.baseOffset ?? -1);
      if (at === undefined) throw refuse(`delta at ${object.offset} points at no object`);
      base = resolve(at, depth + 1);
    } else if (object.type === ObjectType.refDelta) {
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
    if (type === undefined || !isDelta(type)) resolve(i, 0);
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
