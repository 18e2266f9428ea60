import {promises as fsp} from 'node:fs';
import path from 'node:path';
import pLimit from 'p-limit';
import {writeFileAtomic} from '../lib/fsutil.js';
import {MANIFEST_FILE, type Artifact, type VendorManifest} from '../lib/vendor-manifest.js';
import type {Http} from './http.js';
import type {Plan} from './plan.js';
import type {Progress} from './progress.js';

/**
 * Carry out a plan in the vendor work tree: download (8–16 at once, each through a temp file and
 * verified before it is renamed into place), remove what nothing needs, write the manifest.
 * Returns the new manifest.
 */
export async function applyPlan(options: {
  vendorDir: string;
  plan: Plan;
  http: Http;
  concurrency: number;
  progress: Progress;
}): Promise<VendorManifest> {
  const {vendorDir, plan, http} = options;
  // Downloads land in a staging folder inside .git (same file system, outside the work tree) and
  // move into place only once every one of them has arrived and been verified: a failed run
  // leaves the work tree as it was.
  const staging = path.join(vendorDir, '.git', `vendor-sync-staging-${process.pid}`);
  await fsp.rm(staging, {recursive: true, force: true});
  const limit = pLimit(options.concurrency);
  let downloaded: Artifact[];
  try {
    downloaded = await Promise.all(
      plan.download.map(item =>
        limit(async () => {
          const size = await http.download(
            item.url,
            path.join(staging, ...item.path.split('/')),
            item.integrity,
            item.headers,
          );
          options.progress.tick(`${item.ecosystem} ${item.name} ${item.version}`);
          return {
            ecosystem: item.ecosystem,
            name: item.name,
            version: item.version,
            path: item.path,
            integrity: item.integrity,
            source: item.source,
            size,
          };
        }),
      ),
    );
    options.progress.stop();
    for (const artifact of downloaded) {
      const target = path.join(vendorDir, ...artifact.path.split('/'));
      await fsp.mkdir(path.dirname(target), {recursive: true});
      await fsp.rename(path.join(staging, ...artifact.path.split('/')), target);
    }
  } finally {
    options.progress.stop();
    await fsp.rm(staging, {recursive: true, force: true});
  }
  for (const artifact of plan.remove) {
    const file = path.join(vendorDir, ...artifact.path.split('/'));
    await fsp.rm(file, {force: true});
    await removeEmptyParents(path.dirname(file), vendorDir);
  }
  const byPath = new Map<string, Artifact>();
  const removed = new Set(plan.remove.map(a => a.path));
  for (const artifact of plan.manifest.artifacts)
    if (!removed.has(artifact.path)) byPath.set(artifact.path, artifact);
  for (const artifact of downloaded) byPath.set(artifact.path, artifact);
  const manifest: VendorManifest = {format: 1, artifacts: sortArtifacts([...byPath.values()])};
  await writeFileAtomic(
    path.join(vendorDir, MANIFEST_FILE),
    `${JSON.stringify(manifest, null, 2)}\n`,
  );
  return manifest;
}

export function sortArtifacts(artifacts: Artifact[]): Artifact[] {
  return [...artifacts].sort(
    (a, b) =>
      a.ecosystem.localeCompare(b.ecosystem) ||
      a.name.localeCompare(b.name) ||
      a.version.localeCompare(b.version) ||
      a.path.localeCompare(b.path),
  );
}

async function removeEmptyParents(dir: string, stopAt: string): Promise<void> {
  let current = dir;
  while (current.startsWith(`${stopAt}${path.sep}`)) {
    try {
      await fsp.rmdir(current);
    } catch {
      return;
    }
    current = path.dirname(current);
  }
}
