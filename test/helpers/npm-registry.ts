import {createHash} from 'node:crypto';
import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import type {IncomingMessage, Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import path from 'node:path';
import {promisify} from 'node:util';
import ssri from 'ssri';
import {runServer} from 'verdaccio';
import type {Artifact, VendorManifest} from '../../lib/pins/vendor-manifest.js';

const exec = promisify(execFile);

export type Registry = {
  url: string;
  token: string;
  /** Run the real npm client against this registry, with no config of the machine's. */
  npm(args: string[], cwd: string): Promise<string>;
  publish(pkg: PackageSpec): Promise<void>;
  /** Publish a ready tarball with the registry's publish API (what `npm publish` sends). */
  publishTarball(name: string, version: string, tarball: Buffer): Promise<void>;
  /** Every request it received: path and the Authorization header sent with it. */
  seen: {path: string; authorization: string | undefined}[];
  close(): Promise<void>;
};

export type PackageSpec = {
  name: string;
  version: string;
  files?: Record<string, string>;
  dependencies?: Record<string, string>;
  scripts?: Record<string, string>;
  os?: string[];
  /** More package.json fields: optionalDependencies, peerDependencies, bundleDependencies, cpu… */
  manifest?: Record<string, unknown>;
};

/**
 * A real npm registry (Verdaccio, in this process) on 127.0.0.1 with no uplinks: it holds only
 * what the tests publish to it with the real npm client.
 */
export async function startRegistry(
  dir: string,
  options: {readNeedsLogin?: boolean} = {},
): Promise<Registry> {
  await fsp.mkdir(dir, {recursive: true});
  const access = options.readNeedsLogin ? '$authenticated' : '$all';
  const server = (await runServer({
    self_path: dir,
    storage: path.join(dir, 'storage'),
    auth: {htpasswd: {file: path.join(dir, 'htpasswd'), max_users: 1000}},
    uplinks: {},
    packages: {'**': {access, publish: '$authenticated', unpublish: '$authenticated'}},
    log: {type: 'stdout', format: 'pretty', level: 'fatal'},
    web: {enable: false},
  })) as Server;
  const seen: Registry['seen'] = [];
  server.prependListener('request', (req: IncomingMessage) => {
    seen.push({path: req.url ?? '', authorization: req.headers.authorization});
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const {port} = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}/`;
  const res = await fetch(`${url}-/user/org.couchdb.user:tester`, {
    method: 'PUT',
    headers: {'content-type': 'application/json'},
    body: JSON.stringify({name: 'tester', password: 'test-password-1', type: 'user', roles: []}),
  });
  const {token} = (await res.json()) as {token: string};
  const npmrc = path.join(dir, 'npmrc');
  await fsp.writeFile(npmrc, `registry=${url}\n//127.0.0.1:${port}/:_authToken=${token}\n`);
  const home = path.join(dir, 'home');
  await fsp.mkdir(home, {recursive: true});

  const npm = async (args: string[], cwd: string) => {
    const {stdout} = await exec('npm', args, {
      cwd,
      env: {
        PATH: process.env.PATH,
        HOME: home,
        npm_config_userconfig: npmrc,
        npm_config_globalconfig: path.join(dir, 'global-npmrc'),
        npm_config_cache: path.join(dir, 'npm-cache'),
        npm_config_audit: 'false',
        npm_config_fund: 'false',
        npm_config_update_notifier: 'false',
      },
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  };

  return {
    url,
    token,
    npm,
    seen,
    async publish(pkg) {
      const pkgDir = path.join(dir, 'src', `${pkg.name.replace('/', '__')}-${pkg.version}`);
      await fsp.mkdir(pkgDir, {recursive: true});
      const manifest = {
        name: pkg.name,
        version: pkg.version,
        main: 'index.js',
        license: 'MIT',
        ...(pkg.dependencies ? {dependencies: pkg.dependencies} : {}),
        ...(pkg.scripts ? {scripts: pkg.scripts} : {}),
        ...(pkg.os ? {os: pkg.os} : {}),
        ...pkg.manifest,
      };
      await fsp.writeFile(path.join(pkgDir, 'package.json'), JSON.stringify(manifest, null, 2));
      for (const [rel, content] of Object.entries(
        pkg.files ?? {'index.js': 'module.exports = {};\n'},
      )) {
        await fsp.mkdir(path.dirname(path.join(pkgDir, rel)), {recursive: true});
        await fsp.writeFile(path.join(pkgDir, rel), content);
      }
      await npm(['publish', '--access', 'public'], pkgDir);
    },
    async publishTarball(name, version, tarball) {
      const file = `${name.split('/').pop() ?? name}-${version}.tgz`;
      const body = {
        _id: name,
        name,
        'dist-tags': {latest: version},
        versions: {
          [version]: {
            name,
            version,
            _id: `${name}@${version}`,
            dist: {
              shasum: createHash('sha1').update(tarball).digest('hex'),
              integrity: ssri.fromData(tarball, {algorithms: ['sha512']}).toString(),
              tarball: `${url}${name}/-/${file}`,
            },
          },
        },
        _attachments: {
          [file]: {
            content_type: 'application/octet-stream',
            data: tarball.toString('base64'),
            length: tarball.length,
          },
        },
      };
      const res = await fetch(`${url}${name.replace('/', '%2f')}`, {
        method: 'PUT',
        headers: {'content-type': 'application/json', authorization: `Bearer ${token}`},
        body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`publish of ${name}@${version} failed: ${res.status}`);
    },
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/**
 * `dir` with this package.json (`indent` as JSON.stringify takes it) and the package-lock.json
 * npm writes for it against `registry`, installing nothing and running no scripts: an app as its
 * developer commits it.
 */
export async function lockedApp(
  registry: Registry,
  dir: string,
  manifest: Record<string, unknown>,
  indent?: number,
): Promise<string> {
  await fsp.mkdir(dir, {recursive: true});
  await fsp.writeFile(path.join(dir, 'package.json'), JSON.stringify(manifest, null, indent));
  await registry.npm(['install', '--package-lock-only', '--ignore-scripts'], dir);
  return dir;
}

type LockPackages = Record<
  string,
  {name?: string; version?: string; resolved?: string; integrity?: string; link?: boolean}
>;

/**
 * Write every tarball package-lock.json names into `vendorDir/npm/`, downloaded from where the
 * lockfile says, and list them in the vendor manifest (docs/vendor-format.md).
 */
export async function vendorNpmTarballs(
  lockfilePath: string,
  vendorDir: string,
): Promise<Artifact[]> {
  const lock = JSON.parse(await fsp.readFile(lockfilePath, 'utf8')) as {packages: LockPackages};
  const artifacts: Artifact[] = [];
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key === '' || entry.link || !entry.resolved || !entry.version) continue;
    // An alias entry names the real package; the folder name is the alias.
    const name = entry.name ?? key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const res = await fetch(entry.resolved);
    if (!res.ok) throw new Error(`download of ${entry.resolved} failed: ${res.status}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    const rel = `npm/${name}/${name.split('/').pop() ?? name}-${entry.version}.tgz`;
    await fsp.mkdir(path.dirname(path.join(vendorDir, rel)), {recursive: true});
    await fsp.writeFile(path.join(vendorDir, rel), bytes);
    artifacts.push({
      ecosystem: 'npm',
      name,
      version: entry.version,
      path: rel,
      integrity: ssri.fromData(bytes, {algorithms: ['sha512']}).toString(),
      source: entry.resolved,
      size: bytes.length,
    });
  }
  return artifacts;
}

export async function writeManifest(vendorDir: string, artifacts: Artifact[]): Promise<void> {
  const manifest: VendorManifest = {
    format: 1,
    artifacts: [...artifacts].sort(
      (a, b) =>
        a.ecosystem.localeCompare(b.ecosystem) ||
        a.name.localeCompare(b.name) ||
        a.version.localeCompare(b.version),
    ),
  };
  await fsp.writeFile(
    path.join(vendorDir, 'vendor-manifest.json'),
    `${JSON.stringify(manifest, null, 2)}\n`,
  );
}
