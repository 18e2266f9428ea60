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
  const ids = new DeltaResolver(objects, label, external).objectIds();
  if (!ids) return undefined;
  return writePackIndex(
    objects.map((object, i) => ({
      id: ids[i] ?? '',
      offset: object.offset,
      crc: crc32(pack.subarray(object.offset, object.end)),
    })),
    pack.subarray(pack.length - 20),
  );
}

/** The objects of one pack, deltas applied to their bases, to learn every object's id. */
class DeltaResolver {
  private readonly resolved: Array<GitObject | undefined>;
  private readonly ids: string[];
  private readonly byOffset = new Map<number, number>();
  private readonly byId = new Map<string, number>();

  constructor(
    private readonly objects: PackedObject[],
    private readonly label: string,
    private readonly external: (oid: string) => GitObject | undefined,
  ) {
    for (const [i, object] of objects.entries()) this.byOffset.set(object.offset, i);
    this.resolved = new Array<GitObject | undefined>(objects.length).fill(undefined);
    this.ids = new Array<string>(objects.length);
  }

  /** The id of every object, in pack order; undefined when a base is in neither pack nor store. */
  objectIds(): string[] | undefined {
    const {objects, resolved} = this;
    // Whole objects first, then deltas until no pass makes progress (a ref-delta's base may come
    // later in the pack).
    for (let i = 0; i < objects.length; i++) {
      const type = objects[i]?.type;
      if (type === undefined || !isDelta(type)) this.resolve(i, 0);
    }
    for (let progress = true; progress;) {
      progress = false;
      for (let i = 0; i < objects.length; i++) {
        if (!resolved[i] && this.resolve(i, 0)) progress = true;
      }
    }
    for (let i = 0; i < objects.length; i++) if (!resolved[i]) return undefined;
    // Only the ids, offsets and CRCs are needed from here on.
    resolved.length = 0;
    return this.ids;
  }

  private refuse(why: string): IntegrityError {
    return new IntegrityError(`Refused the pack received from ${this.label}: ${why}.`);
  }

  private finish(i: number, object: GitObject): void {
    this.resolved[i] = object;
    const name = TYPE_NAMES[object.type];
    if (!name) {
      throw this.refuse(
        `object at ${this.objects[i]?.offset ?? 0} has unknown type ${object.type}`,
      );
    }
    const id = objectId(name, object.data);
    this.ids[i] = id;
    this.byId.set(id, i);
  }

  /**
   * Resolve an object whose base is known (walking down ofs-delta chains); undefined while a
   * ref-delta's base is not found yet.
   */
  private resolve(i: number, depth: number): GitObject | undefined {
    const done = this.resolved[i];
    if (done) return done;
    if (depth > 10_000) throw this.refuse('a delta chain loops');
    const object = this.objects[i];
    if (!object) throw this.refuse('an object is missing');
    let base: GitObject | undefined;
    if (object.type === ObjectType.ofsDelta) {
      const at = this.byOffset.get(object.baseOffset ?? -1);
      if (at === undefined) throw this.refuse(`delta at ${object.offset} points at no object`);
      base = this.resolve(at, depth + 1);
    } else if (object.type === ObjectType.refDelta) {
      const inPack = this.byId.get(object.baseOid ?? '');
      base =
        inPack === undefined
          ? this.external(object.baseOid ?? '')
          : this.resolve(inPack, depth + 1);
    } else {
      this.finish(i, {type: object.type, data: object.data});
      return this.resolved[i];
    }
    if (!base) return undefined;
    this.finish(i, {type: base.type, data: applyDelta(base.data, object.data, this.label)});
    return this.resolved[i];
  }
}
