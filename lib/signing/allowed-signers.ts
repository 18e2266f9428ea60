/**
 * OpenSSH's allowed_signers file (ssh-keygen(1), ALLOWED SIGNERS), the file git reads through
 * gpg.ssh.allowedSignersFile: `principals [options] keytype base64-key [comment]` per line.
 * The node's own file, so a line we cannot honour exactly is a ConfigError, not a line skipped.
 */
import {ConfigError, SignatureError} from '../support/errors.js';
import {parseSshPublicKey, type SshPublicKey} from './ssh-key.js';

export type AllowedSigner = {
  /** The principals pattern-list as written (see {@link matchPatternList}). */
  principals: string;
  /** The namespaces pattern-list, when the line restricts it. */
  namespaces: string | undefined;
  validAfter: Date | undefined;
  validBefore: Date | undefined;
  key: SshPublicKey;
  /** `file:line`, for messages. */
  source: string;
};

/** Names of key types, to tell the options field from the key type field as OpenSSH does. */
const KEY_TYPE = /^(ssh-|ecdsa-|sk-|rsa-sha2-)/;

/**
 * Parse an allowed_signers file. Throws a ConfigError naming the file and line of the first entry
 * that is malformed, uses an option we do not support, or holds a key type we cannot verify.
 * @example parseAllowedSigners(await readFile(file, 'utf8'), file)
 */
export function parseAllowedSigners(text: string, file: string): AllowedSigner[] {
  const signers: AllowedSigner[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) return;
    signers.push(parseLine(line, `${file}:${index + 1}`));
  });
  return signers;
}

function parseLine(line: string, source: string): AllowedSigner {
  const fail = (why: string): never => {
    throw new ConfigError(
      `${source}: ${why}.`,
      'Each line is: principals [options] key-type base64-key, as ssh-keygen(1) ALLOWED SIGNERS describes.',
    );
  };
  const fields = new Fields(line);
  const principals = fields.next(true) ?? fail('the line has no principals');
  if (principals === '') fail('the principals are empty');
  let type = fields.next(false) ?? fail('the line has no key');
  let options = new Map<string, string | true>();
  if (!KEY_TYPE.test(type)) {
    options = parseOptions(type, fail);
    type = fields.next(false) ?? fail('the line has options but no key');
  }
  const base64 = fields.next(false) ?? fail(`the ${type} key has no base64 data`);
  const key = readKey(type, base64, fail);
  if (options.has('cert-authority')) {
    // A CA line trusts certificates the CA signs; repodeploy verifies plain keys only, and a CA
    // key taken as a plain key would trust the wrong thing. Refused rather than half-honoured.
    fail("cert-authority is not supported: list each signer's own key instead");
  }
  return {
    principals,
    namespaces: stringOption(options, 'namespaces', fail),
    validAfter: timeOption(options, 'valid-after', fail),
    validBefore: timeOption(options, 'valid-before', fail),
    key,
    source,
  };
}

function readKey(type: string, base64: string, fail: (why: string) => never): SshPublicKey {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) fail('the key is not valid base64');
  let key: SshPublicKey;
  try {
    key = parseSshPublicKey(Buffer.from(base64, 'base64'), `the ${type} key`);
  } catch (error) {
    if (error instanceof SignatureError) return fail(error.message.replace(/\.$/, ''));
    throw error;
  }
  if (key.type !== type) fail(`the key is a ${key.type} key, not ${type}`);
  return key;
}

/** Whitespace-separated fields; a field starting with `"` runs to the next `"` (OpenSSH strdelimw). */
class Fields {
  private rest: string;
  constructor(line: string) {
    this.rest = line;
  }

  next(allowQuoted: boolean): string | undefined {
    this.rest = this.rest.replace(/^[ \t]+/, '');
    if (this.rest === '') return undefined;
    if (allowQuoted && this.rest.startsWith('"')) {
      const close = this.rest.indexOf('"', 1);
      if (close < 0) return undefined;
      const value = this.rest.slice(1, close);
      this.rest = this.rest.slice(close + 1);
      return value;
    }
    // Quotes inside a field (namespaces="a b") keep its spaces, as sshkey_advance_past_options.
    const match = /^(?:[^ \t"\\]|\\"?|"(?:[^"\\]|\\.)*")*/.exec(this.rest);
    const value = match?.[0] ?? '';
    this.rest = this.rest.slice(value.length);
    return value;
  }
}

function parseOptions(field: string, fail: (why: string) => never): Map<string, string | true> {
  const options = new Map<string, string | true>();
  const parts = field.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) ?? [];
  if (parts.join(',') !== field) fail(`the options ${field} are malformed`);
  for (const part of parts) {
    const match = /^([A-Za-z-]+)(?:=(.*))?$/.exec(part);
    if (!match?.[1]) return fail(`the option ${part} is malformed`);
    const name = match[1].toLowerCase();
    if (!['cert-authority', 'namespaces', 'valid-after', 'valid-before'].includes(name))
      fail(`the option ${name} is not one ssh-keygen knows for allowed signers`);
    if (options.has(name)) fail(`the option ${name} is given twice`);
    const value = match[2];
    if (value === undefined) options.set(name, true);
    else if (/^"(?:[^"\\]|\\.)*"$/.test(value))
      options.set(name, value.slice(1, -1).replace(/\\"/g, '"'));
    else fail(`the value of ${name} must be in double quotes, as ssh-keygen requires`);
  }
  return options;
}

function stringOption(
  options: Map<string, string | true>,
  name: string,
  fail: (why: string) => never,
): string | undefined {
  const value = options.get(name);
  if (value === true) fail(`the option ${name} needs a value`);
  return value;
}

function timeOption(
  options: Map<string, string | true>,
  name: string,
  fail: (why: string) => never,
): Date | undefined {
  const value = stringOption(options, name, fail);
  if (value === undefined) return undefined;
  return (
    parseSshTime(value) ?? fail(`${name}="${value}" is not YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]`)
  );
}

/**
 * An allowed_signers timestamp: YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z], local time unless it ends in Z
 * (OpenSSH misc.c parse_absolute_time).
 */
export function parseSshTime(value: string): Date | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(Z?)$/.exec(value);
  if (!match) return undefined;
  const at = (index: number) => Number(match[index] ?? 0);
  const [year, month, day, hour, minute, second] = [at(1), at(2), at(3), at(4), at(5), at(6)];
  const utc = match[7] === 'Z';
  const date = utc
    ? new Date(Date.UTC(year, month - 1, day, hour, minute, second))
    : new Date(year, month - 1, day, hour, minute, second);
  // Date rolls 20240230 over to March: a date that does not exist is an error, not a guess.
  const check = utc ? date.getUTCDate() : date.getDate();
  return check === day && month >= 1 && month <= 12 && hour < 24 && minute < 60 && second < 60
    ? date
    : undefined;
}

/**
 * OpenSSH's match_pattern_list (ssh_config(5) PATTERNS): comma-separated patterns with `*` and
 * `?`; a match of a pattern that starts with `!` rejects the value whatever else matches.
 * Case-sensitive, as ssh-keygen matches principals.
 * @example matchPatternList('ann@example.com', '*@example.com,!bob@example.com') // true
 */
export function matchPatternList(value: string, list: string): boolean {
  let matched = false;
  for (const raw of list.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    if (!matchPattern(value, pattern)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

/**
 * `*` and `?` wildcards, matched by the classic two-pointer walk: O(n·m) on the value, which an
 * attacker writes (the committer email), where a regular expression could backtrack for minutes.
 */
function matchPattern(value: string, pattern: string): boolean {
  const v = Array.from(value);
  const p = Array.from(pattern);
  let i = 0;
  let j = 0;
  let star = -1;
  let resume = 0;
  while (i < v.length) {
    if (j < p.length && (p[j] === '?' || (p[j] !== '*' && p[j] === v[i]))) {
      i++;
      j++;
    } else if (j < p.length && p[j] === '*') {
      star = j++;
      resume = i;
    } else if (star >= 0) {
      j = star + 1;
      i = ++resume;
    } else {
      return false;
    }
  }
  while (p[j] === '*') j++;
  return j === p.length;
}
