/**
 * Make SSH signatures (PROTOCOL.sshsig) with an OpenSSH private key, as `ssh-keygen -Y sign -n git`
 * does for `git commit -S` with gpg.format=ssh, so vendor-sync can sign its commits without native
 * git or ssh-keygen. sshpk reads the key file (openssh-key-v1, PEM, encrypted ones with a
 * passphrase): its bcrypt-pbkdf and cipher handling are not worth writing again. Its own pkcs8
 * output for ed25519 is not what OpenSSL reads, so the key's parts go to node:crypto through JWK.
 */
import {createPrivateKey, sign, type KeyObject} from 'node:crypto';
import {readFile} from 'node:fs/promises';
import type sshpk from 'sshpk';
import {ConfigError, describeError} from '../support/errors.js';
import {ECDSA_CURVES, parseSshPublicKey, type SshPublicKey} from './ssh-key.js';
import {armorSshSignature, signedData, sshString} from './sshsig.js';

export type SshSigner = {
  publicKey: SshPublicKey;
  /** An armored SSH signature of `payload` in `namespace` (default "git"). */
  sign: (payload: Buffer | string, namespace?: string) => string;
};

/**
 * Load an OpenSSH private key file (ed25519, ECDSA or RSA) as a signer. Throws a ConfigError when
 * the file cannot be read, is not a private key, or is encrypted and no passphrase was given.
 * @example const signer = await loadSshSigner('/secrets/vendor-sync.key'); signer.sign(payload)
 */
export async function loadSshSigner(
  file: string,
  options: {passphrase?: string} = {},
): Promise<SshSigner> {
  let key: sshpk.PrivateKey;
  try {
    // Loaded on first use: vendor-sync runs without a signing key need none of it.
    const {default: parser} = await import('sshpk');
    const data = await readFile(file);
    key = parser.parsePrivateKey(data, 'auto', {
      filename: file,
      ...(options.passphrase ? {passphrase: options.passphrase} : {}),
    });
  } catch (error) {
    throw new ConfigError(
      `The signing key ${file} cannot be used: ${describeError(error)}.`,
      'Give an OpenSSH private key file (ssh-keygen -t ed25519 -f FILE); for an encrypted key, its passphrase.',
      {cause: error},
    );
  }
  const publicKey = parseSshPublicKey(
    key.toPublic().toBuffer('rfc4253', {}),
    `the public half of ${file}`,
  );
  const privateKey = createPrivateKey({key: privateJwk(key), format: 'jwk'});
  return {
    publicKey,
    sign: (payload, namespace = 'git') =>
      signWith(publicKey, privateKey, Buffer.from(payload), namespace),
  };
}

function signWith(
  publicKey: SshPublicKey,
  privateKey: KeyObject,
  payload: Buffer,
  namespace: string,
): string {
  // sha512, as ssh-keygen -Y sign chooses by default.
  const data = signedData(namespace, 'sha512', payload);
  const inner = innerSignature(publicKey, privateKey, data);
  const blob = Buffer.concat([
    Buffer.from('SSHSIG'),
    Buffer.from([0, 0, 0, 1]),
    sshString(publicKey.blob),
    sshString(namespace),
    sshString(''),
    sshString('sha512'),
    sshString(inner),
  ]);
  return armorSshSignature(blob);
}

/** The SSH signature blob, string(algorithm) + string(bytes), for each key type. */
function innerSignature(publicKey: SshPublicKey, privateKey: KeyObject, data: Buffer): Buffer {
  if (publicKey.type === 'ssh-ed25519') {
    return Buffer.concat([sshString('ssh-ed25519'), sshString(sign(null, data, privateKey))]);
  }
  if (publicKey.type === 'ssh-rsa') {
    return Buffer.concat([sshString('rsa-sha2-512'), sshString(sign('sha512', data, privateKey))]);
  }
  const curve =
    ECDSA_CURVES[publicKey.type.slice('ecdsa-sha2-'.length) as keyof typeof ECDSA_CURVES];
  const rs = sign(curve.hash, data, {key: privateKey, dsaEncoding: 'ieee-p1363'});
  const r = mpint(rs.subarray(0, curve.size));
  const s = mpint(rs.subarray(curve.size));
  return Buffer.concat([
    sshString(publicKey.type),
    sshString(Buffer.concat([sshString(r), sshString(s)])),
  ]);
}

/** Unsigned big-endian bytes as an SSH mpint body: no leading zeros, a zero byte if the top bit is set. */
function mpint(value: Buffer): Buffer {
  let start = 0;
  while (start < value.length && value[start] === 0) start++;
  const trimmed = value.subarray(start);
  return (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
}

type Part = (name: string) => Buffer;
type Jwk = Record<string, string>;

/** The private key as a JWK, from the parts sshpk parsed (names as in its `key.part`). */
function privateJwk(key: sshpk.PrivateKey): Jwk {
  const part: Part = name => {
    const data = (key.part as unknown as Record<string, {data: Buffer} | undefined>)[name]?.data;
    if (!data) {
      throw new ConfigError(
        `The signing key lacks its ${name} part.`,
        'Generate it again with ssh-keygen.',
      );
    }
    return data;
  };
  if (key.type === 'ed25519') {
    return {kty: 'OKP', crv: 'Ed25519', x: b64(part('A')), d: b64(part('k').subarray(0, 32))};
  }
  if (key.type === 'ecdsa' && key.curve && key.curve in ECDSA_CURVES)
    return ecdsaJwk(key.curve, part);
  if (key.type === 'rsa') return rsaJwk(part);
  throw new ConfigError(
    `The signing key is a ${key.type} key.`,
    'Use an ed25519, ECDSA or RSA key.',
  );
}

function ecdsaJwk(name: string, part: Part): Jwk {
  const curve = ECDSA_CURVES[name as keyof typeof ECDSA_CURVES];
  const q = part('Q');
  // JWK wants each coordinate and the scalar at the curve's full size, leading zeros kept.
  const fixed = (data: Buffer) =>
    b64(Buffer.concat([Buffer.alloc(Math.max(0, curve.size - data.length)), data]));
  return {
    kty: 'EC',
    crv: curve.crv,
    x: fixed(q.subarray(1, 1 + curve.size)),
    y: fixed(q.subarray(1 + curve.size)),
    d: fixed(unsigned(part('d'))),
  };
}

/** OpenSSH keeps n, e, d, p, q and iqmp; JWK also wants d mod (p-1) and d mod (q-1). */
function rsaJwk(part: Part): Jwk {
  const big = (data: Buffer) => BigInt(`0x${unsigned(data).toString('hex') || '0'}`);
  const bytes = (n: bigint) => {
    const hex = n.toString(16);
    return b64(Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex'));
  };
  const [d, p, q] = [big(part('d')), big(part('p')), big(part('q'))];
  const field = (name: string) => b64(unsigned(part(name)));
  return {
    kty: 'RSA',
    n: field('n'),
    e: field('e'),
    d: field('d'),
    p: field('p'),
    q: field('q'),
    dp: bytes(d % (p - 1n)),
    dq: bytes(d % (q - 1n)),
    qi: field('iqmp'),
  };
}

function b64(data: Buffer): string {
  return data.toString('base64url');
}

/** Strip the sign byte and leading zeros of an mpint. */
function unsigned(data: Buffer): Buffer {
  let start = 0;
  while (start < data.length - 1 && data[start] === 0) start++;
  return data.subarray(start);
}

/**
 * isomorphic-git's `onSign` for `git.commit({signingKey, onSign})`: signs the commit payload it is
 * handed with `signer`, so `git verify-commit` (gpg.format=ssh) accepts the commit.
 * @example await git.commit({fs, dir, message, author, signingKey: 'ssh', onSign: sshOnSign(signer)})
 */
export function sshOnSign(signer: SshSigner): (args: {payload: string}) => {signature: string} {
  return ({payload}) => ({signature: signer.sign(Buffer.from(payload, 'utf8'), 'git')});
}
