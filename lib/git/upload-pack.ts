import {promises as fsp} from 'node:fs';
import path from 'node:path';
import git, {Errors, type HttpClient} from 'isomorphic-git';
import {ServerRefusal, SourceError} from '../support/errors.js';
import {redact} from '../support/redact.js';
import {TOOL_NAME, TOOL_VERSION} from '../support/version.js';
import {writeFileAtomic} from '../support/fs.js';
import {indexPack} from './pack/indexer.js';
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
};

const FLUSH = Buffer.from('0000');

function pktLine(text: string): Buffer {
  const body = Buffer.from(text);
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, '0')), body]);
}

/** The request body: wants (the first with our capabilities), a flush, haves, done. */
export function uploadPackBody(request: UploadPackRequest): Buffer {
  const wanted = ['side-band-64k', 'ofs-delta'].filter(c => request.capabilities.has(c));
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

/** Send the request; return the pack the server sent (empty when it sent none). */
export async function uploadPack(request: UploadPackRequest): Promise<Buffer> {
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
  return readResponse(res.body ?? [], request.url);
}

/**
 * Read the answer: ACK/NAK lines, then side-band packets (1 pack data, 2 progress, 3 a fatal
 * error) up to a flush. An `ERR` line, or band 3, ends the fetch with the server's words; the
 * last error lines of band 2 (what pack-objects printed) go with them.
 */
async function readResponse(
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  url: string,
): Promise<Buffer> {
  const pack: Buffer[] = [];
  const progress: string[] = [];
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
    if (!sideband) continue; // shallow lines and the like: nothing asked for them
    const band = line[0];
    if (band === 1) pack.push(line.subarray(1));
    else if (band === 2) keepErrorLines(progress, line.subarray(1).toString('utf8'));
    else if (band === 3) {
      const words = [...progress, line.subarray(1).toString('utf8').trim()].join('; ');
      throw new ServerRefusal(words, url);
    }
  }
  return Buffer.concat(pack);
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
 * Store a received pack in `store`, checked and indexed before it is stored: every object is
 * inflated under the caps of lib/git/pack/check.ts and the index is built with native zlib by
 * lib/git/pack/indexer.ts (the same index `git index-pack` writes), not by isomorphic-git.
 * Returns its path relative to the gitdir, or undefined for a pack with no objects.
 */
export async function storePack(store: GitStore, pack: Buffer): Promise<string | undefined> {
  if (pack.length === 0) return undefined;
  if (pack.length >= 12 && pack.readUInt32BE(8) === 0) return undefined;
  const name = `objects/pack/pack-${pack.subarray(-20).toString('hex')}.pack`;
  const file = path.join(store.gitdir, name);
  await fsp.mkdir(path.dirname(file), {recursive: true});
  // The store's packs are opened only for a thin pack's outside bases.
  let reader: PackReader | undefined;
  let index: Buffer | undefined;
  try {
    index = indexPack(pack, 'the git server', oid =>
      (reader ??= PackReader.open(store.gitdir, store.packIndexes)).readObject(oid),
    );
  } finally {
    reader?.close();
  }
  // The pack before its index, which makes it visible; the index through the store's file
  // system, so that its listings see the new pack at once.
  await writeFileAtomic(file, pack, 0o644);
  if (index) {
    await store.fs.writeFile(file.replace(/\.pack$/, '.idx'), index);
  } else {
    // A pack whose deltas name bases this store lacks: isomorphic-git indexes it from the store.
    await git.indexPack({
      fs: store.fs,
      dir: store.gitdir,
      gitdir: store.gitdir,
      filepath: name,
      cache: store.cache,
    });
  }
  return name;
}
