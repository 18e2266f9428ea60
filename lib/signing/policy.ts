/**
 * The node's signing policy (issue 20): which keys may sign the app and the vendor repository, and
 * what of the app must be signed. It is a file on the node (`--signing-policy <file>`, e.g.
 * /etc/repodeploy/signing.json), never read from a changeset, so an app cannot relax it.
 */
import {readFile} from 'node:fs/promises';
import path from 'node:path';
import {z} from 'zod';
import {parseJsonStrict} from '../pins/deploy-config.js';
import {configIssuesError} from '../support/config-issues.js';
import {ConfigError, describeError} from '../support/errors.js';
import {parseAllowedSigners, type AllowedSigner} from './allowed-signers.js';
import {readPgpKeys, type PgpKey} from './openpgp.js';

export type RepoName = 'app' | 'vendor';

const signerFiles = {
  /** OpenSSH allowed_signers files, relative to the policy file. */
  allowed_signers: z.array(z.string().min(1)).default([]),
  /** Armored OpenPGP public key files, relative to the policy file. */
  openpgp_keys: z.array(z.string().min(1)).default([]),
};

const schema = z.strictObject({
  app: z.strictObject({
    /** What `--rev` must name: a signed commit, a signed annotated tag, or either. */
    require: z.enum(['commit', 'tag', 'commit-or-tag']),
    ...signerFiles,
  }),
  vendor: z.strictObject({
    /** The pinned vendor commit must be signed, or (explicitly) is not checked. */
    require: z.enum(['commit', 'none']),
    ...signerFiles,
  }),
});

/** What the policy's keys hold, for messages about a wrong one. */
const POLICY_KEYS: Record<string, string> = {
  app: "the app repository's rule and keys",
  vendor: "the vendor repository's rule and keys",
  'app.require': 'what --rev must name',
  'vendor.require': 'whether the vendor commit must be signed',
};

/** The keys one repository's commits and tags may be signed with. */
export type SignerSet = {ssh: AllowedSigner[]; openpgp: PgpKey[]};

export type SigningPolicy = {
  /** The policy file, absolute, for messages. */
  file: string;
  app: {require: 'commit' | 'tag' | 'commit-or-tag'; signers: SignerSet};
  vendor: {require: 'commit' | 'none'; signers: SignerSet};
};

/**
 * Read and validate the node's policy file and every key file it names. Throws a ConfigError that
 * names the file and the key (or file:line) that is wrong.
 * @example const policy = await loadSigningPolicy('/etc/repodeploy/signing.json')
 */
export async function loadSigningPolicy(
  file: string,
  options: {cwd?: string} = {},
): Promise<SigningPolicy> {
  const absolute = path.resolve(options.cwd ?? process.cwd(), file);
  const text = await readText(absolute, 'The signing policy');
  const data = parseJson(text, absolute);
  const parsed = schema.safeParse(data, {reportInput: true});
  if (!parsed.success) {
    throw configIssuesError(
      {where: absolute, doc: 'docs/signing.md', keys: POLICY_KEYS},
      parsed.error.issues,
      data,
    );
  }
  const dir = path.dirname(absolute);
  const app = await loadSigners(parsed.data.app, dir, `${absolute}: app`, true);
  const vendor = await loadSigners(
    parsed.data.vendor,
    dir,
    `${absolute}: vendor`,
    parsed.data.vendor.require !== 'none',
  );
  return {
    file: absolute,
    app: {require: parsed.data.app.require, signers: app},
    vendor: {require: parsed.data.vendor.require, signers: vendor},
  };
}

function parseJson(text: string, file: string): unknown {
  return parseJsonStrict(text, file, {
    fix: 'Fix the signing policy on the node.',
    keepOne: 'keep one of them.',
  });
}

async function loadSigners(
  entry: {allowed_signers: string[]; openpgp_keys: string[]},
  dir: string,
  where: string,
  required: boolean,
): Promise<SignerSet> {
  const ssh: AllowedSigner[] = [];
  for (const name of entry.allowed_signers) {
    const file = path.resolve(dir, name);
    ssh.push(...parseAllowedSigners(await readText(file, `${where}: allowed_signers`), file));
  }
  const openpgp: PgpKey[] = [];
  for (const name of entry.openpgp_keys) {
    const file = path.resolve(dir, name);
    openpgp.push(...(await readPgpKeys(await readText(file, `${where}: openpgp_keys`), file)));
  }
  if (required && ssh.length === 0 && openpgp.length === 0) {
    throw new ConfigError(
      `${where} requires signatures but lists no key (its files hold no signer).`,
      "Name an allowed_signers file or an OpenPGP key file that holds the signers' keys.",
    );
  }
  return {ssh, openpgp};
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `${what} ${file} cannot be read: ${describeError(error)}`,
      'Give the path of a file on this node.',
      {cause: error},
    );
  }
}
