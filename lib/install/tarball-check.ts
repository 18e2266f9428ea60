import {createReadStream, promises as fsp} from 'node:fs';
import {Writable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import {createGunzip, gunzipSync} from 'node:zlib';
import {Parser, type ReadEntry} from 'tar';
import {IntegrityError} from '../support/errors.js';

/** Caps an npm tarball must stay within (a gzip bomb or a million entries stops here). */
export const TARBALL_LIMITS = {
  maxEntries: 100_000,
  /** Bytes after gunzip: headers, contents and anything after the end of the archive. */
  maxUnpackedBytes: 2 * 1024 ** 3,
  maxPathBytes: 4096,
  maxDepth: 128,
  /**
   * Inflated bytes allowed beyond what the entries read so far account for (their headers and
   * padded contents): long-name headers, end-of-archive padding, one inflated chunk. Zeros after
   * the end of the archive would otherwise be inflated and parsed block by block.
   */
  maxSlackBytes: 1024 * 1024,
};

/**
 * Check an npm tarball before npm sees it. `npm pack` writes only directories and regular files
 * with relative paths, so anything else is refused: absolute or drive paths, `..`, backslashes,
 * symlinks and hard links (a link followed by a write through it is how node-tar's CVEs escaped),
 * devices, very long or very deep paths, and archives that unpack past the caps. npm's own
 * extraction drops most of these; this check makes the refusal loud, names the entry, and happens
 * before any installer runs.
 */
export async function checkNpmTarball(file: string, label: string): Promise<void> {
  const refuse = (why: string) =>
    new IntegrityError(
      `Refused npm tarball ${label}: ${why}.`,
      'Do not vendor this file; npm packages hold only files and directories inside package/.',
    );
  const scan = new TarballScan(refuse);
  try {
    const whole = await inflateSmall(file);
    // Small archives (most npm packages): inflated at once, with a hard cap on the output.
    if (whole) scan.feedInflated(whole);
    else await scan.feedFile(file);
    await scan.parsed;
  } catch (error) {
    if (scan.problem) throw scan.problem;
    if (error instanceof IntegrityError) throw error;
    throw refuse(`not a readable .tgz (${(error as Error).message})`);
  }
  if (scan.problem) throw scan.problem;
  if (scan.entries === 0) throw refuse('it holds no entries');
}

/**
 * One tarball's check as it is read: the inflated bytes counted against the caps, and each
 * entry's header checked as the tar parser reaches it. `problem` is the first refusal.
 */
class TarballScan {
  problem: IntegrityError | undefined;
  entries = 0;
  /** Settles when the parser has read the whole archive, or fails. */
  readonly parsed: Promise<void>;
  private unpacked = 0;
  private declared = 0;
  private accounted = 0;
  private readonly parser: Parser;

  constructor(private readonly refuse: (why: string) => IntegrityError) {
    this.parser = new Parser({
      strict: true,
      onReadEntry: (entry: ReadEntry) => {
        this.checkEntry(entry);
      },
    });
    this.parsed = new Promise<void>((resolve, reject) => {
      this.parser.on('end', () => {
        resolve();
      });
      this.parser.on('error', reject);
    });
  }

  /** The whole inflated archive, fed in chunks as a stream would bring it. */
  feedInflated(whole: Buffer): void {
    for (let offset = 0; offset < whole.length; offset += CHUNK_BYTES) {
      const refusal = this.take(whole.subarray(offset, offset + CHUNK_BYTES));
      if (refusal) throw refusal;
    }
    this.parser.end();
  }

  /** Gunzip here rather than in the parser, to count every byte it inflates. */
  async feedFile(file: string): Promise<void> {
    const feed = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        done(this.take(chunk));
      },
      final: done => {
        this.parser.end();
        done();
      },
    });
    await pipeline(createReadStream(file), createGunzip(), feed);
  }

  private checkEntry(entry: ReadEntry): void {
    entry.resume();
    if (this.problem) return;
    this.entries++;
    this.declared += entry.size;
    this.accounted += 512 + Math.ceil(entry.size / 512) * 512;
    // The declared sizes are known from the headers, before any content is inflated.
    // protection R20-tarball-entries: the entry cap of npm tarballs
    const why =
      this.entries > TARBALL_LIMITS.maxEntries
        ? `more than ${TARBALL_LIMITS.maxEntries} entries`
        : this.declared > TARBALL_LIMITS.maxUnpackedBytes
          ? `its entries declare more than ${TARBALL_LIMITS.maxUnpackedBytes} bytes`
          : entryProblem(entry);
    if (why) this.problem = this.refuse(why);
  }

  /** Count, check and parse one piece of the inflated archive; the refusal, if any. */
  private take(chunk: Buffer): IntegrityError | undefined {
    this.unpacked += chunk.length;
    if (this.unpacked > TARBALL_LIMITS.maxUnpackedBytes) {
      return this.refuse(`it unpacks to more than ${TARBALL_LIMITS.maxUnpackedBytes} bytes`);
    }
    if (this.unpacked > this.accounted + TARBALL_LIMITS.maxSlackBytes) {
      return this.refuse(
        `it unpacks to more than ${TARBALL_LIMITS.maxSlackBytes} bytes beyond what its entries account for`,
      );
    }
    // Once a problem is known, the rest need not be read.
    if (this.problem) return this.problem;
    this.parser.write(chunk);
    return undefined;
  }
}

const CHUNK_BYTES = 64 * 1024;
/** Archives up to this size, inflating to at most SMALL_INFLATED_BYTES, are checked in memory. */
const SMALL_FILE_BYTES = 1024 * 1024;
const SMALL_INFLATED_BYTES = 16 * 1024 * 1024;

/**
 * The inflated bytes of a small .tgz, or undefined when it is large or inflates past the
 * in-memory cap (the streaming check then applies the real caps).
 */
async function inflateSmall(file: string): Promise<Buffer | undefined> {
  const stat = await fsp.stat(file);
  if (stat.size > SMALL_FILE_BYTES) return undefined;
  const compressed = await fsp.readFile(file);
  try {
    return gunzipSync(compressed, {maxOutputLength: SMALL_INFLATED_BYTES});
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return undefined;
    throw error;
  }
}

function entryProblem(entry: ReadEntry): string | undefined {
  const name = entry.path;
  const shown = JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}...` : name);
  if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'Directory') {
    const target = entry.linkpath ? ` to ${JSON.stringify(entry.linkpath)}` : '';
    return `entry ${shown} is a ${entry.type}${target}; only files and directories are allowed`;
  }
  if (Buffer.byteLength(name) > TARBALL_LIMITS.maxPathBytes) {
    return `entry ${shown} has a path longer than ${TARBALL_LIMITS.maxPathBytes} bytes`;
  }
  if (name === '' || name.includes('\0')) return `entry ${shown} has an empty or NUL name`;
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return `entry ${shown} is an absolute path`;
  if (name.includes('\\')) return `entry ${shown} has a backslash in its path`;
  const parts = name.replace(/\/+$/, '').split('/');
  if (parts.includes('..')) return `entry ${shown} leaves the package directory`;
  if (parts.length > TARBALL_LIMITS.maxDepth) {
    return `entry ${shown} is more than ${TARBALL_LIMITS.maxDepth} directories deep`;
  }
  // A file listed twice is not refused: real packages have it (agent-base 7.1.4 lists both
  // package/./dist/index.js and package/dist/index.js), npm writes the last, and with links
  // refused above a second copy can only be more bytes under the hash the app pins.
  return undefined;
}
