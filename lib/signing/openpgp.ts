/**
 * OpenPGP signatures (what `git commit -S` writes with gpg), verified with the openpgp package
 * against the public keys the node's policy lists. openpgp is loaded on first use only: most
 * runs never see a PGP signature, and it is the largest module a deploy would otherwise load.
 */
import type {Key, PublicKey} from 'openpgp';
import {ConfigError, describeError} from '../support/errors.js';

export const PGP_ARMOR_BEGIN = '-----BEGIN PGP SIGNATURE-----';
const MAX_ARMORED = 64 * 1024;

export type PgpKey = {
  /** The primary key's fingerprint, upper-case hex, as `gpg --fingerprint` prints it (no spaces). */
  fingerprint: string;
  /** The primary user id (`Name <email>`), when the key has one. */
  userId: string | undefined;
  key: PublicKey;
  /** The file it came from, for messages. */
  source: string;
};

export type PgpVerdict =
  | {status: 'valid'; key: PgpKey; signedAt: Date | undefined}
  | {status: 'unknown-key'; keyIds: string[]}
  | {status: 'bad'; why: string};

/**
 * Read the armored public keys in a file's text. Throws a ConfigError when the text holds none, is
 * not OpenPGP, or holds a private key (which has no business on a node).
 * @example await readPgpKeys(await readFile(file, 'utf8'), file)
 */
export async function readPgpKeys(armored: string, source: string): Promise<PgpKey[]> {
  const openpgp = await import('openpgp');
  let keys: Key[];
  try {
    keys = await openpgp.readKeys({armoredKeys: armored});
  } catch (error) {
    throw new ConfigError(
      `${source} holds no OpenPGP public key (${describeError(error)}).`,
      "Export the signer's public key with gpg --armor --export KEYID.",
      {cause: error},
    );
  }
  const result: PgpKey[] = [];
  for (const key of keys) {
    if (key.isPrivate()) {
      throw new ConfigError(
        `${source} holds an OpenPGP private key.`,
        'Give the public key only (gpg --armor --export KEYID) and remove the private key from the node.',
      );
    }
    const primary = await key.getPrimaryUser().catch(() => undefined);
    const userId = primary?.user.userID?.userID;
    result.push({
      fingerprint: key.getFingerprint().toUpperCase(),
      userId,
      key: key.toPublic(),
      source,
    });
  }
  return result;
}

/**
 * Verify a detached armored signature over `payload` against `keys` (every key of the policy, so
 * that an unknown key and a key of another repository can be told apart by the caller).
 * @example const verdict = await verifyPgpSignature(signature, payload, keys)
 */
export async function verifyPgpSignature(
  armored: string,
  payload: Buffer,
  keys: PgpKey[],
): Promise<PgpVerdict> {
  if (armored.length > MAX_ARMORED)
    return {status: 'bad', why: `it is ${armored.length} bytes long`};
  const openpgp = await import('openpgp');
  let signature;
  try {
    signature = await openpgp.readSignature({armoredSignature: armored});
  } catch (error) {
    return {status: 'bad', why: `it is not an OpenPGP signature (${describeError(error)})`};
  }
  const ids = signature.getSigningKeyIDs();
  if (ids.length !== 1) return {status: 'bad', why: `it holds ${ids.length} signatures, not one`};
  const id = ids[0];
  const found = keys.find(k => id && k.key.getKeys(id).length > 0);
  if (!found || !id) return {status: 'unknown-key', keyIds: ids.map(k => k.toHex().toUpperCase())};
  try {
    const message = await openpgp.createMessage({binary: payload});
    const result = await openpgp.verify({
      message,
      signature,
      verificationKeys: [found.key],
      format: 'binary',
    });
    const [first] = result.signatures;
    if (!first) return {status: 'bad', why: 'it holds no signature'};
    await first.verified;
    const packet = (await first.signature).packets[0];
    return {status: 'valid', key: found, signedAt: packet?.created ?? undefined};
  } catch (error) {
    return {status: 'bad', why: describeError(error)};
  }
}
