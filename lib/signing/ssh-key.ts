/**
 * OpenSSH public keys in their wire form (RFC 4253 section 6.6, RFC 5656 section 3.1, RFC 8709),
 * turned into node:crypto KeyObjects through JWK so that nodes verify signatures without
 * ssh-keygen. Everything here reads attacker data: every length is bounded before it is used.
 */
import {createHash, createPublicKey, type KeyObject} from 'node:crypto';
import {SignatureError} from '../support/errors.js';

/** The key types a signature can be made with; certificates and security keys are not among them. */
export type SshKeyType =
  'ssh-ed25519' | 'ecdsa-sha2-nistp256' | 'ecdsa-sha2-nistp384' | 'ecdsa-sha2-nistp521' | 'ssh-rsa';

export type SshPublicKey = {
  type: SshKeyType;
  /** The wire form: what allowed_signers holds in base64, compared byte for byte. */
  blob: Buffer;
  /** `SHA256:…`, as `ssh-keygen -l` prints it. */
  fingerprint: string;
  key: KeyObject;
};

/** Per ECDSA curve: the JWK name, the digest SSH pairs with it (RFC 5656 6.2.1), the field size. */
export const ECDSA_CURVES = {
  nistp256: {crv: 'P-256', hash: 'sha256', size: 32},
  nistp384: {crv: 'P-384', hash: 'sha384', size: 48},
  nistp521: {crv: 'P-521', hash: 'sha512', size: 66},
} as const;

/** OpenSSH refuses RSA keys under 1024 bits; 2048 is the least anyone should sign releases with. */
export const MIN_RSA_BITS = 2048;

/** Reads SSH wire data (uint32 lengths, strings, mpints); any overrun is a bad signature. */
export class WireReader {
  private offset = 0;

  constructor(
    private readonly data: Buffer,
    private readonly what: string,
  ) {}

  fail(why: string): never {
    throw new SignatureError(`${this.what}: ${why}.`, 'bad-signature');
  }

  uint32(): number {
    if (this.offset + 4 > this.data.length) this.fail('it ends early');
    const value = this.data.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** A length-prefixed byte string of at most `max` bytes. */
  bytes(max = 16384): Buffer {
    const length = this.uint32();
    if (length > max || this.offset + length > this.data.length)
      this.fail('a length is out of range');
    const value = this.data.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  /** A string that must be printable ASCII (names, namespaces, algorithm identifiers). */
  text(max = 256): string {
    const value = this.bytes(max);
    if (!/^[\x20-\x7e]*$/.test(value.toString('latin1')))
      this.fail('a name is not printable ASCII');
    return value.toString('latin1');
  }

  /** A non-negative mpint without its sign byte, as JWK and IEEE P1363 want it. */
  mpint(max = 2048): Buffer {
    const value = this.bytes(max + 1);
    if (value.length > 0 && (value[0] ?? 0) & 0x80) this.fail('a number is negative');
    let start = 0;
    while (start < value.length && value[start] === 0) start++;
    return value.subarray(start);
  }

  /** Nothing may follow the last field: trailing bytes would make one signature many. */
  end(): void {
    if (this.offset !== this.data.length) this.fail('it has trailing data');
  }
}

/** `SHA256:<base64 without padding>` of the wire form, as ssh-keygen prints fingerprints. */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Parse a public key's wire form. Throws a SignatureError (reason `bad-signature`) naming what is
 * wrong: unknown type, bad lengths, a point not on the curve, an RSA key that is too short.
 * @example parseSshPublicKey(Buffer.from(line.split(' ')[1], 'base64')).fingerprint
 */
export function parseSshPublicKey(blob: Buffer, what = 'the public key'): SshPublicKey {
  const reader = new WireReader(blob, what);
  const type = reader.text();
  const jwk = keyJwk(type, reader);
  reader.end();
  let key: KeyObject;
  try {
    key = createPublicKey({key: jwk, format: 'jwk'});
  } catch (error) {
    return reader.fail(`it is not a valid ${type} key (${(error as Error).message})`);
  }
  return {
    type: type as SshKeyType,
    blob: Buffer.from(blob),
    fingerprint: sshFingerprint(blob),
    key,
  };
}

function keyJwk(type: string, reader: WireReader): Record<string, string> {
  const b64 = (data: Buffer) => data.toString('base64url');
  if (type === 'ssh-ed25519') {
    const point = reader.bytes(64);
    if (point.length !== 32) reader.fail('an ed25519 key is not 32 bytes');
    return {kty: 'OKP', crv: 'Ed25519', x: b64(point)};
  }
  if (type.startsWith('ecdsa-sha2-')) {
    const name = type.slice('ecdsa-sha2-'.length);
    const curve = ECDSA_CURVES[name as keyof typeof ECDSA_CURVES] as
      (typeof ECDSA_CURVES)[keyof typeof ECDSA_CURVES] | undefined;
    if (!curve) reader.fail(`the key type ${type} is not supported`);
    if (reader.text() !== name) reader.fail(`the curve does not match the key type ${type}`);
    const point = reader.bytes(1 + 2 * curve.size);
    // Only the uncompressed form (0x04 || x || y) is allowed in SSH (RFC 5656 3.1).
    if (point.length !== 1 + 2 * curve.size || point[0] !== 4)
      reader.fail('the curve point is malformed');
    const x = point.subarray(1, 1 + curve.size);
    const y = point.subarray(1 + curve.size);
    return {kty: 'EC', crv: curve.crv, x: b64(x), y: b64(y)};
  }
  if (type === 'ssh-rsa') {
    const e = reader.mpint(16);
    const n = reader.mpint(2048);
    const bits = n.length === 0 ? 0 : (n.length - 1) * 8 + (n[0] ?? 0).toString(2).length;
    if (bits < MIN_RSA_BITS)
      reader.fail(`the RSA key has ${bits} bits, fewer than ${MIN_RSA_BITS}`);
    return {kty: 'RSA', n: b64(n), e: b64(e)};
  }
  return reader.fail(`the key type ${type} is not supported (ed25519, ECDSA and RSA keys are)`);
}
