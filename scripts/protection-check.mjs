#!/usr/bin/env node
// `npm run test:protections`: for each reliability case, take its protection out of the built code
// (one edit to a file under dist/), run the tests tagged for the case, and expect them to FAIL.
// A test that still passes with its protection gone proves nothing. Every file is restored after
// each run, also on Ctrl-C. Writes docs/protections.md; exits 1 if any protection went unnoticed.
// Run after `npm run build` (the bins' bundles under dist/bin are rebuilt after every edit and
// every restore). PROTECTIONS=R2,R17 runs only those cases.
//
// Edits are keyed on markers in the TypeScript sources (`// protection R4-symlink: ...` on the
// line before the protected statement; scripts/protection-markers.mjs), found in whichever
// compiled file holds them: moving or reformatting code elsewhere does not break a check. Before
// anything runs, every marker must be used by a check and every edit must apply, or the script
// stops, naming each fault.
import {execFileSync, spawn} from 'node:child_process';
import {writeFileSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {compiledMarkers, locate, markerFaults} from './protection-markers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * case: the reliability case; removed: what the edit takes out; edits: [marker key (or, for code
 * without markers, a file under dist/), text that must occur exactly once in the statement after
 * the marker (or in the file), replacement]; tests: [test file under dist/test, ava -m pattern].
 * lib/deploy/ is keyed on its compiled file until its pipeline settles.
 */
const checks = [
  {
    case: 'R1',
    removed: 'the next run marks a release left building as failed',
    edits: [['R1-building', "release.meta?.state === 'building'", 'false']],
    tests: [['kill-phases.test.js', '*[R1] SIGKILL mid-write*']],
  },
  {
    case: 'R1',
    removed: 'the next run stops the installer a killed run left running (and what it started)',
    edits: [['R1-stop-child', 'await stopRecordedChild(', 'void String(']],
    tests: [['lifecycle.test.js', '*leaves its installer running*']],
  },
  {
    case: 'R2',
    removed: 'rename(2) over current (current removed first, then the new link renamed in)',
    edits: [
      [
        'R2-rename',
        'await fsp.rename(tmp, this.currentLink);',
        'await fsp.rm(this.currentLink, { force: true }); await fsp.rename(tmp, this.currentLink);',
      ],
    ],
    tests: [['reliability.test.js', '*[R2]*']],
  },
  {
    case: 'R3',
    removed: 'a fresh temporary link name per switch (a fixed name, replaced as `ln -sfn` would)',
    edits: [
      [
        'R3-fresh-temp',
        "const tmp = tempSibling(this.currentLink, 'switch');",
        "const tmp = path.join(this.root, '.current.switch-999-deadbeef'); await fsp.symlink(path.join(RELEASES_DIR, id), path.join(tmp, 'x')).catch(() => undefined);",
      ],
    ],
    tests: [['unit/release-store.test.js', '*[R3]*']],
  },
  {
    case: 'R4',
    removed: 'the check that current is a symlink before a switch',
    edits: [['R4-symlink', 'if (!stat.isSymbolicLink()) {', 'if (false) {']],
    tests: [['unit/release-store.test.js', '*[R4]*']],
  },
  {
    case: 'R5',
    removed: 'rollback skipping failed and bad releases',
    edits: [
      [
        'R5-targets',
        "const ROLLBACK_TARGETS = ['retired', 'ready'];",
        "const ROLLBACK_TARGETS = ['retired', 'ready', 'failed', 'bad'];",
      ],
    ],
    tests: [['lifecycle.test.js', '*rollback skips failed and bad*']],
  },
  {
    case: 'R6',
    removed: 'releases ordered most recent first by their recorded order (oldest first instead)',
    edits: [['R6-order', 'recency(b) - recency(a) ||', 'recency(a) - recency(b) ||']],
    tests: [['lifecycle.test.js', '*prune after many failed deploys*']],
  },
  {
    case: 'R7',
    removed: 'the release directory made only after the fetch (made before it instead)',
    edits: [
      [
        'R7-after-fetch',
        'run.previous = await releases.currentForSwitch();',
        'run.previous = await releases.currentForSwitch(); await fse.ensureDir(releases.dir(`early-${Date.now()}`));',
      ],
    ],
    tests: [['deploy.test.js', '*unreachable vendor commit fails before any release*']],
  },
  {
    case: 'R8',
    removed: 'a new release id when the directory exists',
    edits: [['R8-new-id', 'if (!(await lstatOrUndefined(this.dir(id))))', 'if (true)']],
    tests: [['unit/release-store.test.js', '*[R8]*']],
  },
  {
    case: 'R9',
    removed: 'lock creation by rename of a staged directory (check, then write, instead)',
    edits: [
      [
        'R9-rename-lock',
        'await fsp.rename(staged, path.join(root, LOCK_DIR));',
        "if (await fsp.stat(path.join(root, LOCK_DIR)).then(() => true, () => false)) throw Object.assign(new Error('held'), { code: 'EEXIST' }); await new Promise(r => setTimeout(r, 5)); await fsp.cp(staged, path.join(root, LOCK_DIR), { recursive: true, force: true });",
      ],
    ],
    tests: [['reliability.test.js', '*[R9]*']],
  },
  {
    case: 'R10',
    removed: 'the lock around deploy, rollback and prune',
    edits: [
      [
        'R10-lock',
        'const lock = await acquireLock(root, info);',
        'const lock = { release: async () => undefined };',
      ],
    ],
    tests: [['reliability.test.js', '*[R10]*']],
  },
  {
    case: 'R11',
    removed: 'the liveness check of the lock owner (a live owner treated as dead)',
    edits: [
      [
        'R11-liveness',
        "return { state: isAlive(owner) ? 'live' : 'dead', owner };",
        "return { state: 'dead', owner };",
      ],
    ],
    tests: [['lifecycle.test.js', '*lock: a live owner is never robbed*']],
  },
  {
    case: 'R12',
    removed: 'the token check before a run removes the lock',
    edits: [['R12-token', 'if (owner.token !== token)', 'if (false)']],
    tests: [['lifecycle.test.js', '*lock: a live owner is never robbed*']],
  },
  {
    case: 'R13',
    removed: 'the tree entry name check',
    edits: [
      [
        'R13-entry-name',
        'export function unsafeEntryName(name) {',
        'export function unsafeEntryName(name) { return undefined;',
      ],
    ],
    tests: [['unit/path-safety.test.js', '*']],
  },
  {
    case: 'R14',
    removed:
      'a fresh release directory written with O_EXCL | O_NOFOLLOW (instead: start from a copy of current, as copy-based deployers do, and write over it)',
    edits: [
      [
        'R14-fresh-dir',
        'await fsp.mkdir(dest, { mode: 0o755, recursive: true });',
        "await fsp.mkdir(dest, { mode: 0o755, recursive: true }); await fsp.cp(path.join(dest, '..', '..', 'current') + '/', dest, { recursive: true, verbatimSymlinks: true, force: true }).catch(() => undefined);",
      ],
      [
        'R14-no-parents',
        'await fsp.mkdir(path.join(dest, entry.path), { mode: 0o755 });',
        'await fsp.mkdir(path.join(dest, entry.path), { mode: 0o755, recursive: true });',
      ],
      [
        'R14-excl',
        'constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW',
        'constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC',
      ],
    ],
    tests: [['reliability.test.js', '*[R14]*']],
  },
  {
    case: 'R15',
    removed: 'the refusal to read a lockfile that is a symlink',
    edits: [['R15-regular-file', 'if (!stat.isFile()) {', 'if (false) {']],
    tests: [['unit/npm-lockfile.test.js', '*[R15]*']],
  },
  {
    case: 'R16',
    removed: 'the duplicate-name check in trees',
    edits: [['R16-duplicate', 'if (names.has(entry.path)) {', 'if (false) {']],
    tests: [['reliability.test.js', '*[R16]*']],
  },
  {
    case: 'R17',
    removed: 'the object size cap of the pack check, run before a pack is stored',
    edits: [['R17-size-cap', 'if (size > max)', 'if (false)']],
    tests: [
      ['pack-check.test.js', '*huge blob from the server*'],
      ['unit/pack-check.test.js', '*compression bomb*'],
    ],
  },
  {
    case: 'R17',
    removed: 'the cap on what one fetched pack inflates to in all',
    edits: [
      ['R17-total-cap', 'if (inflatedTotal > PACK_LIMITS.maxFetchInflatedBytes)', 'if (false)'],
    ],
    tests: [['pack-check.test.js', '*inflates to more than one fetch may hold*']],
  },
  {
    case: 'R18',
    removed: 'the npm tarball check before npm ci',
    edits: [['R18-tarball-check', 'checkTarballs(verified),', '']],
    tests: [['install-npm.test.js', '*[R18]*']],
  },
  {
    case: 'R18',
    removed: 'the npm tarball check before pnpm runs',
    edits: [['R18-tarball-check-pnpm', 'await checkTarballs(verified);', '']],
    tests: [['pnpm.test.js', '*[R18]*']],
  },
  {
    case: 'R19',
    removed: 'the wheel path check',
    edits: [['R19-record-path', "if (name.split('/').includes('..'))", 'if (false)']],
    tests: [['archives.test.js', '*[R19] a wheel with a RECORD path that leaves*']],
  },
  {
    case: 'R20',
    removed: 'the entry cap of npm tarballs',
    edits: [['R20-tarball-entries', 'entries > TARBALL_LIMITS.maxEntries', 'false']],
    tests: [['npm-tarball.test.js', '*[R20] a gzip bomb stops*']],
  },
  {
    case: 'R20',
    removed: 'the size cap of wheels',
    edits: [['R20-wheel-size', 'total > WHEEL_LIMITS.maxUncompressedBytes', 'false']],
    tests: [['archives.test.js', '*[R20] a wheel that unpacks past*']],
  },
  {
    case: 'R21',
    removed: 'the asset name allowlist',
    edits: [
      [
        'R21-asset-name',
        'name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+-]*$/, {',
        'name: z.string().regex(/.*/, {',
      ],
    ],
    tests: [['unit/vendor-sync.test.js', '*[R21]*']],
  },
  {
    case: 'R22',
    removed: 'the hash check of vendored files',
    edits: [
      ['R22-hash', 'return ssri.checkData(readFileSync(fd), integrity) !== false;', 'return true;'],
    ],
    tests: [['install-npm.test.js', '*flipped byte*']],
  },
  {
    case: 'R23',
    removed: 'the registry check of lockfile entries',
    edits: [['R23-registry', 'if (hostProblem)', 'if (false)']],
    tests: [['install-npm.test.js', '*resolved to another host*']],
  },
  {
    case: 'R23',
    removed: 'the registry check of pnpm-lock.yaml packages',
    edits: [['R23-registry-pnpm', 'if (hostProblem)', 'if (false)']],
    tests: [['unit/pnpm-lock.test.js', '*[R23]*']],
  },
  {
    case: 'R24',
    removed: 'the refusal of unhashed requirements',
    edits: [['R24-hashed', 'if (hashes.length === 0)', 'if (false)']],
    tests: [['install-pip.test.js', '*unhashed requirement*']],
  },
  {
    case: 'R25',
    removed: 'recording the resolved full sha (the rev as given recorded instead)',
    edits: [
      [
        'R25-full-sha',
        'app: { url: source.app.url, requested: source.app.requested, sha: source.app.sha },',
        'app: { url: source.app.url, requested: source.app.requested, sha: source.app.requested },',
      ],
    ],
    tests: [['deploy.test.js', '*[R25]*']],
  },
  {
    case: 'R26',
    removed: 'the refusal to overwrite a vendored version with other bytes',
    edits: [
      [
        'R26-no-overwrite',
        "if (need.ecosystem !== 'pypi' && same.length > 0 && matching.length === 0) {",
        'if (false) {',
      ],
    ],
    tests: [['vendor-sync.test.js', '*[R26]*']],
  },
  {
    case: 'R27',
    removed: "the installer's clean environment (the node's environment passed on)",
    edits: [
      ['R27-clean-env', 'return { ...env, ...extra };', 'return { ...base, ...env, ...extra };'],
    ],
    tests: [['install-npm.test.js', '*[R27]*']],
  },
  {
    case: 'R28',
    removed: 'dropping Authorization on a redirect to another origin',
    edits: [['R28-redirect-auth', 'headers = withoutAuthorization(headers);', '']],
    tests: [
      ['reliability.test.js', '*[R28]*'],
      ['vendor-sync-http.test.js', '*[R28]*'],
    ],
  },
  {
    case: 'R29',
    removed: 'giving up on a second 401',
    edits: [
      [
        'R29-second-401',
        'onAuthFailure: () => ({ cancel: true }),',
        'onAuthFailure: (_url, auth) => auth,',
      ],
    ],
    tests: [['reliability.test.js', '*[R29]*']],
  },
  {
    case: 'R30',
    removed: 'the pack trailer check',
    edits: [['R30-trailer', 'if (!digest.equals(trailer))', 'if (false)']],
    tests: [['unit/pack-check.test.js', '*[R30] a pack with a bad trailer*']],
  },
  {
    case: 'R30',
    removed: 'the trailer check of a pack as it is received',
    edits: [
      [
        'R30-incoming-trailer',
        'if (this.size < 32 || !this.hash.digest().equals(this.tail))',
        'if (this.size < 32)',
      ],
    ],
    tests: [['unit/pack-check.test.js', '*[R30] a received pack*']],
  },
  {
    case: 'R31',
    removed: 'the idle timeout of the git HTTP client',
    edits: [
      ['R31-idle', 'bodyTimeout: settings.idleTimeoutMs,', 'bodyTimeout: 0,'],
      [
        'R31-headers',
        'return Math.min(settings.connectTimeoutMs, settings.idleTimeoutMs);',
        'return settings.connectTimeoutMs;',
      ],
    ],
    tests: [['reliability.test.js', '*[R31]*']],
  },
  {
    case: 'R32',
    removed: 'the bound on retries',
    edits: [
      [
        'R32-bounded-retries',
        'if (wait === undefined || n >= policy.attempts)',
        'if (wait === undefined)',
      ],
    ],
    tests: [['vendor-sync-http.test.js', '*gives up after a bounded number*']],
    timeout: '20s',
  },
  {
    case: 'R33',
    removed: 'removing the tree of a failed release (so a full disk stays full)',
    edits: [['R33-failed-tree', 'if (name !== META_DIR)', 'if (false)']],
    tests: [['disk-full.test.js', '*installer itself runs out of space*']],
  },
  {
    case: 'R34',
    removed:
      'the refusal of a symlink on the way of a path deploy.json names (tree listing and disk)',
    edits: [['R34-symlink', "if (node.kind === 'symlink') {", 'if (false) {']],
    tests: [
      ['release-path.test.js', '*[R34] a shared directory through a committed symlink*'],
      ['release-path.test.js', '*[R34] a shared path through "y -> .."*'],
      ['release-path.test.js', '*[R34] an npm install directory through*'],
      ['release-path.test.js', '*[R34] a shared path through a symlink of the vendor tree*'],
    ],
  },
  {
    case: 'R34',
    removed: 'the refusal of .repodeploy, the release metadata, as a path deploy.json names',
    edits: [['R34-metadata', 'if (parts[0]?.toLowerCase() === META_DIR) {', 'if (false) {']],
    tests: [['release-path.test.js', '*[R34] "shared": [".repodeploy/"]*']],
  },
  {
    case: 'R34',
    removed: 'the refusal of a link anywhere inside a virtualenv directory the app tree commits',
    edits: [['R34-venv-links', 'if (!named.below ||', 'if (true ||']],
    tests: [['release-path.test.js', '*[R34] a committed venv with a link inside*']],
  },
  {
    case: 'R36',
    removed: 'a comment line ending in \\ is not joined with the next (joined, as before)',
    edits: [
      [
        'R36-comment-continuation',
        "if (!physical.endsWith('\\\\') || isComment) {",
        "if (!physical.endsWith('\\\\')) {",
      ],
    ],
    tests: [
      ['requirements.test.js', '*[R36]*'],
      ['unit/requirements.test.js', '*[R36]*'],
    ],
  },
  {
    case: 'R36',
    removed: "the installers' network wall (no namespace, no dead proxies)",
    edits: [
      [
        'R36-namespace',
        "wrap: (command, args) => [unshare, ['-n', '--', command, ...args]],",
        'wrap: (command, args) => [command, args],',
      ],
      ['R36-dead-proxy', 'const PROXY_ENV = proxyEnv(DEAD_PROXY);', 'const PROXY_ENV = {};'],
    ],
    tests: [
      ['no-network.test.js', '*[R36]*'],
      ['install-npm.test.js', '*[R36]*'],
    ],
    timeout: '5m',
  },
  {
    case: 'R43',
    removed: 'the check of the whole bundle file against the sha256 the node pins',
    edits: [['R43-bundle-sha', 'if (!sameDigest(actual, pin.sha256))', 'if (false)']],
    tests: [
      ['bundle.test.js', '*[R43] a re-packed bundle*'],
      ['bundle.test.js', '*[R43] a wrong pin*'],
      ['bundle.test.js', '*[R43] a truncated copy*'],
    ],
  },
  {
    case: 'R43',
    removed: 'the refusal of a bundle given with no pin',
    edits: [['R43-pin-required', 'if (options.unpinned)', 'if (true)']],
    tests: [['bundle.test.js', '*[R43] a bundle with no pin*']],
  },
  {
    case: 'R43',
    removed: 'unpacking only the entries that were verified',
    edits: [
      [
        'R43-verified-only',
        "if ('type' in entry && bundle.entries.get(name) === entry.type)",
        "if ('type' in entry)",
      ],
    ],
    tests: [['bundle.test.js', '*[R43] entries added*']],
  },
  {
    case: 'R37',
    removed: 'a lock recorded in another boot, pid namespace or host counting as held',
    edits: [['R37-unknown', "return { state: 'unknown', owner, why };", 'void why;']],
    tests: [['node-state.test.js', '*[R37]*']],
  },
  {
    case: 'R38',
    removed: "the node's recorded order of events (release times and ids decide instead)",
    edits: [
      [
        'R38-recency',
        'const recency = (r) => Math.max(r.meta?.seq ?? 0, r.meta?.liveSeq ?? 0);',
        'const recency = (r) => 0;',
      ],
    ],
    tests: [['node-state.test.js', '*[R38]*']],
  },
  {
    case: 'R39',
    removed: 'keeping release directories whose metadata cannot be read (removed as unfinished)',
    edits: [
      [
        'R39-keep-unreadable',
        "if (release.meta?.state === 'building') {",
        "if (!release.meta) { await fsp.rm(release.dir, { recursive: true, force: true }); continue; } if (release.meta?.state === 'building') {",
      ],
    ],
    tests: [['node-state.test.js', '*[R39]*']],
  },
  {
    case: 'R40',
    removed: 'stopping the whole process group (only its leader is signalled)',
    edits: [
      ['R40-group-alive', 'process.kill(-pgid, 0);', 'process.kill(pgid, 0);'],
      ['R40-group-first', 'signal(-pgid, first);', 'signal(pgid, first);'],
      ['R40-group-kill', "signal(-pgid, 'SIGKILL');", "signal(pgid, 'SIGKILL');"],
    ],
    tests: [['node-state.test.js', '*[R40]*']],
  },
  {
    case: 'R40',
    removed: 'passing SIGINT / SIGTERM on to the running installer or hook',
    edits: [['R40-interrupt', 'void interrupt(signal);', 'void 0;']],
    tests: [['node-state.test.js', '*mid-install stops*']],
  },
  {
    case: 'R41',
    removed: 'the newline before a record appended after a cut last line',
    edits: [
      [
        'R41-newline',
        "const lead = size > 0 && last[0] !== 0x0a ? '\\n' : '';",
        "const lead = '';",
      ],
    ],
    tests: [['node-state.test.js', '*[R41]*']],
  },
  {
    case: 'R35',
    removed: 'keeping DEPLOY_GIT_TOKEN to the origins the node names (--repo, --vendor-repo)',
    edits: [['R35-token-origins', 'if (!tokenOrigins.has(origin)) {', 'if (false) {']],
    tests: [
      ['git-remote.test.js', '*[R35] a vendor URL in deploy.json*'],
      ['git-remote.test.js', '*[R35] deploy check sends no token*'],
      ['git-remote.test.js', '*[R35] a submodule URL*'],
    ],
  },
  {
    case: 'R35',
    removed: 'holding credentials back from plain http to a host other than loopback',
    edits: [
      [
        'R35-plain-http',
        // The statement is `if (not http) return false;`: a return after it lets any host in.
        'return false;',
        'return false; return true;',
      ],
    ],
    tests: [
      ['git-remote.test.js', '*[R35] credentials travel over https*'],
      ['git-remote.test.js', '*[R35] DEPLOY_GIT_TOKEN is held back*'],
    ],
  },
  {
    case: 'R35',
    removed: 'dropping Authorization on a redirect to another origin (a deploy end to end)',
    edits: [['R28-redirect-auth', 'headers = withoutAuthorization(headers);', '']],
    tests: [['git-remote.test.js', '*[R35] a redirect from the app origin*']],
  },
];

const faults = markerFaults(root, checks);
if (faults.length > 0) {
  process.stderr.write(
    `protection markers and checks disagree:\n${faults.map(f => `  ${f}\n`).join('')}`,
  );
  process.exit(1);
}

const only = process.env.PROTECTIONS?.split(',');
if (only)
  for (const id of only)
    if (!checks.some(c => c.case === id)) throw new Error(`no check for ${id}`);
const selected = only ? checks.filter(c => only.includes(c.case)) : checks;
const originals = new Map();

function restoreAll() {
  for (const [file, text] of originals) writeFileSync(file, text);
  originals.clear();
}

/** The bins run the bundles under dist/bin: bundle again after each edit and each restore. */
function rebundle() {
  execFileSync(process.execPath, [path.join(root, 'scripts/bundle.mjs')], {stdio: 'inherit'});
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    restoreAll();
    rebundle();
    process.exit(130);
  });
}

function runAva(file, match, timeout = '3m') {
  return new Promise(resolve => {
    const child = spawn(
      process.execPath,
      [
        path.join(root, 'node_modules/ava/entrypoints/cli.mjs'),
        `dist/test/${file}`,
        '-m',
        match,
        '--timeout',
        timeout,
      ],
      {cwd: root, stdio: ['ignore', 'pipe', 'pipe']},
    );
    let out = '';
    child.stdout.on('data', c => (out += c));
    child.stderr.on('data', c => (out += c));
    child.on('exit', code => resolve({code, out}));
  });
}

const rows = [];
let unnoticed = 0;
for (const check of selected) {
  const started = Date.now();
  let outcome;
  try {
    for (const edit of check.edits) {
      const {file, text, at, end} = locate(root, compiledMarkers(root), edit);
      if (!originals.has(file)) originals.set(file, text);
      writeFileSync(file, text.slice(0, at) + edit[2] + text.slice(end));
    }
    rebundle();
    const results = [];
    for (const [file, match] of check.tests) {
      const {code, out} = await runAva(file, match, check.timeout);
      const ran = /(\d+) tests? (passed|failed)/.test(out) || /✘|✔/.test(out);
      results.push({file, match, code, ran, out});
    }
    const failed = results.every(r => r.code !== 0 && r.ran && !/No tests found/.test(r.out));
    outcome = failed ? 'the test failed, as it must' : 'THE TEST STILL PASSED';
    if (!failed) {
      unnoticed++;
      for (const r of results) process.stderr.write(r.out.slice(-2000));
    }
  } catch (error) {
    outcome = `could not apply: ${error.message}`;
    unnoticed++;
  } finally {
    restoreAll();
    rebundle();
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`${check.case}: ${check.removed}: ${outcome} (${seconds} s)`);
  rows.push({...check, outcome});
}

const table = rows
  .map(
    r =>
      `| ${r.case} | ${r.removed} | ${r.edits.map(([where]) => `\`${where.endsWith('.js') ? `dist/${where}` : where}\``).join(', ')} | ${r.tests
        .map(([f, m]) => `\`${f.replace('.test.js', '')}\` ${m.replaceAll('|', '\\|')}`)
        .join('<br>')} | ${r.outcome.startsWith('the test failed') ? '✔ ' : '✘ '}${r.outcome} |`,
  )
  .join('\n');
if (!only) {
  writeFileSync(
    path.join(root, 'docs/protections.md'),
    `# Protections: each removed, its tests must fail

Generated by \`scripts/protection-check.mjs\` (\`npm run test:protections\`). For each reliability
case (docs/reliability.md), the script takes the protection out of the built code with one edit
(at the \`// protection <key>:\` marker in the source, docs/testing.md),
runs the tests tagged for the case, expects them to fail, and restores the code. A test that still
passes without its protection would prove nothing.

Protections checked: ${rows.length}; unnoticed removals: ${unnoticed}.

| case | protection removed | marker (or file) edited | tests run | result |
| --- | --- | --- | --- | --- |
${table}
`,
  );
}
console.log(`${rows.length - unnoticed} protections noticed, ${unnoticed} unnoticed`);
process.exit(unnoticed === 0 ? 0 : 1);
