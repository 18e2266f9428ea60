/**
 * The one place artifact hashes are read and checked: integrity pins (npm's SRI strings with
 * sha512/sha256/sha1, pip's `--hash=sha256:`, deploy.json's and the vendor manifest's sha256),
 * hashing a file as it streams, comparing digests, and the wording of a mismatch. Deploy and check
 * (through the installers), bundle and vendor-sync all come here; ssri does the SRI work.
 *
 * Not here: git object ids, which lib/git/pack checks with git's own sha1 over git's own object
 * format (they name objects rather than pin artifacts), and the reuse and cache keys that hash
 * listings to tell two trees apart (lib/install/reuse.ts). What is inside an archive once its
 * hash matched (paths, links, sizes) is checked by lib/install/tarball-check.ts,
 * lib/install/wheel-check.ts and lib/bundle/bundle.ts.
 */
import {createHash, timingSafeEqual, type Hash} from 'node:crypto';
import {createReadStream, fstatSync, readFileSync} from 'node:fs';
import type {Transform} from 'node:stream';
import ssri from 'ssri';
import {IntegrityError} from '../support/errors.js';

/** Artifacts up to this size are read whole and hashed at once; larger ones are streamed. */
const WHOLE_READ_BYTES = 16 * 1024 * 1024;
/** Reads of 1 MiB: with the default 64 KiB, stream overhead costs a third of the throughput. */
const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * An SRI integrity string for a sha256 given in hex (deploy.json assets, PyPI's index).
 *
 * @example
 * pinFromSha256('e3b0c442…') // 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='
 */
export function pinFromSha256(hex: string): string {
  return ssri.fromHex(hex, 'sha256').toString();
}

/** An SRI integrity string for a sha512 given in hex (a Yarn 2+ lockfile `checksum`). */
export function pinFromSha512Hex(hex: string): string {
  return ssri.fromHex(hex, 'sha512').toString();
}

/** The hashes pip's `--hash=<alg>:<hex>` accepts, with their hex lengths. */
const PIP_HASH_LENGTHS: Record<string, number> = {sha256: 64, sha384: 96, sha512: 128};

/**
 * pip's `--hash` value (`sha256:<hex>`) as an SRI string, or undefined when pip would not accept
 * it as that hash.
 *
 * @example
 * pinFromPipHash('sha256:e3b0c442…') // 'sha256-47DEQpj8…'
 */
export function pinFromPipHash(value: string): string | undefined {
  const colon = value.indexOf(':');
  const alg = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  const length = PIP_HASH_LENGTHS[alg];
  // pip compares lowercase hexdigest() strings: other spellings would never match there.
  if (colon === -1 || length === undefined || !new RegExp(`^[0-9a-f]{${length}}$`).test(hex)) {
    return undefined;
  }
  return ssri.fromHex(hex, alg).toString();
}

/**
 * Whether two integrity pins name the same bytes: they share an algorithm and, on the strongest
 * one they share, a digest (ssri's rule, the one npm applies).
 */
export function samePin(a: string, b: string): boolean {
  return ssri.parse(a).match(b) !== false;
}

/** Whether an integrity pin carries a sha512 hash (sha1 alone is too weak to pin bytes). */
export function hasSha512(integrity: string): boolean {
  return 'sha512' in ssri.parse(integrity);
}

/** The first hash of a pin, cut to a length that fits in a message. */
export function shortIntegrity(integrity: string): string {
  const first = integrity.trim().split(/\s+/)[0] ?? integrity;
  return first.length > 24 ? `${first.slice(0, 24)}…` : first;
}

/**
 * Whether the bytes of the open file `fd` match `integrity`. Small files are read whole, larger
 * ones streamed; the descriptor stays open (the caller opened it with the flags its checks need).
 */
export async function fileMatches(fd: number, integrity: string): Promise<boolean> {
  if (fstatSync(fd).size <= WHOLE_READ_BYTES) {
    // protection R22-hash: every vendored file matches its hash
    return ssri.checkData(readFileSync(fd), integrity) !== false;
  }
  const stream = createReadStream('', {
    fd,
    autoClose: false,
    start: 0,
    highWaterMark: READ_CHUNK_BYTES,
  });
  try {
    await ssri.checkStream(stream, integrity);
    return true;
  } catch (error) {
    if ((error as {code?: string}).code === 'EINTEGRITY') return false;
    throw error;
  }
}

/** A pass-through stream that fails with EINTEGRITY at its end unless the bytes match. */
export function checkingStream(integrity: string): Transform {
  return ssri.integrityStream({integrity});
}

/** Whether `error` is a {@link checkingStream}'s refusal of the bytes it saw. */
export function isMismatch(error: unknown): boolean {
  return (error as {code?: string} | undefined)?.code === 'EINTEGRITY';
}

/** Whether `text` is a sha256 in hex, either case (what `sha256sum` prints, or an operator types). */
export function isSha256Hex(text: string): boolean {
  return /^[0-9a-fA-F]{64}$/.test(text);
}

/** A new sha256 to feed chunks into (an archive's entries, a file as it is read). */
export function sha256(): Hash {
  return createHash('sha256');
}

/** The hex sha256 of some bytes or text. */
export function sha256Hex(data: Buffer | string): string {
  return sha256().update(data).digest('hex');
}

/** The hex sha256 of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = sha256();
  for await (const chunk of createReadStream(file, {highWaterMark: READ_CHUNK_BYTES})) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/**
 * Whether two hex digests are equal. The pins are public, so timing leaks nothing today; a
 * constant-time compare costs nothing and stays right should a digest ever be keyed.
 */
export function sameDigest(actual: string, expected: string): boolean {
  const a = Buffer.from(actual.toLowerCase(), 'utf8');
  const b = Buffer.from(expected.toLowerCase(), 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The refusal of a vendored file whose bytes are not the pinned ones. */
export function vendoredMismatch(
  label: string,
  integrity: string,
  cause?: unknown,
): IntegrityError {
  return new IntegrityError(
    `${label}: its bytes do not match the pinned hash ${shortIntegrity(integrity)}.`,
    'The vendored file was altered or replaced. Restore it with vendor-sync and pin the fixed commit.',
    cause === undefined ? undefined : {cause},
  );
}

/** The refusal of a download (`what`: its redacted URL) whose bytes are not the pinned ones. */
export function downloadMismatch(what: string, integrity: string, cause?: unknown): IntegrityError {
  return new IntegrityError(
    `${what} does not match the hash the app pins (${integrity.slice(0, 24)}…).`,
    'Upstream serves other bytes than the lockfile or requirements file recorded: do not vendor it; investigate.',
    cause === undefined ? undefined : {cause},
  );
}

/** The refusal of a bundle whose whole-file sha256 is not the one its pin (`from`) gives. */
export function bundleMismatch(
  file: string,
  actual: string,
  pin: {sha256: string; from: string},
): IntegrityError {
  return new IntegrityError(
    `Refused bundle ${file}: its sha256 is ${actual}, not ${pin.sha256} as ${pin.from} says.`,
    'This is not the bundle that was published (or the pin is for another one): copy the bundle and its checksum again from where they were published. Nothing was written to releases/.',
  );
}
