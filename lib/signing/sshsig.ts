/**
 * SSH signatures (OpenSSH PROTOCOL.sshsig), the format `git -c gpg.format=ssh commit -S` writes
 * through `ssh-keygen -Y sign -n git`, parsed and verified in-process with node:crypto.
 * https://github.com/openssh/openssh-portable/blob/master/PROTOCOL.sshsig
 */
import {createHash, verify} from 'node:crypto';
import {SignatureError} from '../support/errors.js';
import {ECDSA_CURVES, parseSshPublicKey, WireReader, type SshPublicKey} from './ssh-key.js';

export const SSH_ARMOR_BEGIN = '-----BEGIN SSH SIGNATURE-----';
export const SSH_ARMOR_END = '-----END SSH SIGNATURE-----';
const MAGIC = Buffer.from('SSHSIG');
/** A real signature is under 2 KiB armored (RSA 4096 included); anything far larger is hostile. */
const MAX_ARMORED = 64 * 1024;

export type SshSignature = {
  publicKey: SshPublicKey;
  namespace: string;
  hashAlgorithm: 'sha256' | 'sha512';
  /** The inner signature: string(algorithm) + string(signature bytes). */
  signature: Buffer;
};

/**
 * Parse an armored SSH signature. Throws a SignatureError (reason `bad-signature`) saying what is
 * wrong with it; never a RangeError, whatever the input.
 * @example parseSshSignature(commit.signature).publicKey.fingerprint
 */
export function parseSshSignature(armored: string): SshSignature {
  const blob = dearmor(armored);
  const reader = new WireReader(blob.subarray(MAGIC.length), 'the SSH signature');
  if (!blob.subarray(0, MAGIC.length).equals(MAGIC)) reader.fail('it does not start with SSHSIG');
  return readSignature(reader);
}

function readSignature(reader: WireReader): SshSignature {
  const version = reader.uint32();
  if (version !== 1) reader.fail(`its version is ${version}, not 1`);
  const publicKey = parseSshPublicKey(reader.bytes(), 'the key in the SSH signature');
  const namespace = reader.text();
  reader.bytes(); // reserved: ignored, as ssh-keygen ignores it
  const hashAlgorithm = reader.text();
  if (hashAlgorithm !== 'sha256' && hashAlgorithm !== 'sha512')
    reader.fail(`its hash algorithm ${hashAlgorithm} is neither sha256 nor sha512`);
  const signature = Buffer.from(reader.bytes());
  reader.end();
  return {publicKey, namespace, hashAlgorithm, signature};
}

function dearmor(armored: string): Buffer {
  const fail = (why: string): never => {
    throw new SignatureError(`The SSH signature ${why}.`, 'bad-signature');
  };
  if (armored.length > MAX_ARMORED) fail(`is ${armored.length} bytes long, too long to be real`);
  const lines = armored.replace(/\r?\n$/, '').split(/\r?\n/);
  if (lines[0] !== SSH_ARMOR_BEGIN || lines.at(-1) !== SSH_ARMOR_END)
    fail(`is not armored between ${SSH_ARMOR_BEGIN} and ${SSH_ARMOR_END}`);
  const body = lines.slice(1, -1).join('');
  // Buffer.from(…, 'base64') skips junk silently: check the alphabet and padding first.
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) fail('is not valid base64');
  return Buffer.from(body, 'base64');
}

/**
 * The bytes the key actually signs: "SSHSIG" + string(namespace) + string(reserved) +
 * string(hash algorithm) + string(H(payload)).
 */
export function signedData(
  namespace: string,
  hashAlgorithm: 'sha256' | 'sha512',
  payload: Buffer,
): Buffer {
  const hash = createHash(hashAlgorithm).update(payload).digest();
  return Buffer.concat([
    MAGIC,
    sshString(namespace),
    sshString(''),
    sshString(hashAlgorithm),
    sshString(hash),
  ]);
}

/** An SSH wire string: uint32 length + bytes. */
export function sshString(value: string | Buffer): Buffer {
  const data = typeof value === 'string' ? Buffer.from(value) : value;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  return Buffer.concat([length, data]);
}

/**
 * Whether `signature` is a valid signature of `payload` in `namespace` by the key it carries.
 * A signature in another namespace (a file signature replayed as a commit's) is not valid.
 * @example verifySshSignature(parseSshSignature(armored), payload, 'git')
 */
export function verifySshSignature(
  signature: SshSignature,
  payload: Buffer,
  namespace: string,
): boolean {
  if (signature.namespace !== namespace) return false;
  const data = signedData(namespace, signature.hashAlgorithm, payload);
  const reader = new WireReader(signature.signature, 'the SSH signature');
  const algorithm = reader.text();
  const bytes = reader.bytes();
  reader.end();
  const {publicKey} = signature;
  if (publicKey.type === 'ssh-ed25519') {
    return (
      algorithm === 'ssh-ed25519' && bytes.length === 64 && verify(null, data, publicKey.key, bytes)
    );
  }
  if (publicKey.type === 'ssh-rsa') return verifyRsa(algorithm, data, publicKey, bytes);
  if (algorithm !== publicKey.type) return false;
  return verifyEcdsa(data, publicKey, bytes);
}

function verifyRsa(
  algorithm: string,
  data: Buffer,
  publicKey: SshPublicKey,
  bytes: Buffer,
): boolean {
  // ssh-rsa means SHA-1, which PROTOCOL.sshsig forbids: only rsa-sha2-256/512 are accepted.
  const hash = {'rsa-sha2-256': 'sha256', 'rsa-sha2-512': 'sha512'}[algorithm];
  if (!hash) return false;
  const size = Math.ceil((publicKey.key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  if (bytes.length > size) return false;
  // OpenSSH accepts a signature shorter than the modulus and pads it; OpenSSL wants it padded.
  const padded = Buffer.concat([Buffer.alloc(size - bytes.length), bytes]);
  return verify(hash, data, publicKey.key, padded);
}

function verifyEcdsa(data: Buffer, publicKey: SshPublicKey, bytes: Buffer): boolean {
  const curve =
    ECDSA_CURVES[publicKey.type.slice('ecdsa-sha2-'.length) as keyof typeof ECDSA_CURVES];
  const reader = new WireReader(bytes, 'the ECDSA signature');
  const r = reader.mpint(curve.size);
  const s = reader.mpint(curve.size);
  reader.end();
  if (r.length > curve.size || s.length > curve.size) return false;
  const pad = (n: Buffer) => Buffer.concat([Buffer.alloc(curve.size - n.length), n]);
  return verify(
    curve.hash,
    data,
    {key: publicKey.key, dsaEncoding: 'ieee-p1363'},
    Buffer.concat([pad(r), pad(s)]),
  );
}

/** Armor an SSHSIG blob as ssh-keygen does: 70 columns of base64 between the markers. */
export function armorSshSignature(blob: Buffer): string {
  const lines = blob.toString('base64').match(/.{1,70}/g) ?? [];
  return [SSH_ARMOR_BEGIN, ...lines, SSH_ARMOR_END].join('\n') + '\n';
}
