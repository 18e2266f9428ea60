/**
 * Hash verification as `deploy check` and `deploy` do it (the npm installer's verify step over a
 * release's vendor tree and lockfile), against `sha512sum` over the same files, run by run.
 */
import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import ssri from 'ssri';
import type {BenchArtifact} from './npm-vendor.js';

const exec = promisify(execFile);

export type HashRuns = {files: number; bytes: number; ours: number[]; native: number[]};

/**
 * A release directory whose lockfile pins `count` artifacts of `mib` MiB (deterministic bytes
 * that do not compress) that its vendor tree holds: what a deploy hashes when artifacts are large.
 */
export async function largeArtifactRelease(work: string, count: number, mib: number) {
  const dir = path.join(work, 'large-release');
  const artifacts: BenchArtifact[] = [];
  const packages: Record<string, unknown> = {};
  for (let i = 0; i < count; i++) {
    const name = `bench-large-${i}`;
    const data = Buffer.alloc(mib * 1024 * 1024);
    let x = 0x9e3779b9 ^ (i + 1);
    for (let k = 0; k < data.length; k += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      data.writeInt32LE(x | 0, k);
    }
    const rel = `npm/${name}/${name}-1.0.0.tgz`;
    const file = path.join(dir, 'vendor', rel);
    await fsp.mkdir(path.dirname(file), {recursive: true});
    await fsp.writeFile(file, data);
    const integrity = ssri.fromData(data, {algorithms: ['sha512']}).toString();
    const resolved = `https://registry.npmjs.org/${name}/-/${name}-1.0.0.tgz`;
    artifacts.push({
      ecosystem: 'npm',
      name,
      version: '1.0.0',
      path: rel,
      integrity,
      source: resolved,
      size: data.length,
    });
    packages[`node_modules/${name}`] = {version: '1.0.0', resolved, integrity};
  }
  await fsp.writeFile(
    path.join(dir, 'vendor', 'vendor-manifest.json'),
    JSON.stringify({format: 1, artifacts}, null, 2),
  );
  await fsp.writeFile(
    path.join(dir, 'package-lock.json'),
    JSON.stringify({
      name: 'large',
      lockfileVersion: 3,
      packages: {'': {name: 'large'}, ...packages},
    }),
  );
  return dir;
}

/** `runs` timed verifications of the release at `releaseDir`, each beside one `sha512sum`. */
export async function hashRuns(releaseDir: string, runs: number): Promise<HashRuns> {
  const {npmInstaller} = await import('../lib/install/npm.js');
  const {readVendorManifest} = await import('../lib/pins/vendor-manifest.js');
  const {silentReporter} = await import('../lib/support/reporter.js');
  const installer = npmInstaller({
    type: 'npm',
    directory: '.',
    scripts: true,
    dev: false,
    registries: ['https://registry.npmjs.org/'],
    reuse: true,
  });
  const vendorDir = path.join(releaseDir, 'vendor');
  const manifest = await readVendorManifest(vendorDir);
  const files = manifest.artifacts.map(a => path.join(vendorDir, a.path));
  let bytes = 0;
  for (const f of files) bytes += (await fsp.stat(f)).size;
  const result: HashRuns = {files: files.length, bytes, ours: [], native: []};
  for (let run = 0; run < runs; run++) {
    let t0 = performance.now();
    const verified = await installer.verify({
      releaseDir,
      vendorDir,
      manifest,
      logFile: '/dev/null',
      env: {},
      reporter: silentReporter,
      timeoutMs: 120_000,
    });
    if (verified.length !== files.length)
      throw new Error(`verified ${verified.length} of ${files.length} artifacts`);
    result.ours.push((performance.now() - t0) / 1000);
    t0 = performance.now();
    // Batches keep the argument list within the system's limit for any number of tarballs.
    for (let i = 0; i < files.length; i += 500) await exec('sha512sum', files.slice(i, i + 500));
    result.native.push((performance.now() - t0) / 1000);
  }
  return result;
}
