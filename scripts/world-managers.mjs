#!/usr/bin/env node
// World check for the other Node package managers (pnpm, Yarn 1, Yarn 2+), in the form of
// ../shared/world-check/run.mjs: real dependency sets (test/world-manager-sets.json), their
// lockfiles made by the real manager from the npm registry, the manager release itself pinned in
// package.json "packageManager", vendored by vendor-sync, deployed over git smart HTTP with every
// registry dead, and the installed tree compared with what the same manager installs online from
// the same lockfile with the same flags.
//
// Run from the project's checkout after `npm run build`:
//   node scripts/world-managers.mjs              every set
//   node scripts/world-managers.mjs NAME...      some sets
//   WORLD_MANAGER_SETS=FILE node scripts/world-managers.mjs   the sets in FILE instead
// Needs native git (git http-backend) and the npm registry. Prints one line per step and a
// summary; exits 1 when a set falls short. WORLD_KEEP=1 keeps the work directory.
import {execFileSync, spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const project = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const setsFile =
  process.env.WORLD_MANAGER_SETS ?? path.join(project, 'test', 'world-manager-sets.json');
const sets = JSON.parse(fs.readFileSync(setsFile, 'utf8')).sets;
const wanted = process.argv.slice(2);
const chosen = wanted.length ? sets.filter(s => wanted.includes(s.name)) : sets;
const bin = name => path.join(project, 'bin', `${name}.js`);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'world-managers-'));
const srv = path.join(work, 'srv');
fs.mkdirSync(srv);
const children = [];
process.on('exit', () => {
  for (const c of children) c.kill();
  if (!process.env.WORLD_KEEP) fs.rmSync(work, {recursive: true, force: true});
});

const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: 'world',
  GIT_AUTHOR_EMAIL: 'world@example.org',
  GIT_COMMITTER_NAME: 'world',
  GIT_COMMITTER_EMAIL: 'world@example.org',
};
const git = (cwd, ...args) =>
  execFileSync('git', args, {cwd, env: gitEnv, encoding: 'utf8'}).trim();
const write = (file, text) => {
  fs.mkdirSync(path.dirname(file), {recursive: true});
  fs.writeFileSync(file, text);
};
// The managers as a user runs them online: a HOME of their own, the public registry.
const home = path.join(work, 'home');
fs.mkdirSync(home);
write(path.join(home, '.npmrc'), 'registry=https://registry.npmjs.org/\n');
const onlineEnv = {
  PATH: process.env.PATH,
  HOME: home,
  COREPACK_ENABLE_STRICT: '0',
  YARN_ENABLE_TELEMETRY: '0',
  YARN_ENABLE_GLOBAL_CACHE: '0',
  npm_config_registry: 'https://registry.npmjs.org/',
  // The machine's CA and proxy settings: Yarn 2+ reads no npm config for them.
  ...Object.fromEntries(
    ['NODE_EXTRA_CA_CERTS', 'HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy', 'NO_PROXY']
      .filter(k => process.env[k] !== undefined)
      .map(k => [k, process.env[k]]),
  ),
};
const dead = {
  npm_config_registry: 'http://127.0.0.1:9/',
  NPM_CONFIG_REGISTRY: 'http://127.0.0.1:9/',
  YARN_NPM_REGISTRY_SERVER: 'http://127.0.0.1:9/',
  HTTP_PROXY: 'http://127.0.0.1:9',
  HTTPS_PROXY: 'http://127.0.0.1:9',
  http_proxy: 'http://127.0.0.1:9',
  https_proxy: 'http://127.0.0.1:9',
};
const run = (name, args, env = {}) => {
  const r = spawnSync(process.execPath, [bin(name), ...args], {
    encoding: 'utf8',
    env: {...process.env, ...env},
    cwd: work,
    timeout: 600000,
  });
  return {code: r.status, out: `${r.stdout ?? ''}\n${r.stderr ?? ''}`};
};
const tail = (text, n = 400) => text.trim().replace(/\s+/g, ' ').slice(-n);

/** The npm package of a `packageManager` value, as lib/pins/package-manager.ts maps it. */
function managerPackage(spec) {
  const [name, version] = spec.split('@');
  if (name === 'pnpm') return {name: 'pnpm', version, bin: 'pnpm'};
  return Number(version.split('.')[0]) < 2
    ? {name: 'yarn', version, bin: 'yarn'}
    : {name: '@yarnpkg/cli-dist', version, bin: 'yarn'};
}

/** The manager release unpacked from the registry (as the product vendors it): `node <bin>`. */
const unpacked = new Map();
function managerCommand(spec) {
  if (unpacked.has(spec)) return unpacked.get(spec);
  const pkg = managerPackage(spec);
  const dir = path.join(work, 'managers', spec.replace(/[@/]/g, '_'));
  fs.mkdirSync(dir, {recursive: true});
  const file = execFileSync('npm', ['pack', '--silent', `${pkg.name}@${pkg.version}`], {
    cwd: dir,
    env: onlineEnv,
    encoding: 'utf8',
  }).trim();
  execFileSync('tar', ['-xzf', file], {cwd: dir});
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'package', 'package.json'), 'utf8'));
  const binRel = typeof meta.bin === 'string' ? meta.bin : meta.bin[pkg.bin];
  const command = path.join(dir, 'package', binRel);
  unpacked.set(spec, command);
  return command;
}

/** What the manager runs to write the lockfile, and to install online as the deploy installs. */
function managerSteps(spec, set) {
  const [name, version] = spec.split('@');
  const major = Number(version.split('.')[0]);
  if (name === 'pnpm') {
    return {
      lock: ['install', '--lockfile-only'],
      install: ['install', '--frozen-lockfile', '--prod', '--ignore-scripts=false'],
      lockfile: 'pnpm-lock.yaml',
    };
  }
  if (major < 2) {
    return {
      lock: ['install', '--ignore-scripts', '--non-interactive'],
      install: ['install', '--frozen-lockfile', '--production', '--non-interactive'],
      lockfile: 'yarn.lock',
    };
  }
  return {
    lock: ['install', '--mode=update-lockfile'],
    install: set.berryInstall ?? ['workspaces', 'focus', '--all', '--production'],
    lockfile: 'yarn.lock',
  };
}

/** The app's own config a Yarn 2+ app commits (.yarnrc.yml), from the set. */
function berryConfig(set) {
  const lines = [`nodeLinker: ${set.nodeLinker ?? 'node-modules'}`, 'enableTelemetry: false'];
  return `${lines.join('\n')}\n`;
}

/**
 * What an install put under node_modules: every package folder (path -> name@version) and every
 * link (path -> link:target), the managers' own bookkeeping files left out (they hold times and
 * absolute paths).
 */
function installedTree(dir) {
  const out = new Map();
  const skip = new Set([
    '.modules.yaml',
    '.yarn-integrity',
    '.yarn-state.yml',
    '.package-lock.json',
    '.cache',
    '.pnpm-workspace-state-v1.json',
    '.pnpm-workspace-state.json',
    'lock.yaml',
  ]);
  const walk = rel => {
    const abs = path.join(dir, rel);
    for (const entry of fs.readdirSync(abs, {withFileTypes: true})) {
      if (skip.has(entry.name)) continue;
      const child = path.posix.join(rel, entry.name);
      if (entry.isSymbolicLink()) {
        out.set(child, `link:${fs.readlinkSync(path.join(abs, entry.name))}`);
        continue;
      }
      if (!entry.isDirectory()) continue;
      const pkgFile = path.join(abs, entry.name, 'package.json');
      if (fs.existsSync(pkgFile) && rel.split('/').at(-1) !== 'package') {
        const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8'));
        out.set(child, `${pkg.name ?? ''}@${pkg.version ?? ''}`);
      }
      if (
        entry.name === 'node_modules' ||
        entry.name.startsWith('@') ||
        entry.name === '.pnpm' ||
        rel.endsWith('.pnpm') ||
        rel.includes('node_modules')
      ) {
        walk(child);
      }
    }
  };
  if (fs.existsSync(path.join(dir, 'node_modules'))) walk('node_modules');
  return out;
}

function diff(ours, theirs) {
  const problems = [];
  for (const [p, v] of theirs)
    if (ours.get(p) !== v) problems.push(`${p}: ${ours.get(p) ?? 'missing'} (online: ${v})`);
  for (const p of ours.keys()) if (!theirs.has(p)) problems.push(`${p}: extra`);
  return problems;
}

const url = await new Promise((resolve, reject) => {
  const server = path.join(project, '..', 'shared', 'world-check', 'githttp.cjs');
  const child = spawn(process.execPath, [server, srv], {stdio: ['ignore', 'pipe', 'inherit']});
  children.push(child);
  child.stdout.once('data', d => resolve(String(d).trim()));
  child.once('exit', c => reject(new Error(`git server exited ${c}`)));
});

/** The app of a set: package.json with its packageManager, workspaces, the manager's lockfile. */
function makeApp(set, app) {
  const steps = managerSteps(set.manager, set);
  const manifest = {
    name: `world-${set.name}`,
    version: '1.0.0',
    private: true,
    packageManager: set.manager,
    dependencies: set.dependencies,
    ...(set.devDependencies ? {devDependencies: set.devDependencies} : {}),
  };
  const members = Object.entries(set.workspaces ?? {});
  if (members.length && !set.manager.startsWith('pnpm'))
    manifest.workspaces = members.map(([d]) => d);
  if (members.length && set.manager.startsWith('pnpm')) {
    write(
      path.join(app, 'pnpm-workspace.yaml'),
      `packages:\n${members.map(([d]) => `  - ${d}\n`).join('')}`,
    );
  }
  write(path.join(app, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  for (const [dir, ws] of members) {
    write(
      path.join(app, dir, 'package.json'),
      `${JSON.stringify({name: path.basename(dir), version: '1.0.0', ...ws}, null, 2)}\n`,
    );
    write(path.join(app, dir, 'index.js'), 'module.exports = 1;\n');
  }
  if (steps.lockfile === 'yarn.lock' && !set.manager.startsWith('yarn@1'))
    write(path.join(app, '.yarnrc.yml'), berryConfig(set));
  if (steps.lockfile === 'yarn.lock') write(path.join(app, 'yarn.lock'), '');
  execFileSync(process.execPath, [managerCommand(set.manager), ...steps.lock], {
    cwd: app,
    env: onlineEnv,
    stdio: 'ignore',
    timeout: 600000,
  });
  for (const leftover of [
    'node_modules',
    '.yarn/cache',
    '.yarn/install-state.gz',
    '.pnp.cjs',
    '.pnp.loader.mjs',
  ]) {
    fs.rmSync(path.join(app, leftover), {recursive: true, force: true});
  }
  write(path.join(app, '.gitignore'), 'node_modules/\n.yarn/cache/\n.yarn/install-state.gz\n');
  write(path.join(app, 'index.js'), `console.log(${JSON.stringify(set.name)});\n`);
  write(
    path.join(app, 'deploy.json'),
    `${JSON.stringify({vendor: {url: '../vendor.git'}}, null, 2)}\n`,
  );
  return steps;
}

const results = [];
for (const set of chosen) {
  const lines = [];
  const step = (ok, what, detail = '') => {
    lines.push(ok);
    console.log(
      `${ok ? 'ok  ' : 'FAIL'} ${set.name}: ${what}${!ok && detail ? ` — ${detail}` : ''}`,
    );
    return ok;
  };
  const base = path.join(srv, set.name);
  try {
    const vendorWork = path.join(base, 'vendor.work');
    fs.mkdirSync(vendorWork, {recursive: true});
    git(vendorWork, 'init', '-q', '-b', 'main');
    write(path.join(vendorWork, 'README.md'), `Vendor repository of ${set.name}.\n`);
    git(vendorWork, 'add', '-A');
    git(vendorWork, 'commit', '-q', '-m', 'start the vendor repository');
    git(base, 'init', '-q', '--bare', '-b', 'main', 'vendor.git');
    git(vendorWork, 'remote', 'add', 'origin', path.join(base, 'vendor.git'));

    const app = path.join(base, 'app.work');
    fs.mkdirSync(app, {recursive: true});
    git(app, 'init', '-q', '-b', 'main');
    const steps = makeApp(set, app);
    const sync = run('vendor-sync', ['--app', app, '--vendor', vendorWork, '--update-pin']);
    step(
      sync.code === 0,
      `vendor-sync --update-pin (${set.manager}, install kind from ${steps.lockfile})`,
      `exit ${sync.code}: ${tail(sync.out, 300)}`,
    );
    git(vendorWork, 'push', '-q', 'origin', 'HEAD:main');
    git(app, 'add', '-A');
    git(app, 'commit', '-q', '-m', 'app with its vendor pin');
    const sha = git(app, 'rev-parse', 'HEAD');
    git(base, 'clone', '-q', '--bare', app, 'app.git');

    const root = path.join(work, 'nodes', set.name);
    const dep = run(
      'deploy',
      ['--rev', sha, '--repo', `${url}${set.name}/app.git`, '--root', root],
      dead,
    );
    if (
      step(
        dep.code === 0,
        'deploy --rev with every registry dead',
        `exit ${dep.code}: ${tail(dep.out)}`,
      )
    ) {
      const current = path.join(root, 'current');
      const native = path.join(work, 'native', set.name);
      fs.mkdirSync(native, {recursive: true});
      execFileSync('sh', [
        '-c',
        `git --git-dir="${path.join(base, 'app.git')}" archive ${sha} | tar -x -C "${native}"`,
      ]);
      execFileSync(process.execPath, [managerCommand(set.manager), ...steps.install], {
        cwd: native,
        env: onlineEnv,
        stdio: 'ignore',
        timeout: 600000,
      });
      const ours = installedTree(fs.realpathSync(current));
      const theirs = installedTree(native);
      const problems = diff(ours, theirs);
      step(
        problems.length === 0 && theirs.size > 0,
        `node_modules is what ${set.manager} installs online (${theirs.size} entries)`,
        problems.slice(0, 4).join('; '),
      );
      const names = Object.keys(set.dependencies);
      const probe = set.probe ?? `${JSON.stringify(names)}.map(n => require.resolve(n))`;
      const r = spawnSync(process.execPath, ['-e', `console.log(JSON.stringify(${probe}))`], {
        cwd: current,
        encoding: 'utf8',
      });
      step(
        r.status === 0,
        `the dependencies load from current/ (${names.join(', ')})`,
        tail(r.stderr, 250),
      );
      const chk = run(
        'deploy',
        ['check', '--rev', sha, '--repo', `${url}${set.name}/app.git`],
        dead,
      );
      step(chk.code === 0, 'deploy check says deployable', `exit ${chk.code}: ${tail(chk.out)}`);
    }
  } catch (error) {
    step(false, 'set-up', tail(String(error.stderr ?? error.message)));
  }
  results.push([set.name, lines.every(Boolean)]);
}
const good = results.filter(([, ok]) => ok).length;
console.log(
  `\n${good} of ${results.length} sets deploy as their package manager installs them${
    good < results.length
      ? `; short: ${results
          .filter(([, ok]) => !ok)
          .map(([n]) => n)
          .join(', ')}`
      : ''
  }`,
);
process.exit(good === results.length ? 0 : 1);
