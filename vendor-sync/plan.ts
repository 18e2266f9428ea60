import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {IntegrityError, SourceError} from '../lib/support/errors.js';
import {pinFromSha256, samePin, shortIntegrity} from '../lib/pins/integrity.js';
import {
  findArtifacts,
  MANIFEST_FILE,
  readVendorManifest,
  verifyArtifactFile,
  type Artifact,
  type VendorManifest,
} from '../lib/pins/vendor-manifest.js';
import type {Http} from './http.js';
import {managerTarball} from './sources/package-manager.js';
import type {Need} from './needs.js';
import {fetchBerryZips, type BerryProject, type YarnNeed} from './sources/yarn-berry.js';
import {findBerryZip} from '../lib/pins/yarn-berry-lock.js';
import type {GithubClient} from '../lib/http/github.js';
import {assetDownloadUrl} from './sources/github.js';
import {npmDownloadUrl, type NpmUpstream} from './sources/npm.js';
import {listProjectFiles} from './sources/pypi.js';
import {filesForTarget, type PythonTarget} from './sources/wheel-tags.js';

/** An artifact to download: where from, and with which headers. */
export type Download = Artifact & {
  url: string;
  headers: Record<string, string>;
  /** A file made here (a Yarn cache zip) to copy in, checked, instead of downloading `url`. */
  from?: string;
};

export type Change =
  | {kind: 'added'; artifact: Artifact}
  | {kind: 'updated'; from: Artifact; to: Artifact}
  | {kind: 'removed'; artifact: Artifact}
  | {kind: 'restored'; artifact: Artifact};

/** One change in the words every report uses: the artifact, and what became of its version. */
export function changeSummary(change: Change): {artifact: Artifact; versions: string} {
  if (change.kind === 'updated') {
    return {artifact: change.to, versions: `${change.from.version} → ${change.to.version}`};
  }
  return {artifact: change.artifact, versions: change.artifact.version};
}

export type Plan = {
  manifest: VendorManifest;
  keep: Artifact[];
  download: Download[];
  remove: Artifact[];
  changes: Change[];
  /** Removes what making the plan left for applying it (the Yarn cache zips); call once. */
  dispose: () => Promise<void>;
};

export type Upstreams = {
  npm: NpmUpstream;
  npmRegistries: string[];
  pypiIndex: string;
  /** Vendor only the PyPI files these nodes can install; undefined: every file a hash allows. */
  pypiTarget?: PythonTarget | undefined;
  github: () => GithubClient;
  githubToken: string | undefined;
};

/**
 * Compare what the app needs with what the vendor repo holds. Artifacts already vendored are
 * verified against the app's hash; one vendored for the same version with other bytes (an upstream
 * re-publish) stops the run: it is never overwritten.
 */
export async function makePlan(options: {
  vendorDir: string;
  needs: Need[];
  http: Http;
  upstreams: Upstreams;
  keepUnused: boolean;
  /** A Yarn 2+ app's project, to run its Yarn for the cache zips not vendored yet. */
  berry?: BerryProject | undefined;
}): Promise<Plan> {
  const {vendorDir, http, upstreams} = options;
  const manifest = await readManifestOrEmpty(vendorDir);
  const keep: Artifact[] = [];
  const download: Download[] = [];
  const republished: string[] = [];
  const zips: {kept: Artifact[]; missing: YarnNeed[]; manager?: Need} = {kept: [], missing: []};

  for (const asked of options.needs) {
    if (asked.ecosystem === 'yarn') {
      const zip = await keptZip(vendorDir, manifest, asked);
      if (zip) zips.kept.push(zip);
      else zips.missing.push(asked);
      continue;
    }
    const need = await withManagerTarball(asked, http, upstreams, manifest);
    if (need.ecosystem === 'npm' && need.manager) zips.manager = need;
    const same = findArtifacts(manifest, need.ecosystem, need.name, need.version);
    const matching = same.filter(a => samePin(a.integrity, need.integrity));
    // protection R26-no-overwrite: a vendored version is never overwritten with other bytes
    if (need.ecosystem !== 'pypi' && same.length > 0 && matching.length === 0) {
      republished.push(
        `${need.ecosystem} ${need.name}@${need.version}: vendored as ${short(same[0]?.integrity)}, the app pins ${short(need.integrity)}`,
      );
      continue;
    }
    const good = await intactCopies(vendorDir, matching);
    if (good.length > 0) {
      keep.push(...good);
      continue;
    }
    const found = await downloadsFor(need, http, upstreams, manifest);
    download.push(...found.download);
    republished.push(...found.republished);
  }
  refuseRepublished(republished);
  keep.push(...zips.kept);
  const berry = await berryDownloads(options, manifest, zips);
  download.push(...berry.download);

  const unique = onePerPath(download);
  const wanted = new Set([...keep, ...unique].map(a => a.path));
  const remove = options.keepUnused ? [] : manifest.artifacts.filter(a => !wanted.has(a.path));
  return {
    manifest,
    keep,
    download: unique,
    remove,
    changes: describeChanges(unique, remove, manifest),
    dispose: berry.dispose,
  };
}

/** A need's cache zip as vendored, when it is there and intact. */
async function keptZip(
  vendorDir: string,
  manifest: VendorManifest,
  need: YarnNeed,
): Promise<Artifact | undefined> {
  const same = findArtifacts(manifest, 'yarn', need.name, need.version);
  const artifact = findBerryZip(same, need, need.cacheKey);
  return artifact ? (await intactCopies(vendorDir, [artifact]))[0] : undefined;
}

/**
 * The cache zips not vendored yet, made by running the app's pinned Yarn (from the vendor tree
 * when it is there, else downloaded and checked) in a scratch directory of its own.
 */
async function berryDownloads(
  options: {vendorDir: string; http: Http; upstreams: Upstreams; berry?: BerryProject | undefined},
  manifest: VendorManifest,
  zips: {kept: Artifact[]; missing: YarnNeed[]; manager?: Need},
): Promise<{download: Download[]; dispose: () => Promise<void>}> {
  const none = {download: [], dispose: () => Promise.resolve()};
  // Zips only for other platforms do not start Yarn: it fetches them only if it needs them here.
  if (zips.missing.every(need => need.optional)) return none;
  const {berry, upstreams} = options;
  const manager = zips.manager;
  if (!berry || manager?.ecosystem !== 'npm')
    throw new Error('Yarn zips needed without a Yarn project');
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-vendor-sync-yarn-'));
  const dispose = () => fsp.rm(scratch, {recursive: true, force: true});
  try {
    const yarnTarball = await managerFile(options, manifest, manager, scratch);
    const registry =
      upstreams.npm.registry ?? upstreams.npmRegistries[0] ?? 'https://registry.npmjs.org/';
    const fetched = await fetchBerryZips({
      project: berry,
      missing: zips.missing,
      known: zips.kept.map(a => path.join(options.vendorDir, ...a.path.split('/'))),
      yarnTarball,
      registry,
      scopes: upstreams.npm.scopes,
      scratch,
      env: process.env,
    });
    const source = `${registry} via ${berry.pin.packageName}@${berry.pin.version}`;
    const download = fetched.map(zip =>
      Object.assign(
        downloadOf(zip.need, {path: zip.path, integrity: zip.integrity, source, url: ''}),
        {from: zip.file},
      ),
    );
    return {download, dispose};
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** The pinned Yarn release's tarball: the vendored copy if intact, else downloaded and checked. */
async function managerFile(
  options: {vendorDir: string; http: Http},
  manifest: VendorManifest,
  need: Extract<Need, {ecosystem: 'npm'}>,
  scratch: string,
): Promise<string> {
  const same = findArtifacts(manifest, 'npm', need.name, need.version).filter(a =>
    samePin(a.integrity, need.integrity),
  );
  const [good] = await intactCopies(options.vendorDir, same);
  if (good) return path.join(options.vendorDir, ...good.path.split('/'));
  const file = path.join(scratch, 'yarn.tgz');
  await options.http.download(need.url, file, need.integrity);
  return file;
}

/**
 * A `packageManager` need with its tarball's integrity and URL filled in (the registry's standard
 * tarball path when the pin's hash already is the integrity); other needs as they are.
 */
async function withManagerTarball(
  need: Need,
  http: Http,
  upstreams: Upstreams,
  manifest: VendorManifest,
): Promise<Need> {
  if (need.ecosystem !== 'npm' || !need.manager || need.url !== '') return need;
  const registry = upstreams.npmRegistries[0] ?? 'https://registry.npmjs.org/';
  if (need.integrity !== '') {
    const base = need.name.split('/').pop() ?? need.name;
    const url = new URL(`${need.name}/-/${base}-${need.version}.tgz`, registry).href;
    return {...need, url};
  }
  const found = await managerTarball(need.manager, http, upstreams.npm, registry, manifest);
  return {...need, ...found};
}

/** The vendored copies whose files are there and intact (a damaged one is downloaded again). */
async function intactCopies(vendorDir: string, matching: Artifact[]): Promise<Artifact[]> {
  const good: Artifact[] = [];
  for (const artifact of matching) {
    try {
      await verifyArtifactFile(vendorDir, artifact, artifact.integrity);
      good.push(artifact);
    } catch {
      // Missing or damaged in the work tree: download it again (same pinned bytes).
    }
  }
  return good;
}

type Found = {download: Download[]; republished: string[]};

/** What to download for a need not vendored yet, and the files upstream re-published. */
async function downloadsFor(
  need: Need,
  http: Http,
  upstreams: Upstreams,
  manifest: VendorManifest,
): Promise<Found> {
  if (need.ecosystem === 'npm') return {download: [npmDownload(need, upstreams)], republished: []};
  if (need.ecosystem === 'pypi') return pypiDownloads(need, http, upstreams, manifest);
  if (need.ecosystem === 'yarn') throw new Error('Yarn cache zips are made by berryDownloads');
  return {download: [await githubDownload(need, upstreams)], republished: []};
}

function npmDownload(need: Extract<Need, {ecosystem: 'npm'}>, upstreams: Upstreams): Download {
  const url = npmDownloadUrl(need.name, need.url, upstreams.npm, upstreams.npmRegistries);
  const base = need.name.split('/').pop() ?? need.name;
  return downloadOf(need, {
    path: `npm/${need.name}/${base}-${need.version}.tgz`,
    integrity: need.integrity,
    source: need.url,
    url,
  });
}

/** A download for `need`: what it is, where it goes, where from (its size is learnt on download). */
function downloadOf(
  need: Need,
  where: Pick<Download, 'path' | 'integrity' | 'source' | 'url'> & {headers?: Download['headers']},
): Download {
  // The order of the manifest's entries, which --dry-run --json prints.
  return {
    ecosystem: need.ecosystem,
    name: need.name,
    version: need.version,
    path: where.path,
    integrity: where.integrity,
    source: where.source,
    size: 0,
    url: where.url,
    headers: where.headers ?? {},
  };
}

/** Every file of the index for the pinned version whose hash the requirements file allows. */
async function pypiDownloads(
  need: Extract<Need, {ecosystem: 'pypi'}>,
  http: Http,
  upstreams: Upstreams,
  manifest: VendorManifest,
): Promise<Found> {
  const files = (await listProjectFiles(http, upstreams.pypiIndex, need.name)).filter(
    f => f.version === need.version,
  );
  const allowed = files.filter(
    f => f.sha256 !== undefined && samePin(need.integrity, pinFromSha256(f.sha256)),
  );
  if (allowed.length === 0) {
    throw new SourceError(
      `pypi ${need.name}==${need.version}: no file on ${upstreams.pypiIndex} has a hash the requirements file allows.`,
      'Check the index URL (--pypi-index) and the hashes in the requirements file.',
    );
  }
  const target = upstreams.pypiTarget;
  const chosen = target ? filesForTarget(allowed, target) : allowed;
  const found: Found = {download: [], republished: []};
  // A lock's package behind a marker may be for another platform than the nodes': pip decides.
  if (chosen.length === 0 && need.marker !== undefined) return found;
  if (chosen.length === 0 && target) {
    throw new SourceError(
      `pypi ${need.name}==${need.version}: of its hashed files (${allowed.map(f => f.filename).join(', ')}) none installs on ${target.platforms.join(', ')} with Python ${target.version}, and there is no sdist.`,
      'Hash a wheel for the nodes (or the sdist) in the requirements file: see docs/python.md.',
    );
  }
  for (const file of chosen) {
    const rel = `pypi/${file.filename}`;
    const clash = manifest.artifacts.find(
      a => a.path === rel && !samePin(a.integrity, need.integrity),
    );
    if (clash) {
      found.republished.push(
        `pypi ${file.filename}: vendored as ${short(clash.integrity)}, the index now serves ${short(pinFromSha256(file.sha256 ?? ''))}`,
      );
      continue;
    }
    found.download.push(
      downloadOf(need, {
        path: rel,
        integrity: pinFromSha256(file.sha256 ?? ''),
        source: file.url,
        url: file.url,
      }),
    );
  }
  return found;
}

async function githubDownload(
  need: Extract<Need, {ecosystem: 'github'}>,
  upstreams: Upstreams,
): Promise<Download> {
  const url = await assetDownloadUrl(upstreams.github(), need.asset);
  return downloadOf(need, {
    path: `github/${need.asset.repo}/${need.asset.tag}/${need.asset.name}`,
    integrity: need.integrity,
    source: url,
    url,
    headers: {
      accept: 'application/octet-stream',
      ...(upstreams.githubToken ? {authorization: `token ${upstreams.githubToken}`} : {}),
    },
  });
}

function refuseRepublished(republished: string[]): void {
  if (republished.length === 0) return;
  throw new IntegrityError(
    `Refused to overwrite vendored artifacts with different bytes for the same version:\n${republished.map(r => `  - ${r}`).join('\n')}`,
    'Upstream re-published these versions, or the pinned hashes changed. Investigate before trusting the new bytes; ' +
      'to accept them, remove the old files and their manifest entries from the vendor repo by hand.',
  );
}

/**
 * Each vendored file downloaded once, however many needs name it; two needs that would put
 * different bytes at one path are refused (the vendor repo holds one file per path).
 */
function onePerPath(download: Download[]): Download[] {
  const byPath = new Map<string, Download>();
  for (const item of download) {
    const known = byPath.get(item.path);
    if (!known) byPath.set(item.path, item);
    else if (!samePin(known.integrity, item.integrity)) {
      throw new IntegrityError(
        `Two pins need different bytes at ${item.path} (${short(known.integrity)} and ${short(item.integrity)}).`,
        'Pin one version of the artifact with one hash in the lockfile or requirements file.',
      );
    }
  }
  return [...byPath.values()];
}

function describeChanges(
  download: Artifact[],
  remove: Artifact[],
  manifest: VendorManifest,
): Change[] {
  const changes: Change[] = [];
  const removedLeft = [...remove];
  const listed = new Set(manifest.artifacts.map(a => a.path));
  for (const artifact of download) {
    if (listed.has(artifact.path)) {
      changes.push({kind: 'restored', artifact});
      continue;
    }
    const index = removedLeft.findIndex(
      r =>
        r.ecosystem === artifact.ecosystem &&
        r.name === artifact.name &&
        r.version !== artifact.version,
    );
    if (index !== -1) {
      const [from] = removedLeft.splice(index, 1);
      if (from) changes.push({kind: 'updated', from, to: artifact});
    } else {
      changes.push({kind: 'added', artifact});
    }
  }
  for (const artifact of removedLeft) changes.push({kind: 'removed', artifact});
  const key = (c: Change) => {
    const a = c.kind === 'updated' ? c.to : c.artifact;
    return `${a.ecosystem}\0${a.name}\0${a.version}`;
  };
  return changes.sort((a, b) => key(a).localeCompare(key(b)));
}

async function readManifestOrEmpty(vendorDir: string): Promise<VendorManifest> {
  try {
    await fsp.lstat(path.join(vendorDir, MANIFEST_FILE));
  } catch {
    return {format: 1, artifacts: []};
  }
  return readVendorManifest(vendorDir);
}

function short(integrity: string | undefined): string {
  return shortIntegrity(integrity ?? '');
}
