import type {GithubAsset} from '../pins/deploy-config.js';
import {pinFromSha256, samePin} from '../pins/integrity.js';
import {findArtifacts, verifyArtifactFile, type VendorManifest} from '../pins/vendor-manifest.js';
import {IntegrityProblems} from './types.js';

/**
 * Check every GitHub release asset `deploy.json` declares against its pinned sha256, in the
 * vendor tree, before any installer runs. Returns the verified file paths.
 */
export async function verifyAssets(
  assets: GithubAsset[],
  vendorDir: string | undefined,
  manifest: VendorManifest | undefined,
): Promise<string[]> {
  const problems = new IntegrityProblems('github');
  const files: string[] = [];
  for (const asset of assets) {
    const name = `${asset.repo}/${asset.name}`;
    const integrity = pinFromSha256(asset.sha256);
    const artifact = manifest
      ? findArtifacts(manifest, 'github', name, asset.tag).find(a =>
          samePin(a.integrity, integrity),
        )
      : undefined;
    if (!artifact || !vendorDir) {
      problems.add(
        name,
        `${name}@${asset.tag}: not in the vendor repo with sha256 ${asset.sha256.slice(0, 12)}…`,
        'missing',
      );
      continue;
    }
    try {
      files.push(await verifyArtifactFile(vendorDir, artifact, integrity));
    } catch (error) {
      problems.add(name, (error as Error).message, 'tampered');
    }
  }
  problems.throwIfAny(manifest === undefined);
  return files;
}
