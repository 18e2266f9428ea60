import type {Hash} from 'node:crypto';
import {createReadStream, promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import * as tar from 'tar';
import {z} from 'zod';
import {
  changesetLocations,
  fetchChangeset,
  sourcesFrom,
  verifyFetchedSignatures,
} from '../deploy/changeset.js';
import {REPOS_DIR} from '../node/layout.js';
import {writeTrees} from '../deploy/writer.js';
import {DETACHED_SUFFIX, type BundlePin} from './pin.js';
import {DEPLOY_JSON, parseDeployConfig} from '../pins/deploy-config.js';
import {INSTALL_MARKER_FILES} from '../pins/detect-install.js';
import type {Deps} from '../support/deps.js';
import {detailsOnly} from '../support/reporter.js';
import {IntegrityError, UsageError} from '../support/errors.js';
import {bundleMismatch, sameDigest, sha256, sha256File, sha256Hex} from '../pins/integrity.js';
import {tempSibling, writeFileAtomic} from '../support/fs.js';
import {unsafeEntryName} from '../git/path-safety.js';
import {formatLocation, parseRepoLocation} from '../git/location.js';
import {TOOL_NAME, TOOL_VERSION} from '../support/version.js';
import type {AppSettings} from '../pins/vendor-pin.js';
import {loadSigningPolicy} from '../signing/policy.js';
import {recordSigners, signaturesSchema, type RecordedSigners} from '../signing/recorded.js';

/**
 * The seed's release-based route (Proposal 1) for nodes that cannot reach git: one archive with
 * the app tree, the vendor tree, the release metadata and a checksum list, built by the same code
 * that writes a release. Layout inside the .tar.gz:
 *
 *   repodeploy-bundle.json   what it is (format, app and vendor shas, symlinks)
 *   checksums.sha256         `sha256sum` lines for every regular file, the metadata included
 *   tree/...                 the release tree: the app at its commit, the vendor tree under vendor/
 */
export const BUNDLE_META = 'repodeploy-bundle.json';
export const BUNDLE_SUMS = 'checksums.sha256';
const TREE = 'tree';

const metaSchema = z.strictObject({
  format: z.literal(1),
  createdAt: z.string(),
  tool: z.strictObject({name: z.string(), version: z.string()}),
  app: z.strictObject({
    url: z.string(),
    requested: z.string(),
    sha: z.string().regex(/^[0-9a-f]{40}$/),
  }),
  vendor: z
    .strictObject({
      url: z.string(),
      sha: z.string().regex(/^[0-9a-f]{40}$/),
      source: z.enum(['deploy.json', 'submodule']),
    })
    .nullable(),
  /** Symlinks of the tree (path → target): their targets are covered by the checksum of this file. */
  symlinks: z.record(z.string(), z.string()),
  /**
   * Who signed the app and vendor commits, verified when the bundle was made with a signing policy
   * (`deploy bundle --signing-policy`): a bundle has no git objects to verify again, so a node with
   * a policy checks this record, which the bundle pin covers (docs/signing.md).
   */
  signatures: signaturesSchema.optional(),
});

export type BundleMeta = z.infer<typeof metaSchema>;

/** Limits a bundle must stay within (a compression bomb or a huge archive stops at them). */
export const BUNDLE_LIMITS = {maxEntries: 500_000, maxBytes: 8 * 1024 ** 3};

export type BundleResult = {
  out: string;
  /** The sha256 of the whole archive, which a node pins (`deploy --bundle F --sha256 <hex>`). */
  sha256: string;
  /** `<out>.sha256`, that sha256 in `sha256sum` format, to publish beside the bundle. */
  sha256File: string;
  appSha: string;
  vendorSha: string | null;
  /** The signers verified and recorded, when a signing policy was given. */
  signatures: RecordedSigners | null;
  files: number;
  bytes: number;
};

/**
 * `deploy bundle --rev X --out app-X.tar.gz`: fetch the changeset and its vendor pin exactly as a
 * deploy does (into a scratch directory), write the release tree, and pack it with checksums.
 */
export async function createBundle(
  options: {
    rev: string;
    repo: string;
    vendorRepo?: string | undefined;
    out: string;
    /** Verify the changeset against this signing policy and record its signers in the bundle. */
    signingPolicy?: string | undefined;
  },
  deps: Deps,
): Promise<BundleResult> {
  const out = path.resolve(deps.cwd, options.out);
  const policy = options.signingPolicy
    ? await loadSigningPolicy(options.signingPolicy, {cwd: deps.cwd})
    : undefined;
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-bundle-'));
  try {
    const {app: location, vendorOverride: override} = changesetLocations(
      options,
      deps.cwd,
      () => new UsageError('Missing --repo.'),
    );
    const sources = sourcesFrom(deps, [location, override]);
    const {store, resolved, tree, settings, vendor} = await fetchChangeset(
      path.join(scratch, REPOS_DIR),
      location,
      options.rev,
      override,
      sources,
    );
    const pin = settings.pin;
    // Before a byte of the bundle is written: a refused changeset makes no bundle.
    const signatures: RecordedSigners | undefined = policy
      ? recordSigners(await verifyFetchedSignatures({store, resolved, vendor}, policy))
      : undefined;
    const stage = path.join(scratch, 'bundle');
    await writeTrees(
      path.join(stage, TREE),
      {store, sha: resolved.sha, tree},
      vendor,
      detailsOnly(deps.reporter),
    );
    const {sums, symlinks, bytes} = await listTree(stage);
    const meta: BundleMeta = {
      format: 1,
      createdAt: deps.clock().toISOString(),
      tool: {name: TOOL_NAME, version: TOOL_VERSION},
      app: {url: formatLocation(location), requested: options.rev, sha: resolved.sha},
      vendor: pin ? {url: formatLocation(pin.location), sha: pin.sha, source: pin.source} : null,
      symlinks,
      ...(signatures ? {signatures} : {}),
    };
    await writeMetaAndSums(stage, meta, sums);
    const {sha256, sumsFile} = await packBundle(stage, out);
    return {
      out,
      sha256,
      sha256File: sumsFile,
      appSha: resolved.sha,
      vendorSha: pin?.sha ?? null,
      signatures: signatures ?? null,
      files: sums.length - 1,
      bytes,
    };
  } finally {
    await fse.remove(scratch);
  }
}

/** The staged tree's `sha256sum` lines, its symlinks (path → target) and its file bytes. */
async function listTree(
  stage: string,
): Promise<{sums: string[]; symlinks: Record<string, string>; bytes: number}> {
  const sums: string[] = [];
  const symlinks: Record<string, string> = {};
  let bytes = 0;
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await fsp.readdir(path.join(stage, rel), {withFileTypes: true})) {
      const child = `${rel}/${entry.name}`;
      const full = path.join(stage, child);
      if (entry.isSymbolicLink()) symlinks[child] = await fsp.readlink(full);
      else if (entry.isDirectory()) await walk(child);
      else {
        sums.push(`${await sha256File(full)}  ${child}`);
        bytes += (await fsp.stat(full)).size;
      }
    }
  };
  await walk(TREE);
  return {sums, symlinks, bytes};
}

/** The metadata file, then the checksum list (the metadata's own sum added to `sums`), sorted. */
async function writeMetaAndSums(stage: string, meta: BundleMeta, sums: string[]): Promise<void> {
  const metaText = `${JSON.stringify(meta, null, 2)}\n`;
  await fsp.writeFile(path.join(stage, BUNDLE_META), metaText);
  sums.unshift(`${sha256Hex(metaText)}  ${BUNDLE_META}`);
  await fsp.writeFile(path.join(stage, BUNDLE_SUMS), `${sums.sort(byPath).join('\n')}\n`);
}

/** The staged bundle packed beside `out` and renamed over it, with its detached sha256 file. */
async function packBundle(stage: string, out: string): Promise<{sha256: string; sumsFile: string}> {
  const tmp = tempSibling(out, 'bundle');
  await fse.ensureDir(path.dirname(out));
  await tar.c({gzip: true, file: tmp, cwd: stage, portable: true}, [
    BUNDLE_META,
    BUNDLE_SUMS,
    TREE,
  ]);
  const sha256 = await sha256File(tmp);
  await fsp.rename(tmp, out);
  const sumsFile = `${out}${DETACHED_SUFFIX}`;
  await writeFileAtomic(sumsFile, `${sha256}  ${path.basename(out)}\n`);
  return {sha256, sumsFile};
}

export type VerifiedBundle = {
  file: string;
  meta: BundleMeta;
  settings: AppSettings;
  sums: Map<string, string>;
  /** Every entry of the archive as it was verified: name → tar entry type. */
  entries: Map<string, string>;
};

type Refuse = (why: string) => IntegrityError;

/**
 * Read a bundle and check everything before a byte of it is written to the node: with a pin, the
 * sha256 of the whole file is the pinned one; every entry is a plain file, directory or symlink
 * under tree/ with a safe name, none goes through a symlink, no name appears twice, every file's
 * sha256 matches checksums.sha256 and every listed file is there. The pin is computed over the
 * same single read the entries are checked from, so the bytes checked are the bytes pinned.
 */
export async function verifyBundle(file: string, pin?: BundlePin | null): Promise<VerifiedBundle> {
  const refuse = (why: string) =>
    new IntegrityError(
      `Refused bundle ${file}: ${why}.`,
      'Build it again with `deploy bundle`; nothing was written to releases/.',
    );
  try {
    await fsp.access(file);
  } catch {
    throw new UsageError(`No bundle at ${file}.`);
  }
  const scan = new BundleScan(refuse);
  const whole = sha256();
  const unreadable = await readArchive(file, whole, entry => {
    scan.read(entry);
  }).catch((error: unknown) => {
    throw refuse(`cannot read it (${(error as Error).message})`);
  });
  // The pin first: a bundle that is not the published one (a truncated copy too) says so.
  if (pin) {
    const actual = whole.digest('hex');
    // protection R43-bundle-sha: the whole bundle file matches the sha256 the node pins
    if (!sameDigest(actual, pin.sha256)) throw bundleMismatch(file, actual, pin);
  }
  if (unreadable) throw refuse(`not a readable .tar.gz (${unreadable.message})`);
  await Promise.all(scan.pending);
  if (scan.problem) throw scan.problem;

  const sums = parseSums(scan.sumsText, refuse);
  checkSums(sums, scan.hashes, refuse);
  const meta = parseMeta(scan.metaText, scan.links, refuse);
  const rootFiles = new Set(
    INSTALL_MARKER_FILES.filter(name =>
      ['File', 'OldFile'].includes(scan.kinds.get(`${TREE}/${name}`) ?? ''),
    ),
  );
  const settings = bundleSettings(meta, scan.deployJson, file, rootFiles);
  return {file, meta, settings, sums, entries: scan.kinds};
}

/**
 * What one read of a bundle's entries found: each file's sha256, each entry's type, the
 * symlinks, the texts verifyBundle reads, and the first refusal (later entries are drained).
 */
class BundleScan {
  readonly hashes = new Map<string, string>();
  readonly kinds = new Map<string, string>();
  readonly links: string[] = [];
  sumsText = '';
  metaText = '';
  deployJson: string | undefined;
  problem: IntegrityError | undefined;
  /** One per file entry, settled once its hash (and kept text) is recorded. */
  readonly pending: Promise<void>[] = [];
  private entries = 0;
  private bytes = 0;

  constructor(private readonly refuse: Refuse) {}

  /** One tar entry: refused, recorded (directories, symlinks) or hashed as it streams by. */
  read(entry: tar.ReadEntry): void {
    this.entries++;
    this.bytes += entry.size;
    const name = entry.path.replace(/\/+$/, '');
    const why = this.refusal(entry, name);
    if (why) {
      this.fail(entry, why);
      return;
    }
    this.kinds.set(name, entry.type);
    if (entry.type === 'SymbolicLink') {
      this.links.push(name);
      entry.resume();
      return;
    }
    if (entry.type === 'Directory') {
      entry.resume();
      return;
    }
    if (entry.type !== 'File' && entry.type !== 'OldFile') {
      this.fail(
        entry,
        `entry "${name}" is a ${entry.type}; only files, directories and symlinks are allowed`,
      );
      return;
    }
    this.hash(name, entry);
  }

  private fail(entry: tar.ReadEntry, why: string): void {
    this.problem ??= this.refuse(why);
    entry.resume();
  }

  /** Why an entry cannot be in a bundle, judged by the counts, its name and those before it. */
  private refusal(entry: tar.ReadEntry, name: string): string | undefined {
    if (this.entries > BUNDLE_LIMITS.maxEntries) {
      return `more than ${BUNDLE_LIMITS.maxEntries} entries`;
    }
    if (this.bytes > BUNDLE_LIMITS.maxBytes) return `more than ${BUNDLE_LIMITS.maxBytes} bytes`;
    const why = badPath(name);
    if (why) return `entry "${entry.path}": ${why}`;
    if (this.kinds.has(name)) return `entry "${name}" appears twice`;
    const through = this.links.find(link => name.startsWith(`${link}/`));
    if (through) return `entry "${name}" would be written through the symlink ${through}`;
    return undefined;
  }

  /** A file's sha256 as it streams; the checksum list, metadata and deploy.json kept as text. */
  private hash(name: string, entry: tar.ReadEntry): void {
    const hash = sha256();
    const keep = name === BUNDLE_SUMS || name === BUNDLE_META || name === `${TREE}/${DEPLOY_JSON}`;
    const chunks: Buffer[] = [];
    entry.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      if (keep) chunks.push(chunk);
    });
    this.pending.push(
      new Promise<void>(resolve => {
        entry.on('end', () => {
          this.hashes.set(name, hash.digest('hex'));
          const text = Buffer.concat(chunks).toString('utf8');
          if (name === BUNDLE_SUMS) this.sumsText = text;
          else if (name === BUNDLE_META) this.metaText = text;
          else if (keep) this.deployJson = text;
          resolve();
        });
      }),
    );
  }
}

/** Every listed file is there with its sha256, and every file but the list itself is listed. */
function checkSums(sums: Map<string, string>, hashes: Map<string, string>, refuse: Refuse): void {
  for (const [name, expected] of sums) {
    const actual = hashes.get(name);
    if (!actual) throw refuse(`${name} is listed in ${BUNDLE_SUMS} but missing`);
    if (!sameDigest(actual, expected))
      throw refuse(`${name} does not match its sha256 in ${BUNDLE_SUMS}`);
  }
  for (const name of hashes.keys()) {
    if (name !== BUNDLE_SUMS && !sums.has(name)) throw refuse(`${name} is not in ${BUNDLE_SUMS}`);
  }
}

/** The bundle's metadata, whose symlinks must be exactly the archive's. */
function parseMeta(metaText: string, links: string[], refuse: Refuse): BundleMeta {
  let meta: BundleMeta;
  try {
    meta = metaSchema.parse(JSON.parse(metaText));
  } catch {
    throw refuse(`${BUNDLE_META} is missing or invalid`);
  }
  for (const link of links) {
    if (meta.symlinks[link] === undefined)
      throw refuse(`symlink ${link} is not listed in ${BUNDLE_META}`);
  }
  if (Object.keys(meta.symlinks).length !== links.length)
    throw refuse(`${BUNDLE_META} lists symlinks the archive lacks`);
  return meta;
}

/** The app settings a deploy of the bundle uses: its deploy.json and the vendor pin it carries. */
function bundleSettings(
  meta: BundleMeta,
  deployJson: string | undefined,
  file: string,
  rootFiles: ReadonlySet<string>,
): AppSettings {
  const config = parseDeployConfig(deployJson ?? '{}', `${DEPLOY_JSON} in ${file}`, rootFiles);
  return {
    config,
    pin: meta.vendor
      ? {
          source: meta.vendor.source,
          declaredUrl: meta.vendor.url,
          location: parseRepoLocation(meta.vendor.url),
          sha: meta.vendor.sha,
        }
      : undefined,
  };
}

/**
 * Stream the file once through `whole` and a tar parser. Resolves once the whole file has been
 * read (so `whole` covers every byte), with the error of an archive the parser gave up on, if it
 * did; rejects only when the file cannot be read.
 */
function readArchive(
  file: string,
  whole: Hash,
  onReadEntry: (entry: tar.ReadEntry) => void,
): Promise<Error | undefined> {
  return new Promise((resolve, reject) => {
    const parser = tar.t({onReadEntry});
    const input = createReadStream(file, {highWaterMark: 1024 * 1024});
    let unreadable: Error | undefined;
    let read = false;
    let parsed = false;
    const settle = () => {
      if (read && (parsed || unreadable)) resolve(unreadable);
    };
    input.on('data', chunk => whole.update(chunk as Buffer));
    input.on('error', reject);
    input.on('end', () => {
      read = true;
      settle();
    });
    parser.on('error', (error: Error) => {
      unreadable ??= error;
      // Read on to the end for the hash, without the parser.
      input.unpipe(parser);
      input.resume();
      settle();
    });
    parser.on('end', () => {
      parsed = true;
      settle();
    });
    input.pipe(parser);
  });
}

/**
 * Unpack a verified bundle's tree into `releaseDir`, then check every file written against the
 * checksums again (the archive could have changed between the two reads) and every symlink
 * against the metadata.
 */
export async function extractBundle(bundle: VerifiedBundle, releaseDir: string): Promise<void> {
  await fse.ensureDir(releaseDir);
  // Only entries that were verified, by name and type: a file swapped since the check could add
  // ones the check (and the pin) never saw.
  const unexpected: string[] = [];
  await tar.x({
    file: bundle.file,
    cwd: releaseDir,
    strip: 1,
    filter: (p, entry) => {
      if (!p.startsWith(`${TREE}/`)) return false;
      const name = p.replace(/\/+$/, '');
      // protection R43-verified-only: only verified entries are unpacked
      if ('type' in entry && bundle.entries.get(name) === entry.type) return true;
      unexpected.push(name);
      return false;
    },
    preservePaths: false,
    // Run as root, node-tar would keep the archive's owners: release files owned by some other
    // user, who could change them after the check. Files are the deploying user's, always.
    preserveOwner: false,
  });
  if (unexpected.length > 0) {
    throw new IntegrityError(
      `${bundle.file} changed while it was unpacked: ${unexpected[0]} was not in it when it was checked.`,
      'Copy the bundle again and deploy it.',
    );
  }
  for (const [name, expected] of bundle.sums) {
    if (!name.startsWith(`${TREE}/`)) continue;
    const target = path.join(releaseDir, name.slice(TREE.length + 1));
    const stat = await fsp.lstat(target);
    // No setuid, setgid or sticky bit comes from an archive (git has none to give either).
    if (stat.isFile() && (stat.mode & 0o7000) !== 0) await fsp.chmod(target, stat.mode & 0o777);
    if (!stat.isFile() || !sameDigest(await sha256File(target), expected)) {
      throw new IntegrityError(
        `${name} in ${bundle.file} changed while it was unpacked.`,
        'Copy the bundle again and deploy it.',
      );
    }
  }
  for (const [link, target] of Object.entries(bundle.meta.symlinks)) {
    const written = path.join(releaseDir, link.slice(TREE.length + 1));
    if ((await fsp.readlink(written)) !== target) {
      throw new IntegrityError(
        `Symlink ${link} in ${bundle.file} does not point where ${BUNDLE_META} says.`,
      );
    }
  }
}

function badPath(name: string): string | undefined {
  if (name === BUNDLE_META || name === BUNDLE_SUMS || name === TREE) return undefined;
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'absolute path';
  if (!name.startsWith(`${TREE}/`)) return `outside ${TREE}/`;
  for (const part of name.split('/')) {
    const why = unsafeEntryName(part);
    if (why) return why;
  }
  return undefined;
}

function parseSums(text: string, refuse: Refuse): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const match = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (!match?.[1] || !match[2]) throw refuse(`${BUNDLE_SUMS} has a malformed line`);
    sums.set(match[2], match[1]);
  }
  if (sums.size === 0) throw refuse(`${BUNDLE_SUMS} is missing or empty`);
  return sums;
}

function byPath(a: string, b: string): number {
  return a.slice(66).localeCompare(b.slice(66));
}
