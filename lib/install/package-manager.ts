import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {gunzipSync} from 'node:zlib';
import * as fse from 'fs-extra/esm';
import {Parser, type ReadEntry} from 'tar';
import * as tar from 'tar';
import {IntegrityError} from '../support/errors.js';
import {samePin, shortIntegrity} from '../pins/integrity.js';
import {checkPinnedHash, pinIntegrity, type PackageManagerPin} from '../pins/package-manager.js';
import {findArtifacts, verifyArtifactFile} from '../pins/vendor-manifest.js';
import {checkNpmTarball} from './tarball-check.js';
import type {InstallContext, VerifiedArtifact} from './types.js';

/** How a vendored package manager is started: `node <its bin file>`. */
export type ManagerCommand = {command: string; args: string[]; version: string};

/**
 * The vendored release of the package manager the app pins, its bytes checked against the
 * vendor manifest and, when `packageManager` carries a hash, against that hash too. Throws an
 * IntegrityError saying what to do.
 */
export async function verifyPackageManager(
  ctx: InstallContext,
  pin: PackageManagerPin,
): Promise<VerifiedArtifact> {
  const label = `${pin.packageName}@${pin.version} ("packageManager": "${pin.field}")`;
  const candidates = ctx.manifest
    ? findArtifacts(ctx.manifest, 'npm', pin.packageName, pin.version)
    : [];
  const wanted = pinIntegrity(pin);
  const artifact = candidates.find(a => wanted === undefined || samePin(a.integrity, wanted));
  if (!artifact) {
    throw new IntegrityError(
      candidates.length > 0 && wanted !== undefined
        ? `${label}: the vendor repo has it with another hash (${shortIntegrity(candidates[0]?.integrity ?? '')}) than package.json pins (${shortIntegrity(wanted)}); nothing was installed.`
        : `${label}: the package manager is not in the vendor repo; nothing was installed.`,
      'Run vendor-sync on this changeset (it vendors the packageManager release too), commit, and pin the new vendor commit.',
    );
  }
  const file = await verifyArtifactFile(ctx.vendorDir ?? '', artifact, artifact.integrity);
  await checkNpmTarball(file, label);
  const bytes = await fsp.readFile(file);
  checkPinnedHash(pin, bytes, await innerFile(bytes, 'package/bin/yarn.js'));
  return {
    name: pin.packageName,
    version: pin.version,
    integrity: artifact.integrity,
    file,
    label: `${label} (${artifact.path})`,
  };
}

/** One file's bytes from a (checked) npm tarball, or undefined when it has none of that path. */
export async function innerFile(tarball: Buffer, wanted: string): Promise<Buffer | undefined> {
  const parser = new Parser();
  let found: Buffer | undefined;
  parser.on('entry', (entry: ReadEntry) => {
    if (entry.path !== wanted) {
      entry.resume();
      return;
    }
    const chunks: Buffer[] = [];
    entry.on('data', (chunk: Buffer) => chunks.push(chunk));
    entry.on('end', () => {
      found = Buffer.concat(chunks);
    });
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
    parser.end(gunzipSync(tarball));
  });
  return found;
}

/**
 * Unpack a verified package-manager tarball into `dir` and return how to run it: the Node that
 * runs repodeploy, with the tarball's own `bin` entry for `binName`. Nothing of the node's PATH
 * (a pnpm or yarn installed there, or Corepack's shims) is used.
 */
export async function unpackPackageManager(
  verified: VerifiedArtifact,
  binName: string,
  dir: string,
): Promise<ManagerCommand> {
  await fse.ensureDir(dir);
  // checkNpmTarball refused links, absolute paths and `..` already; tar keeps its own guards on.
  await tar.x({file: verified.file, cwd: dir, strict: true, preservePaths: false});
  const packageDir = path.join(dir, 'package');
  const manifest = JSON.parse(
    await fsp.readFile(path.join(packageDir, 'package.json'), 'utf8'),
  ) as {
    bin?: string | Record<string, string>;
  };
  const bin = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin?.[binName];
  const file = bin === undefined ? undefined : path.resolve(packageDir, bin);
  if (file === undefined || !file.startsWith(`${packageDir}${path.sep}`)) {
    throw new IntegrityError(
      `${verified.label ?? verified.name}: its package.json names no "${binName}" program inside the package.`,
      'Vendor an official release of the package manager (vendor-sync does so from "packageManager").',
    );
  }
  return {command: process.execPath, args: [file], version: verified.version};
}
