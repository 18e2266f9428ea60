import {closeSync, constants, fstatSync, openSync, promises as fsp, realpathSync} from 'node:fs';
import path from 'node:path';
import {z} from 'zod';
import {configIssuesError} from '../support/config-issues.js';
import {ConfigError, IntegrityError} from '../support/errors.js';
import {fileMatches, vendoredMismatch} from './integrity.js';

/** The manifest at the vendor repository root; `docs/vendor-format.md` documents it. */
export const MANIFEST_FILE = 'vendor-manifest.json';

export const ecosystems = ['npm', 'pypi', 'github', 'yarn'] as const;
export type Ecosystem = (typeof ecosystems)[number];

const artifactSchema = z.strictObject({
  ecosystem: z.enum(ecosystems),
  name: z.string().min(1),
  version: z.string().min(1),
  path: z.string().min(1),
  integrity: z.string().min(1),
  source: z.string(),
  size: z.number().int().nonnegative(),
});

const manifestSchema = z.strictObject({
  format: z.literal(1),
  artifacts: z.array(artifactSchema),
});

export type Artifact = z.infer<typeof artifactSchema>;
export type VendorManifest = z.infer<typeof manifestSchema>;

/**
 * Read and validate `vendor-manifest.json` from an exported vendor tree. The file must be a
 * regular file (a symlink could point anywhere on the node), and every artifact path must stay
 * inside the vendor tree.
 */
export async function readVendorManifest(vendorDir: string): Promise<VendorManifest> {
  const file = path.join(vendorDir, MANIFEST_FILE);
  const text = await readRegularFile(file, `the vendor manifest ${MANIFEST_FILE}`);
  if (text === undefined) {
    throw new ConfigError(
      `The vendor repository has no ${MANIFEST_FILE} at its root.`,
      'Run vendor-sync to write the vendor repository in the documented format (docs/vendor-format.md).',
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(
      `${MANIFEST_FILE} in the vendor repository is not valid JSON.`,
      undefined,
      {cause: error},
    );
  }
  const parsed = manifestSchema.safeParse(data, {reportInput: true});
  if (!parsed.success) {
    // The first few: a manifest written by another version may be wrong on every artifact.
    throw configIssuesError(
      {
        where: `${MANIFEST_FILE} in the vendor repository`,
        doc: 'docs/vendor-format.md',
        fix: 'vendor-sync writes this file; run it again rather than editing by hand.',
      },
      parsed.error.issues.slice(0, 5),
      data,
    );
  }
  for (const artifact of parsed.data.artifacts) checkArtifactPath(artifact);
  return parsed.data;
}

/** PEP 503 name normalization: runs of `-`, `_`, `.` become `-`, lower case. */
export function normalizePypiName(name: string): string {
  return name.replace(/[-_.]+/g, '-').toLowerCase();
}

/** The artifacts of one ecosystem with this name and version. */
export function findArtifacts(
  manifest: VendorManifest,
  ecosystem: Ecosystem,
  name: string,
  version: string,
): Artifact[] {
  return artifactIndex(manifest.artifacts).get(packageKey(ecosystem, name, version)) ?? [];
}

function packageKey(ecosystem: Ecosystem, name: string, version: string): string {
  return `${ecosystem}\0${ecosystem === 'pypi' ? normalizePypiName(name) : name}\0${version}`;
}

/**
 * The artifacts by package, made once per list: a deploy or a sync looks up every one of a
 * lockfile's thousand entries, and a scan of the list for each is a million comparisons. A list
 * that grew since is indexed again.
 */
const indexes = new WeakMap<Artifact[], {length: number; byKey: Map<string, Artifact[]>}>();

function artifactIndex(artifacts: Artifact[]): Map<string, Artifact[]> {
  const known = indexes.get(artifacts);
  if (known?.length === artifacts.length) return known.byKey;
  const byKey = new Map<string, Artifact[]>();
  for (const a of artifacts) {
    const key = packageKey(a.ecosystem, a.name, a.version);
    const list = byKey.get(key);
    if (list) list.push(a);
    else byKey.set(key, [a]);
  }
  indexes.set(artifacts, {length: artifacts.length, byKey});
  return byKey;
}

function checkArtifactPath(artifact: Artifact): void {
  const p = artifact.path;
  const normalized = path.posix.normalize(p);
  if (
    path.posix.isAbsolute(p) ||
    p.includes('\\') ||
    normalized !== p ||
    normalized.startsWith('../') ||
    normalized === '..' ||
    normalized.split('/').includes('.git')
  ) {
    throw new IntegrityError(
      `${MANIFEST_FILE} lists ${artifact.ecosystem} ${artifact.name}@${artifact.version} at "${p}", outside the vendor tree.`,
      'Artifact paths must be relative paths inside the vendor repository.',
    );
  }
}

/**
 * Check that the artifact file in `vendorDir` exists as a regular file inside the vendor tree
 * (no symlink anywhere on its path) and that its bytes match `integrity` (lib/pins/integrity.ts).
 * Returns the absolute path of the verified file.
 */
export async function verifyArtifactFile(
  vendorDir: string,
  artifact: Artifact,
  integrity: string,
): Promise<string> {
  const file = path.join(vendorDir, ...artifact.path.split('/'));
  const label = `${artifact.ecosystem} ${artifact.name}@${artifact.version} (${artifact.path})`;
  // Synchronous calls: for the many small files of a vendor tree, a few direct syscalls each
  // beat the same calls through the thread pool several times over.
  let real: string;
  try {
    real = realpathSync.native(file);
  } catch {
    throw new IntegrityError(
      `${label} is listed in ${MANIFEST_FILE} but missing from the vendor repository.`,
      'Run vendor-sync to add it, commit, and pin the new vendor commit.',
    );
  }
  const notInside = () =>
    new IntegrityError(
      `${label} is not a regular file inside the vendor tree (a symlink on its path?).`,
      'Vendored artifacts must be regular files committed to the vendor repository.',
    );
  if (real !== path.join(realpathSync.native(vendorDir), ...artifact.path.split('/'))) {
    throw notInside();
  }
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    throw notInside();
  }
  try {
    if (!fstatSync(fd).isFile()) throw notInside();
    let matches: boolean;
    try {
      matches = await fileMatches(fd, integrity);
    } catch (error) {
      throw vendoredMismatch(label, integrity, error);
    }
    if (!matches) throw vendoredMismatch(label, integrity);
  } finally {
    closeSync(fd);
  }
  return file;
}

/** Read a file that must be a regular file; undefined when it does not exist. */
export async function readRegularFile(file: string, what: string): Promise<string | undefined> {
  let stat;
  try {
    stat = await fsp.lstat(file);
  } catch {
    return undefined;
  }
  // protection R15-regular-file: a lockfile that is a symlink is never read
  if (!stat.isFile()) {
    throw new IntegrityError(
      `Refused to read ${what}: ${file} is ${stat.isSymbolicLink() ? 'a symlink' : 'not a regular file'}.`,
      'Commit it as a regular file.',
    );
  }
  const handle = await fsp.open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}
