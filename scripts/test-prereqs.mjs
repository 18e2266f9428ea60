#!/usr/bin/env node
// First step of `npm test`: the programs the suite runs for real must be on this machine. The
// tests serve fixture repositories with native git (git http-backend), run Debian's
// ansible-playbook, nginx and systemd-analyze on the examples, build virtualenvs with python3,
// sign commits with ssh-keygen and gpg, and lock a Poetry app with poetry.
// Whatever is missing is installed with apt-get when we are root and apt-get exists (said on
// stderr); otherwise the run stops at once, naming the packages to install.
import {execFileSync, spawnSync} from 'node:child_process';
import {accessSync, constants, mkdtempSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Where a command is found: PATH, then the sbin directories a non-root PATH often lacks. */
export function findCommand(name, env = process.env) {
  const dirs = [...(env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

function hasGitHttpBackend(env) {
  const git = findCommand('git', env);
  if (!git) return false;
  try {
    const execPath = execFileSync(git, ['--exec-path'], {env, encoding: 'utf8'}).trim();
    accessSync(path.join(execPath, 'git-http-backend'), constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function canMakeVenv(env) {
  const python = findCommand('python3', env);
  if (!python) return false;
  const probe = mkdtempSync(path.join(os.tmpdir(), 'repodeploy-venv-probe-'));
  try {
    return spawnSync(python, ['-m', 'venv', path.join(probe, 'venv')], {env}).status === 0;
  } finally {
    rmSync(probe, {recursive: true, force: true});
  }
}

/** What the suite needs: what is checked, the Debian package that provides it. */
const needs = [
  {what: 'git with git http-backend', pkg: 'git', present: hasGitHttpBackend},
  {
    what: 'ansible-playbook',
    pkg: 'ansible-core',
    present: env => !!findCommand('ansible-playbook', env),
  },
  // The example role is linted as Ansible users lint theirs (test/fleet.test.ts).
  {what: 'ansible-lint', pkg: 'ansible-lint', present: env => !!findCommand('ansible-lint', env)},
  {what: 'nginx', pkg: 'nginx-light', present: env => !!findCommand('nginx', env)},
  {what: 'systemd-analyze', pkg: 'systemd', present: env => !!findCommand('systemd-analyze', env)},
  {what: 'python3 -m venv', pkg: 'python3-venv', present: canMakeVenv},
  // The signing tests sign commits and tags with real keys, as developers do (test/signing.test.ts).
  {what: 'ssh-keygen', pkg: 'openssh-client', present: env => !!findCommand('ssh-keygen', env)},
  {what: 'gpg', pkg: 'gnupg', present: env => !!findCommand('gpg', env)},
  // A Poetry app's lock is made by the real `poetry lock` against a local index (test/python-locks.test.ts).
  {what: 'poetry', pkg: 'python3-poetry', present: env => !!findCommand('poetry', env)},
];

export function missingPrereqs(env = process.env) {
  return needs.filter(need => !need.present(env));
}

function aptInstall(packages, env) {
  const aptEnv = {...env, DEBIAN_FRONTEND: 'noninteractive'};
  // apt's progress goes to stderr: stdout stays the test report.
  const opts = {env: aptEnv, stdio: ['ignore', 2, 2]};
  for (const args of [
    ['update', '-q'],
    ['install', '-y', '-q', '--no-install-recommends', ...packages],
  ]) {
    const result = spawnSync('apt-get', args, opts);
    if (result.status !== 0) return `apt-get ${args[0]} exited ${result.status ?? result.signal}`;
  }
  return undefined;
}

function describe(missing) {
  return missing.map(need => `${need.what} (Debian package ${need.pkg})`).join(', ');
}

/** Install what is missing where we can; the error text when something is still missing. */
export function ensurePrereqs(env = process.env, log = text => process.stderr.write(text)) {
  const missing = missingPrereqs(env);
  if (missing.length === 0) return undefined;
  const packages = [...new Set(missing.map(need => need.pkg))];
  const root = process.getuid?.() === 0;
  if (!root || !findCommand('apt-get', env)) {
    return (
      `npm test needs ${describe(missing)}, not found on this machine. ` +
      `Install ${packages.length > 1 ? 'them' : 'it'} (sudo apt-get install ${packages.join(' ')}) ` +
      `and run npm test again; run as root where apt-get exists, npm test installs them itself.`
    );
  }
  log(`npm test: installing ${packages.join(' ')} with apt-get (missing: ${describe(missing)})\n`);
  const failure = aptInstall(packages, env);
  const still = missingPrereqs(env);
  if (still.length === 0) return undefined;
  return (
    `npm test needs ${describe(still)}${failure ? `; ${failure}` : ''}. ` +
    `Install ${still.map(need => need.pkg).join(' ')} and run npm test again.`
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const error = ensurePrereqs();
  if (error) {
    process.stderr.write(`error: ${error}\n`);
    process.exitCode = 1;
  }
}
