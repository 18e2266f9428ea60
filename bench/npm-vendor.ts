/**
 * A lockfile of `count` npm packages and the vendor repository holding their tarballs, built in
 * this process in a few seconds: each package is two tiny generated files, packed as npm packs
 * them (a gzipped ustar archive under `package/`) with the `tar` library's header encoder, so the
 * bytes, and with them every integrity, are the same on every machine and every run.
 */
import {createReadStream} from 'node:fs';
import path from 'node:path';
import {pipeline} from 'node:stream/promises';
import {gzipSync} from 'node:zlib';
import cacache from 'cacache';
import ssri from 'ssri';
import {Header} from 'tar';

export type BenchArtifact = {
  ecosystem: string;
  name: string;
  version: string;
  path: string;
  integrity: string;
  source: string;
  size: number;
};

export type PackedPackage = {
  bytes: Buffer;
  artifact: BenchArtifact;
  lock: {version: string; resolved: string; integrity: string; license: string};
};

/** Deterministic pseudo-random source text, so every run builds the same packages. */
export function text(seed: number, length: number): string {
  let x = seed * 2654435761 + 1;
  let out = '';
  while (out.length < length) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out += `const v${x % 1000} = ${x};\n`;
  }
  return out.slice(0, length);
}

/** One ustar entry: header block, content, padding to 512 bytes. */
function tarEntry(name: string, content: Buffer): Buffer[] {
  const header = new Header({
    path: name,
    mode: 0o644,
    size: content.length,
    mtime: new Date(0),
    type: 'File',
    uid: 0,
    gid: 0,
  });
  header.encode();
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return [header.block ?? Buffer.alloc(512), content, pad];
}

/** A package as `npm pack` would give it: package.json and index.js, version 1.0.0. */
export function packPackage(name: string, seed: number): PackedPackage {
  const version = '1.0.0';
  const manifest = Buffer.from(JSON.stringify({name, version, main: 'index.js', license: 'MIT'}));
  const index = Buffer.from(`module.exports = ${seed};\n${text(seed, 1500 + (seed % 7) * 400)}`);
  const bytes = gzipSync(
    Buffer.concat([
      ...tarEntry('package/package.json', manifest),
      ...tarEntry('package/index.js', index),
      Buffer.alloc(1024),
    ]),
  );
  const integrity = ssri.fromData(bytes, {algorithms: ['sha512']}).toString();
  const resolved = `https://registry.npmjs.org/${name}/-/${name}-${version}.tgz`;
  return {
    bytes,
    artifact: {
      ecosystem: 'npm',
      name,
      version,
      path: `npm/${name}/${name}-${version}.tgz`,
      integrity,
      source: resolved,
      size: bytes.length,
    },
    lock: {version, resolved, integrity, license: 'MIT'},
  };
}

/** The app's package.json and package-lock.json (lockfileVersion 3) for these packages. */
export function appManifests(packages: PackedPackage[]): {
  packageJson: Buffer;
  packageLock: Buffer;
} {
  const deps: Record<string, string> = {};
  const locked: Record<string, unknown> = {};
  for (const p of [...packages].sort((a, b) => a.artifact.name.localeCompare(b.artifact.name))) {
    deps[p.artifact.name] = p.artifact.version;
    locked[`node_modules/${p.artifact.name}`] = p.lock;
  }
  const pkg = {name: 'bench-app', version: '1.0.0', private: true, dependencies: deps};
  const lock = {
    name: 'bench-app',
    version: '1.0.0',
    lockfileVersion: 3,
    requires: true,
    packages: {'': {name: 'bench-app', version: '1.0.0', dependencies: deps}, ...locked},
  };
  return {
    packageJson: Buffer.from(`${JSON.stringify(pkg, null, 2)}\n`),
    packageLock: Buffer.from(`${JSON.stringify(lock, null, 2)}\n`),
  };
}

/** vendor-manifest.json for these packages, sorted as vendor-sync writes it. */
export function vendorManifest(packages: PackedPackage[]): Buffer {
  const artifacts = packages
    .map(p => p.artifact)
    .sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
  return Buffer.from(`${JSON.stringify({format: 1, artifacts}, null, 2)}\n`);
}

/** `count` packages named bench-pkg-<i>. */
export function benchPackages(count: number): PackedPackage[] {
  return Array.from({length: count}, (_, i) => packPackage(`bench-pkg-${i}`, i));
}

/** Fill an npm cache (`<dir>/_cacache`) from the vendored tarballs, as the native recipe does. */
export async function fillCache(
  cacheDir: string,
  vendorDir: string,
  artifacts: Array<{path: string; integrity: string; name: string}>,
): Promise<void> {
  for (const a of artifacts) {
    await pipeline(
      createReadStream(path.join(vendorDir, a.path)),
      cacache.put.stream(path.join(cacheDir, '_cacache'), `bench:${a.name}`, {
        integrity: a.integrity,
      }),
    );
  }
}
