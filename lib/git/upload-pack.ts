import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {Errors, type HttpClient} from 'isomorphic-git';
import {ServerRefusal, SourceError} from '../support/errors.js';
import {fsyncDir} from '../support/fs.js';
import {redact} from '../support/redact.js';
import {TOOL_NAME, TOOL_VERSION} from '../support/version.js';
import {IncomingPack} from './pack/incoming.js';
import {indexPackFile} from './pack/indexer.js';
import {PackReader} from './pack/reader.js';
import type {GitStore} from './store.js';

/**
 * One git smart-HTTP fetch (protocol v1, stateless): POST the wants and haves to
 * `<url>/git-upload-pack` and read the side-band answer. isomorphic-git's fetch does the same but
 * insists on resolving the server's HEAD, which fails on every repository whose HEAD names a
 * branch that does not exist (a bare repository made with `master` and pushed only `main`), and it
 * drops what the server says when it refuses. Here only the objects asked for matter, and every
 * `ERR` line or side-band error the server sends is kept for the error message.
 */

export type UploadPackRequest = {
  http: HttpClient;
  url: string;
  /** Capabilities the server advertised. */
  capabilities: ReadonlySet<string>;
  wants: readonly string[];
  haves: readonly string[];
  /** The Authorization header the server accepted for its refs, if it asked for one. */
  authorization?: string | undefined;
  /**
   * Ask for history only this many commits deep from the wants (`deepen`): 1 brings the trees at
   * the wanted commits and nothing older. {@link FULL_DEPTH} asks a shallow store for the rest.
   */
  depth?: number | undefined;
  /** The commits whose parents the store lacks (its `shallow` file), sent so the server knows. */
  shallow?: readonly string[] | undefined;
};

/** What git sends as the depth of `fetch --unshallow`: all the history there is. */
export const FULL_DEPTH = 0x7fffffff;

/** What a fetch brought: how the store's shallow boundary moves (the pack went to `receive`). */
export type UploadPackResult = {
  /** Commits now present whose parents are not. */
  shallow: string[];
  /** Commits that were shallow and whose parents are now present. */
  unshallow: string[];
};

const FLUSH = Buffer.from('0000');

function pktLine(text: string): Buffer {
  const body = Buffer.from(text);
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, '0')), body]);
}

/** The request body: wants (the first with our capabilities), a flush, haves, done. */
export function uploadPackBody(request: UploadPackRequest): Buffer {
  const deepen = request.depth !== undefined && request.capabilities.has('shallow');
  // thin-pack: without it a server answering a shallow fetch sends the whole tree again, not
  // only what changed (git 2.39); the bases it leaves out are added back when the pack is stored.
  const wanted = ['side-band-64k', 'ofs-delta', 'thin-pack'].filter(c =>
    request.capabilities.has(c),
  );
  if (!wanted.includes('side-band-64k') && request.capabilities.has('side-band')) {
    wanted.unshift('side-band');
  }
  if (!wanted.some(c => c.startsWith('side-band'))) {
    throw new SourceError(
      `${redact(request.url)} does not offer side-band, which a fetch needs.`,
      'Serve the repository with git http-backend or a forge (every git since 1.6 offers it).',
    );
  }
  const caps = [...wanted, `agent=${TOOL_NAME}/${TOOL_VERSION}`].join(' ');
  const lines = request.wants.map((oid, i) => pktLine(`want ${oid}${i === 0 ? ` ${caps}` : ''}\n`));
  // A server told of none of the store's shallow commits would take their parents as present.
  if (request.capabilities.has('shallow')) {
    for (const oid of request.shallow ?? []) lines.push(pktLine(`shallow ${oid}\n`));
  }
  if (deepen) lines.push(pktLine(`deepen ${request.depth}\n`));
  return Buffer.concat([
    ...lines,
    FLUSH,
    ...request.haves.map(oid => pktLine(`have ${oid}\n`)),
    pktLine('done\n'),
  ]);
}

/** A request body as isomorphic-git's HttpClient type has it: an async iterator. */
// eslint-disable-next-line @typescript-eslint/require-await -- one buffer, nothing to wait for
async function* once(data: Buffer): AsyncIterableIterator<Uint8Array> {
  yield data;
}

/** Send the request; the pack the server sends goes to `receive`, chunk by chunk. */
export async function uploadPack(
  request: UploadPackRequest,
  receive: (chunk: Buffer) => void,
): Promise<UploadPackResult> {
  const res = await request.http.request({
    url: `${request.url}/git-upload-pack`,
    method: 'POST',
    headers: {
      'content-type': 'application/x-git-upload-pack-request',
      accept: 'application/x-git-upload-pack-result',
      ...(request.authorization ? {authorization: request.authorization} : {}),
    },
    body: once(uploadPackBody(request)),
  });
  if (res.statusCode !== 200) {
    const text: Buffer[] = [];
    for await (const chunk of res.body ?? []) if (text.length < 16) text.push(Buffer.from(chunk));
    throw new Errors.HttpError(res.statusCode, res.statusMessage, Buffer.concat(text).toString());
  }
  return readResponse(res.body ?? [], request.url, receive);
}

/**
 * Read the answer: ACK/NAK lines, then side-band packets (1 pack data, 2 progress, 3 a fatal
 * error) up to a flush. An `ERR` line, or band 3, ends the fetch with the server's words; the
 * last error lines of band 2 (what pack-objects printed) go with them.
 */
async function readResponse(
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  url: string,
  receive: (chunk: Buffer) => void,
): Promise<UploadPackResult> {
  const progress: string[] = [];
  const result: UploadPackResult = {shallow: [], unshallow: []};
  let sideband = false;
  for await (const line of pktLines(body, url)) {
    if (line === undefined) {
      if (sideband) break;
      continue;
    }
    const text = line.toString('utf8', 0, Math.min(line.length, 4));
    if (!sideband && text === 'ERR ') throw new ServerRefusal(line.toString('utf8', 4).trim(), url);
    if (!sideband && (text.startsWith('NAK') || text.startsWith('ACK'))) {
      sideband = true;
      continue;
    }
    if (!sideband) {
      readShallowLine(line.toString('latin1').trim(), result, url);
      continue;
    }
    const band = line[0];
    if (band === 1) receive(line.subarray(1));
    else if (band === 2) keepErrorLines(progress, line.subarray(1).toString('utf8'));
    else if (band === 3) {
      const words = [...progress, line.subarray(1).toString('utf8').trim()].join('; ');
      throw new ServerRefusal(words, url);
    }
  }
  return result;
}

/** A `shallow <oid>` or `unshallow <oid>` line of the shallow-update section, kept in `result`. */
function readShallowLine(text: string, result: UploadPackResult, url: string): void {
  const match = /^(shallow|unshallow) (\S+)$/.exec(text);
  if (!match) return;
  const oid = match[2] ?? '';
  if (!/^[0-9a-f]{40}$/.test(oid)) {
    throw new SourceError(`${redact(url)} sent a malformed shallow line in its fetch response.`);
  }
  (match[1] === 'shallow' ? result.shallow : result.unshallow).push(oid);
}

function keepErrorLines(kept: string[], text: string): void {
  for (const line of text.split(/[\r\n]+/)) {
    const trimmed = line.replace(/^remote:\s*/, '').trim();
    if (/^(fatal|error):/i.test(trimmed)) kept.push(trimmed);
  }
  kept.splice(0, Math.max(0, kept.length - 3));
}

/** pkt-lines of `body`: each line's payload, undefined for a flush. */
export async function* pktLines(
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  url: string,
): AsyncGenerator<Buffer | undefined> {
  let buffer = Buffer.alloc(0);
  for await (const chunk of body) {
    buffer = buffer.length === 0 ? Buffer.from(chunk) : Buffer.concat([buffer, chunk]);
    while (buffer.length >= 4) {
      // Exactly four hex digits: parseInt alone would take "-004" or "0x1f" and never advance.
      const digits = buffer.toString('latin1', 0, 4);
      const length = /^[0-9a-fA-F]{4}$/.test(digits) ? Number.parseInt(digits, 16) : -1;
      if (length < 0 || (length > 0 && length < 4)) {
        throw new SourceError(`${redact(url)} sent a malformed fetch response.`);
      }
      if (length === 0) {
        buffer = buffer.subarray(4);
        yield undefined;
        continue;
      }
      if (buffer.length < length) break;
      yield buffer.subarray(4, length);
      buffer = buffer.subarray(length);
    }
  }
  if (buffer.length > 0) {
    throw new SourceError(`${redact(url)} ended the fetch response in the middle of a line.`);
  }
}

/**
 * Fetch into `store`: the request's pack is written to a file as it arrives (never held in
 * memory), then checked and indexed from disk by lib/git/pack/indexer.ts under the caps of
 * lib/git/pack/format.ts, and only then given its name. Returns the pack's path relative to the
 * gitdir (undefined when the server sent no objects), and the shallow boundary's moves.
 */
export async function fetchPack(
  store: GitStore,
  request: UploadPackRequest,
  progress?: (status: string) => void,
): Promise<UploadPackResult & {stored: StoredPack | undefined}> {
  const incoming = await IncomingPack.create(path.join(store.gitdir, 'objects', 'pack'));
  try {
    const result = await uploadPack(request, chunk => {
      incoming.write(chunk);
      if (progress) progress(incoming.describe());
    });
    // The new shallow commits are recorded before the pack makes them visible: a store holding
    // a commit whose missing parents it does not declare would let the next fetch's server
    // leave out objects those parents hold. Commits that stopped being shallow are dropped from
    // the list only once their history is stored.
    await store.updateShallow(result.shallow, []);
    const stored = await storePack(store, incoming, 'the git server');
    await store.updateShallow([], result.unshallow);
    return {...result, stored};
  } finally {
    await incoming.discard();
  }
}

/** A pack stored by a fetch: its path relative to the gitdir, what it holds and what was sent. */
export type StoredPack = {name: string; received: number; bytes: number};

/** Index a received pack and put it in place under its own name, its index last. */
async function storePack(
  store: GitStore,
  incoming: IncomingPack,
  label: string,
): Promise<StoredPack | undefined> {
  if (!incoming.finish(label)) return undefined;
  // A pack of no objects (all the server had to say): nothing to store.
  if (incoming.declaredObjects === 0) return undefined;
  // The store's packs are opened only for a thin pack's outside bases.
  let reader: PackReader | undefined;
  let indexed;
  try {
    indexed = indexPackFile(incoming.file, label, oid =>
      (reader ??= PackReader.open(store.gitdir, store.packIndexes)).readObject(oid),
    );
  } finally {
    reader?.close();
  }
  const name = `objects/pack/pack-${indexed.checksum.toString('hex')}.pack`;
  const file = path.join(store.gitdir, name);
  // The pack before its index, which makes it visible; the index through the store's file
  // system, so that its listings see the new pack at once.
  await fsp.rename(incoming.file, file);
  await fsyncDir(path.dirname(file));
  await store.fs.writeFile(file.replace(/\.pack$/, '.idx'), indexed.index);
  return {name, received: indexed.received, bytes: incoming.size};
}
