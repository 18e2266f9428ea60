/**
 * Split a raw commit or tag object into the bytes that were signed and the signature, exactly as
 * git does. isomorphic-git's `readCommit().payload` looks for the end of a PGP signature only and
 * normalises line ends, so for an SSH-signed commit it returns bytes git never signed; here the
 * object is cut on git's own rules and nothing else is changed.
 */
import {SignatureError} from '../support/errors.js';

export type SignedObject = {
  /** The bytes the signer signed. */
  payload: Buffer;
  /** The armored signature, or undefined when the object is unsigned. */
  signature: string | undefined;
  /** The committer (commit) or tagger (tag) line, from the signed bytes. */
  identity: {email: string; time: Date} | undefined;
};

/**
 * A commit: the `gpgsig` header and its continuation lines are the signature; the rest, with any
 * other `gpgsig-*` header (a signature over the object's SHA-256 form) dropped, is the payload
 * (git commit.c parse_buffer_signed_by_header).
 * @example splitCommit(rawCommitBytes).signature
 */
export function splitCommit(raw: Buffer): SignedObject {
  const payload: Buffer[] = [];
  const signature: Buffer[] = [];
  let offset = 0;
  let inSignature = false;
  let otherSignature = false;
  let headers = 0;
  while (offset < raw.length) {
    const eol = raw.indexOf(0x0a, offset);
    const next = eol < 0 ? raw.length : eol + 1;
    const line = raw.subarray(offset, next);
    if (line[0] === 0x0a) {
      // The blank line ends the headers: the message is payload, whatever it looks like.
      payload.push(raw.subarray(offset));
      break;
    }
    const text = line.toString('latin1');
    if (inSignature && text.startsWith(' ')) {
      signature.push(line.subarray(1));
    } else if (text.startsWith('gpgsig ')) {
      // Two signature headers would let one object carry two meanings: refused, not merged.
      if (headers++ > 0)
        throw new SignatureError('It has more than one gpgsig header.', 'bad-signature');
      signature.push(line.subarray('gpgsig '.length));
      inSignature = true;
      otherSignature = false;
    } else {
      inSignature = false;
      if (text.startsWith('gpgsig')) otherSignature = true;
      else if (!text.startsWith(' ')) otherSignature = false;
      if (!otherSignature) payload.push(line);
    }
    offset = next;
  }
  const body = Buffer.concat(payload);
  return {
    payload: body,
    signature: signature.length > 0 ? Buffer.concat(signature).toString('utf8') : undefined,
    identity: identity(body, 'committer'),
  };
}

/** The armor lines git recognises as the start of a signature appended to a tag's message. */
const SIGNATURE_STARTS = [
  '-----BEGIN PGP SIGNATURE-----',
  '-----BEGIN PGP MESSAGE-----',
  '-----BEGIN SSH SIGNATURE-----',
  '-----BEGIN SIGNED MESSAGE-----',
];

/**
 * A tag: the signature is appended to the message and starts at the last line that begins with a
 * signature armor; everything before it is the payload (git gpg-interface.c parse_signed_buffer).
 * @example splitTag(rawTagBytes).payload
 */
export function splitTag(raw: Buffer): SignedObject {
  let match = raw.length;
  let offset = 0;
  while (offset < raw.length) {
    const eol = raw.indexOf(0x0a, offset);
    const next = eol < 0 ? raw.length : eol + 1;
    const head = raw.toString('latin1', offset, Math.min(raw.length, offset + 40));
    if (SIGNATURE_STARTS.some(start => head.startsWith(start))) match = offset;
    offset = next;
  }
  const payload = raw.subarray(0, match);
  return {
    payload,
    signature: match < raw.length ? raw.subarray(match).toString('utf8') : undefined,
    identity: identity(payload, 'tagger'),
  };
}

/** The email and time of the `committer`/`tagger` header, which the signature covers. */
function identity(payload: Buffer, header: 'committer' | 'tagger'): SignedObject['identity'] {
  const end = payload.indexOf('\n\n');
  const headers = payload.toString('utf8', 0, end < 0 ? payload.length : end).split('\n');
  const line = headers.find(h => h.startsWith(`${header} `));
  const match = line && /<([^<>\n]*)> (\d{1,15}) [+-]\d{4}$/.exec(line);
  if (!match?.[1] || !match[2]) return undefined;
  return {email: match[1], time: new Date(Number(match[2]) * 1000)};
}
