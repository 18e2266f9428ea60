import git, {Errors} from 'isomorphic-git';
import {IntegrityError} from '../support/errors.js';
import {ObjectType, TYPE_NAMES, typeNumber, type GitObject} from './pack/format.js';
import {PackReader} from './pack/reader.js';
import type {GitStore} from './store.js';

/** One entry of a tree object, as git stores it (a tree's mode normalised to `040000`). */
export type TreeEntry = {mode: string; path: string; oid: string};

/**
 * Reads a store's objects for listing and writing trees: from its packs through
 * {@link PackReader} (native zlib, every object hashed against its id), and anything the packs do
 * not hold (loose objects) through isomorphic-git. The caller must close() it.
 */
export class ObjectReader {
  private constructor(
    private readonly store: GitStore,
    private readonly packs: PackReader,
  ) {}

  /** Open a reader over the packs `store` holds now (packs added later are not seen). */
  static open(store: GitStore): ObjectReader {
    return new ObjectReader(store, PackReader.open(store.gitdir, store.packIndexes));
  }

  close(): void {
    this.packs.close();
  }

  /** Object `oid`; an isomorphic-git NotFoundError when the store does not hold it. */
  async read(oid: string): Promise<GitObject> {
    const packed = this.packs.readObject(oid);
    if (packed) return packed;
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- the one call that reads an object of any type
    const loose = await git.readObject({
      fs: this.store.fs,
      gitdir: this.store.gitdir,
      cache: this.store.cache,
      oid,
      format: 'content',
    });
    const data = loose.object as Uint8Array;
    return {
      type: typeNumber(loose.type),
      data: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
    };
  }

  /** The tree commit `oid` points at. */
  async commitTree(oid: string): Promise<string> {
    const object = await this.read(oid);
    if (object.type !== ObjectType.commit) {
      throw new Errors.ObjectTypeError(oid, TYPE_NAMES[object.type] as 'blob', 'commit');
    }
    const match = /^tree ([0-9a-f]{40})\n/.exec(object.data.toString('latin1', 0, 46));
    if (!match?.[1]) throw new IntegrityError(`Commit ${oid} has no tree line.`);
    return match[1];
  }

  /** The entries of tree `oid`, in the order git stores them. */
  async tree(oid: string): Promise<TreeEntry[]> {
    const object = await this.read(oid);
    if (object.type !== ObjectType.tree) {
      throw new Errors.ObjectTypeError(oid, TYPE_NAMES[object.type] as 'blob', 'tree');
    }
    return parseTree(object.data, oid);
  }

  /**
   * The entry at `filepath` (slash-separated) under tree `treeOid`, or undefined when there is
   * none (a missing directory on the way included).
   */
  async entryAt(treeOid: string, filepath: string): Promise<TreeEntry | undefined> {
    const parts = filepath.split('/').filter(part => part !== '' && part !== '.');
    let current = treeOid;
    let found: TreeEntry | undefined;
    for (const [i, part] of parts.entries()) {
      found = (await this.tree(current)).find(entry => entry.path === part);
      if (!found) return undefined;
      if (i < parts.length - 1) {
        if (found.mode !== '040000') return undefined;
        current = found.oid;
      }
    }
    return found;
  }
}

/**
 * Parse a tree object: entries of `<mode> <name>\0<20-byte id>`. A truncated or malformed entry
 * is an error, as is a name with a path separator (checked again, with the rest of the name
 * rules, where the tree is listed).
 */
export function parseTree(data: Buffer, oid: string): TreeEntry[] {
  const bad = (why: string) => new IntegrityError(`Tree ${oid} is corrupt: ${why}.`);
  const entries: TreeEntry[] = [];
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) throw bad(`no space after the mode at byte ${at}`);
    const nul = data.indexOf(0, space + 1);
    if (nul === -1) throw bad(`no NUL after the name at byte ${space + 1}`);
    if (nul + 21 > data.length) throw bad('the last entry is cut short');
    let mode = data.toString('latin1', at, space);
    if (mode === '40000') mode = '040000';
    if (!/^[0-7]{6}$/.test(mode)) throw bad(`the mode "${mode}" is not octal`);
    const name = data.toString('utf8', space + 1, nul);
    if (name.includes('/') || name.includes('\\')) {
      throw bad(`the name ${JSON.stringify(name)} contains a path separator`);
    }
    entries.push({mode, path: name, oid: data.toString('hex', nul + 1, nul + 21)});
    at = nul + 21;
  }
  return entries;
}
