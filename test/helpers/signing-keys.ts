/**
 * Real signing keys and signed repositories for the signing tests: SSH keys from ssh-keygen,
 * OpenPGP keys from gpg in a throw-away GNUPGHOME, commits and tags signed by native git.
 */
import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import type {ExecutionContext} from 'ava';
import {GitStore} from '../../lib/git/store.js';

const exec = promisify(execFile);

export type SshKey = {
  /** The private key file. */
  file: string;
  /** The `.pub` file: what git's user.signingkey names. */
  pubFile: string;
  /** `type base64 comment`, the public key line. */
  pub: string;
  /** `SHA256:…` as ssh-keygen -l prints it. */
  fingerprint: string;
};

/** `ssh-keygen -t <type>` (e.g. 'ed25519', 'ecdsa:384', 'rsa:3072') without a passphrase. */
export async function sshKey(dir: string, name: string, type = 'ed25519'): Promise<SshKey> {
  const [kind = 'ed25519', bits] = type.split(':');
  const file = path.join(dir, name);
  const args = ['-q', '-t', kind, ...(bits ? ['-b', bits] : []), '-N', '', '-C', name, '-f', file];
  await exec('ssh-keygen', args);
  const pub = (await fsp.readFile(`${file}.pub`, 'utf8')).trim();
  const {stdout} = await exec('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`]);
  return {file, pubFile: `${file}.pub`, pub, fingerprint: stdout.split(' ')[1] ?? ''};
}

export type GpgKey = {home: string; fingerprint: string; armoredPublic: string; userId: string};

/** An ed25519 OpenPGP signing key in a fresh GNUPGHOME; its gpg-agent is stopped at teardown. */
export async function gpgKey(t: ExecutionContext, dir: string, userId: string): Promise<GpgKey> {
  const home = await fsp.mkdtemp(path.join(dir, 'g'));
  await fsp.chmod(home, 0o700);
  const env = {...process.env, GNUPGHOME: home};
  t.teardown(() =>
    exec('gpgconf', ['--kill', 'gpg-agent'], {env}).then(
      () => undefined,
      () => undefined,
    ),
  );
  await exec(
    'gpg',
    ['--batch', '--passphrase', '', '--quick-gen-key', userId, 'ed25519', 'sign', 'never'],
    {env},
  );
  const {stdout} = await exec('gpg', ['--batch', '--with-colons', '--list-keys', userId], {env});
  const fingerprint = /^fpr:+([0-9A-F]{40,64}):/m.exec(stdout)?.[1] ?? '';
  const armored = await exec('gpg', ['--batch', '--armor', '--export', fingerprint], {env});
  return {home, fingerprint, armoredPublic: armored.stdout, userId};
}

export type Signing = {ssh: SshKey} | {gpg: GpgKey} | undefined;

/** A work tree whose commits and tags native git makes (and signs), at a fixed clock. */
export class SignedRepo {
  time = 1_700_000_000;

  private constructor(readonly dir: string) {}

  static async init(dir: string): Promise<SignedRepo> {
    await fsp.mkdir(dir, {recursive: true});
    const repo = new SignedRepo(dir);
    await repo.git(undefined, 'dev@example.com', 'init', '-q', '-b', 'main');
    return repo;
  }

  get gitdir(): string {
    return path.join(this.dir, '.git');
  }

  /** Run git as `email`, signing with `signing` where the command signs. */
  async git(signing: Signing, email: string, ...args: string[]): Promise<string> {
    const date = `${this.time} +0000`;
    const config = signing
      ? 'ssh' in signing
        ? ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${signing.ssh.pubFile}`]
        : ['-c', 'gpg.format=openpgp', '-c', `user.signingkey=${signing.gpg.fingerprint}`]
      : [];
    const env = {
      PATH: process.env.PATH,
      HOME: '/nonexistent',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_AUTHOR_NAME: 'Dev',
      GIT_AUTHOR_EMAIL: email,
      GIT_COMMITTER_NAME: 'Dev',
      GIT_COMMITTER_EMAIL: email,
      GIT_AUTHOR_DATE: date,
      GIT_COMMITTER_DATE: date,
      ...(signing && 'gpg' in signing ? {GNUPGHOME: signing.gpg.home} : {}),
    };
    const {stdout} = await exec('git', [...config, ...args], {
      cwd: this.dir,
      env,
      encoding: 'utf8',
    });
    return stdout.trim();
  }

  /** Write `files`, commit them (signed when `signing` is given), and return the commit id. */
  async commit(
    files: Record<string, string>,
    options: {signing?: Signing; email?: string; message?: string} = {},
  ): Promise<string> {
    for (const [name, text] of Object.entries(files)) {
      await fsp.mkdir(path.dirname(path.join(this.dir, name)), {recursive: true});
      await fsp.writeFile(path.join(this.dir, name), text);
    }
    this.time += 60;
    const email = options.email ?? 'dev@example.com';
    await this.git(undefined, email, 'add', '-A');
    const sign = options.signing ? ['-S'] : [];
    await this.git(
      options.signing,
      email,
      'commit',
      '-q',
      ...sign,
      '--allow-empty',
      '-m',
      options.message ?? 'change',
    );
    return this.git(undefined, email, 'rev-parse', 'HEAD');
  }

  /** An annotated tag on HEAD (signed with -s when `signing` is given); returns the tag object id. */
  async tag(
    name: string,
    options: {signing?: Signing; email?: string; message?: string} = {},
  ): Promise<string> {
    this.time += 60;
    const email = options.email ?? 'dev@example.com';
    const kind = options.signing ? '-s' : '-a';
    await this.git(
      options.signing,
      email,
      'tag',
      kind,
      name,
      '-m',
      options.message ?? `release ${name}`,
    );
    return this.git(undefined, email, 'rev-parse', `refs/tags/${name}`);
  }

  private copies = 0;

  /**
   * A node's store holding everything this repository holds now: a fresh copy of its gitdir,
   * because lib/git/fs.ts keeps directory listings for a second and objects native git wrote
   * since would not be seen through the same path.
   */
  async store(): Promise<GitStore> {
    const copy = `${this.dir}-store-${++this.copies}.git`;
    await fsp.cp(this.gitdir, copy, {recursive: true});
    return GitStore.open(copy);
  }

  /** The raw object bytes of `oid` (git cat-file). */
  async raw(oid: string): Promise<Buffer> {
    const type = await this.git(undefined, 'dev@example.com', 'cat-file', '-t', oid);
    const {stdout} = await exec('git', ['cat-file', type, oid], {
      cwd: this.dir,
      encoding: 'buffer',
    });
    return stdout;
  }

  /** Write raw bytes as a loose object of `type` and return its id: a forged or altered object. */
  async writeRaw(type: 'commit' | 'tag', data: Buffer): Promise<string> {
    const file = path.join(this.dir, '..', `forged-${Date.now()}-${Math.random()}`);
    await fsp.writeFile(file, data);
    const {stdout} = await exec('git', ['hash-object', '-t', type, '-w', '--literally', file], {
      cwd: this.dir,
      encoding: 'utf8',
    });
    return stdout.trim();
  }
}

/** An allowed_signers line for `key`: `principals [options] type base64`. */
export function allowedLine(principals: string, key: SshKey, options?: string): string {
  const [type, base64] = key.pub.split(' ');
  return [principals, options, type, base64].filter(Boolean).join(' ');
}
