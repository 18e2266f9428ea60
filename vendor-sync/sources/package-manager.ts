import ssri from 'ssri';
import {SourceError} from '../../lib/support/errors.js';
import {hasSha512} from '../../lib/pins/integrity.js';
import {checkPinnedHash, type PackageManagerPin} from '../../lib/pins/package-manager.js';
import {findArtifacts, type VendorManifest} from '../../lib/pins/vendor-manifest.js';
import {innerFile} from '../../lib/install/package-manager.js';
import type {Http} from '../http.js';
import {npmPackumentUrl, type NpmUpstream} from './npm.js';

/** The tarball to vendor for a `packageManager` pin: its npm integrity and where it is served. */
export type ManagerTarball = {integrity: string; url: string};

/**
 * The integrity and URL of the package manager's npm tarball. When the pin's own hash is the
 * tarball's sha512 the caller has both already; otherwise a copy vendored earlier (checked then)
 * gives the integrity, or the registry's packument does, and then the tarball is fetched once so
 * the pin's own hash (`+sha256.<hex>`, or a Yarn 2+ hash over `bin/yarn.js`) is checked before
 * anything is vendored.
 */
export async function managerTarball(
  pin: PackageManagerPin,
  http: Http,
  upstream: NpmUpstream,
  registry: string,
  manifest: VendorManifest,
): Promise<ManagerTarball> {
  const vendored = findArtifacts(manifest, 'npm', pin.packageName, pin.version)[0];
  if (vendored) return {integrity: vendored.integrity, url: vendored.source};
  const packumentUrl = npmPackumentUrl(pin.packageName, upstream, registry);
  const packument = await http.json<{
    versions?: Record<string, {dist?: {integrity?: string; tarball?: string}}>;
  }>(packumentUrl);
  const dist = packument.versions?.[pin.version]?.dist;
  if (!dist?.integrity || !hasSha512(dist.integrity) || !dist.tarball) {
    throw new SourceError(
      `${pin.packageName}@${pin.version} ("packageManager": "${pin.field}"): ${packumentUrl} lists no such release with a sha512 integrity.`,
      'Check the version in "packageManager" and the npm registry vendor-sync uses (--registry).',
    );
  }
  const tarballUrl = new URL(dist.tarball);
  if (tarballUrl.origin !== new URL(packumentUrl).origin) {
    throw new SourceError(
      `${pin.packageName}@${pin.version}: the registry points its tarball at another host (${tarballUrl.origin}).`,
      'Use a registry that serves its own tarballs (--registry).',
    );
  }
  if (pin.hash) {
    const bytes = await http.retrying(dist.tarball, {}, async body => {
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk);
      return Buffer.concat(chunks);
    });
    if (!ssri.checkData(bytes, dist.integrity)) {
      throw new SourceError(
        `${pin.packageName}@${pin.version}: ${dist.tarball} does not match the registry's own integrity.`,
        'Run again; if it persists, the registry or a proxy serves other bytes.',
      );
    }
    checkPinnedHash(pin, bytes, await innerFile(bytes, 'package/bin/yarn.js'));
  }
  return {integrity: dist.integrity, url: dist.tarball};
}
