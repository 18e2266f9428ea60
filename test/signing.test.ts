import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import test, {type ExecutionContext} from 'ava';
import git from 'isomorphic-git';
import {ConfigError, ExitCode, SignatureError, SourceError} from '../lib/support/errors.js';
import {gitFs} from '../lib/git/isomorphic-hooks.js';
import {
  matchPatternList,
  parseAllowedSigners,
  parseSshTime,
} from '../lib/signing/allowed-signers.js';
import {verifyAppRev, verifyChangesetSignatures} from '../lib/signing/changeset.js';
import {readPgpKeys, verifyPgpSignature} from '../lib/signing/openpgp.js';
import {loadSigningPolicy, type SigningPolicy} from '../lib/signing/policy.js';
import {splitCommit, splitTag} from '../lib/signing/signed-object.js';
import {loadSshSigner} from '../lib/signing/ssh-sign.js';
import {parseSshSignature, verifySshSignature} from '../lib/signing/sshsig.js';
import {verifyCommitSignature, verifyTagSignature} from '../lib/signing/verify.js';
import {commitVendor} from '../vendor-sync/vendor-repo.js';
import {allowedLine, gpgKey, SignedRepo, sshKey} from './helpers/signing-keys.js';
import {tempDir} from './helpers/tmp.js';

const exec = promisify(execFile);

type RepoPolicy = {require: string; allowed?: string[]; pgp?: string[]};

/** Write the node's policy (and its allowed_signers / key files) under `dir` and load it. */
async function policyFor(
  dir: string,
  app: RepoPolicy,
  vendor: RepoPolicy = {require: 'none'},
): Promise<SigningPolicy> {
  const node = path.join(dir, 'node-etc');
  await fsp.mkdir(node, {recursive: true});
  const entry = async (name: string, repo: RepoPolicy) => {
    const files: {allowed_signers?: string[]; openpgp_keys?: string[]} = {};
    if (repo.allowed) {
      await fsp.writeFile(path.join(node, `${name}_signers`), `${repo.allowed.join('\n')}\n`);
      files.allowed_signers = [`${name}_signers`];
    }
    if (repo.pgp) {
      await fsp.writeFile(path.join(node, `${name}.asc`), repo.pgp.join('\n'));
      files.openpgp_keys = [`${name}.asc`];
    }
    return {require: repo.require, ...files};
  };
  const file = path.join(node, 'signing.json');
  await fsp.writeFile(
    file,
    JSON.stringify({app: await entry('app', app), vendor: await entry('vendor', vendor)}),
  );
  return loadSigningPolicy(file);
}

async function refusal(
  t: ExecutionContext,
  promise: Promise<unknown>,
  reason: SignatureError['reason'],
): Promise<SignatureError> {
  const error = await t.throwsAsync(promise, {instanceOf: SignatureError});
  t.is(error.reason, reason, error.message);
  t.is(error.exitCode, ExitCode.signature);
  t.truthy(error.hint);
  return error;
}

async function setup(t: ExecutionContext) {
  const dir = await tempDir(t, 'repodeploy-sign-');
  const repo = await SignedRepo.init(path.join(dir, 'app'));
  const dev = await sshKey(dir, 'dev');
  return {dir, repo, dev};
}

test('an SSH-signed commit by an allowed key is accepted and its signer named as ssh-keygen -l names it', async t => {
  const {dir, repo, dev} = await setup(t);
  const oid = await repo.commit({'a.txt': 'one\n'}, {signing: {ssh: dev}});
  const policy = await policyFor(dir, {
    require: 'commit',
    allowed: [allowedLine('dev@example.com', dev)],
  });
  const signer = await verifyCommitSignature(await repo.store(), oid, 'app', policy);
  t.deepEqual(signer, {
    repo: 'app',
    oid,
    object: 'commit',
    format: 'ssh',
    key: dev.fingerprint,
    principal: 'dev@example.com',
    allowedBy: `${path.join(dir, 'node-etc', 'app_signers')}:1`,
  });
});

test('ECDSA nistp256/384/521 and RSA signatures made by git and ssh-keygen verify in-process', async t => {
  const {dir, repo} = await setup(t);
  for (const type of ['ecdsa:256', 'ecdsa:384', 'ecdsa:521', 'rsa:3072']) {
    const key = await sshKey(dir, type.replace(':', '-'), type);
    const oid = await repo.commit({'a.txt': type}, {signing: {ssh: key}});
    const policy = await policyFor(dir, {
      require: 'commit',
      allowed: [allowedLine('*@example.com', key)],
    });
    const signer = await verifyCommitSignature(await repo.store(), oid, 'app', policy);
    t.is(signer.key, key.fingerprint, type);
  }
});

test('an unsigned commit is refused, naming the commit and how to sign it', async t => {
  const {dir, repo, dev} = await setup(t);
  const oid = await repo.commit({'a.txt': 'one\n'});
  const policy = await policyFor(dir, {
    require: 'commit',
    allowed: [allowedLine('dev@example.com', dev)],
  });
  const error = await refusal(
    t,
    verifyCommitSignature(await repo.store(), oid, 'app', policy),
    'unsigned',
  );
  t.regex(error.message, new RegExp(`app commit ${oid} .*not signed`));
  t.regex(error.hint ?? '', /git commit -S.*gpg\.format=ssh/);
});

test('a commit signed by a key the policy does not list is refused as an unknown key', async t => {
  const {dir, repo, dev} = await setup(t);
  const stranger = await sshKey(dir, 'stranger');
  const oid = await repo.commit({'a.txt': 'one\n'}, {signing: {ssh: stranger}});
  const policy = await policyFor(dir, {
    require: 'commit',
    allowed: [allowedLine('dev@example.com', dev)],
  });
  const error = await refusal(
    t,
    verifyCommitSignature(await repo.store(), oid, 'app', policy),
    'unknown-key',
  );
  t.true(error.message.includes(stranger.fingerprint));
});

test('a signed commit whose content was changed afterwards is refused as a bad signature', async t => {
  const {dir, repo, dev} = await setup(t);
  const oid = await repo.commit({'a.txt': 'one\n'}, {signing: {ssh: dev}, message: 'release 1'});
  const raw = await repo.raw(oid);
  const policy = await policyFor(dir, {
    require: 'commit',
    allowed: [allowedLine('dev@example.com', dev)],
  });
  const forgedMessage = await repo.writeRaw(
    'commit',
    Buffer.from(raw.toString('utf8').replace('release 1', 'release 2')),
  );
  await refusal(
    t,
    verifyCommitSignature(await repo.store(), forgedMessage, 'app', policy),
    'bad-signature',
  );
  // A trailing newline is the kind of change isomorphic-git's normalised payload would not see.
  const forgedNewline = await repo.writeRaw('commit', Buffer.concat([raw, Buffer.from('\n')]));
  await refusal(
    t,
    verifyCommitSignature(await repo.store(), forgedNewline, 'app', policy),
    'bad-signature',
  );
});

test('a key allowed only for the vendor repository is refused on an app commit', async t => {
  const {dir, repo, dev} = await setup(t);
  const vendorKey = await sshKey(dir, 'vendor-bot');
  const oid = await repo.commit(
    {'a.txt': 'one\n'},
    {signing: {ssh: vendorKey}, email: 'bot@example.com'},
  );
  const policy = await policyFor(
    dir,
    {require: 'commit', allowed: [allowedLine('dev@example.com', dev)]},
    {require: 'commit', allowed: [allowedLine('bot@example.com', vendorKey)]},
  );
  const error = await refusal(
    t,
    verifyCommitSignature(await repo.store(), oid, 'app', policy),
    'not-allowed',
  );
  t.regex(error.message, /allowed for the vendor repository only/);
  t.is(
    (await verifyCommitSignature(await repo.store(), oid, 'vendor', policy)).principal,
    'bot@example.com',
  );
});

test('the committer email must match the principals the key is listed for', async t => {
  const {dir, repo, dev} = await setup(t);
  const oid = await repo.commit(
    {'a.txt': 'one\n'},
    {signing: {ssh: dev}, email: 'mallory@example.org'},
  );
  const policy = await policyFor(dir, {
    require: 'commit',
    allowed: [allowedLine('*@example.com,!bot@example.com', dev)],
  });
  const error = await refusal(
    t,
    verifyCommitSignature(await repo.store(), oid, 'app', policy),
    'wrong-principal',
  );
  t.regex(error.message, /not for the committer <mallory@example\.org>/);
});

test('valid-after and valid-before are checked against the commit time, as git passes it to ssh-keygen', async t => {
  const {dir, repo, dev} = await setup(t);
  const oid = await repo.commit({'a.txt': 'one\n'}, {signing: {ssh: dev}});
  const when = new Date(repo.time * 1000);
  const stamp = (d: Date) => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
  const before = stamp(new Date(when.getTime() - 3600_000));
  const after = stamp(new Date(when.getTime() + 3600_000));
  const expired = await policyFor(dir, {
    require: 'commit',
    allowed: [allowedLine('dev@example.com', dev, `valid-before="${before}"`)],
  });
  await refusal(t, verifyCommitSignature(await repo.store(), oid, 'app', expired), 'expired');
  const early = await policyFor(dir, {
    require: 'commit',
    allowed: [allowedLine('dev@example.com', dev, `valid-after="${after}"`)],
  });
  await refusal(t, verifyCommitSignature(await repo.store(), oid, 'app', early), 'expired');
  const window = await policyFor(dir, {
    require: 'commit',
    allowed: [
      allowedLine('dev@example.com', dev, `valid-after="${before}",valid-before="${after}"`),
    ],
  });
  t.is((await verifyCommitSignature(await repo.store(), oid, 'app', window)).key, dev.fingerprint);
});

test('a key limited to another namespace (namespaces="file") may not sign commits', async t => {
  const {dir, repo, dev} = await setup(t);
  const oid = await repo.commit({'a.txt': 'one\n'}, {signing: {ssh: dev}});
  const policy = await policyFor(dir, {
    require: 'commit',
    allowed: [allowedLine('dev@example.com', dev, 'namespaces="file"')],
  });
  await refusal(t, verifyCommitSignature(await repo.store(), oid, 'app', policy), 'not-allowed');
});

test('a signature made in another namespace is not a commit signature, even over the same bytes', async t => {
  const {dir, repo, dev} = await setup(t);
  const oid = await repo.commit({'a.txt': 'one\n'}, {signing: {ssh: dev}});
  const {payload} = splitCommit(await repo.raw(oid));
  const file = path.join(dir, 'payload');
  await fsp.writeFile(file, payload);
  await exec('ssh-keygen', ['-q', '-Y', 'sign', '-n', 'file', '-f', dev.file, file]);
  const signature = parseSshSignature(await fsp.readFile(`${file}.sig`, 'utf8'));
  t.is(signature.namespace, 'file');
  t.true(verifySshSignature(signature, payload, 'file'));
  t.false(verifySshSignature(signature, payload, 'git'));
});

test('signed tags: accepted when the policy requires a tag, refused when unsigned, tampered or a commit is named', async t => {
  const {dir, repo, dev} = await setup(t);
  const commit = await repo.commit({'a.txt': 'one\n'});
  const signedTag = await repo.tag('v1', {
    signing: {ssh: dev},
    message: 'Release 1\n\nWith notes.',
  });
  const plainTag = await repo.tag('v1-plain');
  const policy = await policyFor(dir, {
    require: 'tag',
    allowed: [allowedLine('dev@example.com', dev)],
  });
  const signer = await verifyAppRev(await repo.store(), {named: signedTag, commit}, policy);
  t.like(signer, {
    object: 'tag',
    oid: signedTag,
    format: 'ssh',
    key: dev.fingerprint,
    principal: 'dev@example.com',
  });
  await refusal(t, verifyAppRev(await repo.store(), {named: plainTag, commit}, policy), 'unsigned');
  const error = await refusal(
    t,
    verifyAppRev(await repo.store(), {named: commit, commit}, policy),
    'unsigned',
  );
  t.regex(error.message, /requires a signed annotated tag/);
  const raw = (await repo.raw(signedTag)).toString('utf8');
  const forged = await repo.writeRaw('tag', Buffer.from(raw.replace('tag v1\n', 'tag v9\n')));
  await refusal(t, verifyTagSignature(await repo.store(), forged, 'app', policy), 'bad-signature');
});

test('commit-or-tag: an unsigned tag on a signed commit passes on the commit; a signed tag passes on the tag', async t => {
  const {dir, repo, dev} = await setup(t);
  const commit = await repo.commit({'a.txt': 'one\n'}, {signing: {ssh: dev}});
  const plainTag = await repo.tag('v1');
  const signedTag = await repo.tag('v1-signed', {signing: {ssh: dev}});
  const policy = await policyFor(dir, {
    require: 'commit-or-tag',
    allowed: [allowedLine('dev@example.com', dev)],
  });
  t.is(
    (await verifyAppRev(await repo.store(), {named: plainTag, commit}, policy)).object,
    'commit',
  );
  t.is((await verifyAppRev(await repo.store(), {named: signedTag, commit}, policy)).object, 'tag');
  const missing = '0123456789abcdef0123456789abcdef01234567';
  await t.throwsAsync(verifyAppRev(await repo.store(), {named: missing, commit}, policy), {
    instanceOf: SourceError,
  });
  await t.throwsAsync(verifyCommitSignature(await repo.store(), missing, 'app', policy), {
    instanceOf: SourceError,
  });
  const unsignedCommit = await repo.commit({'b.txt': 'two\n'});
  await refusal(
    t,
    verifyAppRev(await repo.store(), {named: unsignedCommit, commit: unsignedCommit}, policy),
    'unsigned',
  );
});

test('our payload is the bytes git signed: multi-line messages, merges and merged signed tags, checked by ssh-keygen', async t => {
  const {dir, repo, dev} = await setup(t);
  const base = await repo.commit({'a.txt': 'one\n'});
  await repo.git(undefined, 'dev@example.com', 'checkout', '-q', '-b', 'topic');
  await repo.commit(
    {'b.txt': 'two\n'},
    {message: 'Topic\n\n  indented line\n\n\nlast paragraph  '},
  );
  await repo.tag('t1', {signing: {ssh: dev}});
  await repo.git(undefined, 'dev@example.com', 'checkout', '-q', 'main');
  await repo.commit(
    {'c.txt': 'three\n'},
    {signing: {ssh: dev}, message: 'Subject\n\nBody line 1\nBody line 2'},
  );
  repo.time += 60;
  // A merge of a signed tag carries the tag, signature and all, in a mergetag header.
  await repo.git(
    {ssh: dev},
    'dev@example.com',
    'merge',
    '-q',
    '-S',
    '--no-ff',
    '-m',
    'Merge tag t1\n\nwith a body',
    't1',
  );
  const merge = await repo.git(undefined, 'dev@example.com', 'rev-parse', 'HEAD');
  const raw = await repo.raw(merge);
  t.true(raw.includes('\nmergetag object '));
  t.truthy(base);
  const allowed = path.join(dir, 'allowed');
  await fsp.writeFile(allowed, `${allowedLine('dev@example.com', dev)}\n`);
  for (const oid of [merge, await repo.git(undefined, 'dev@example.com', 'rev-parse', 'HEAD^1')]) {
    const {payload, signature} = splitCommit(await repo.raw(oid));
    const sig = path.join(dir, 'sig');
    await fsp.writeFile(sig, signature ?? '');
    // ssh-keygen reads the signed message on stdin: it accepts exactly the bytes git signed.
    const check = exec('ssh-keygen', [
      '-Y',
      'verify',
      '-f',
      allowed,
      '-I',
      'dev@example.com',
      '-n',
      'git',
      '-s',
      sig,
    ]);
    check.child.stdin?.end(payload);
    await t.notThrowsAsync(check);
    t.is(
      (
        await verifyCommitSignature(
          await repo.store(),
          oid,
          'app',
          await policyFor(dir, {require: 'commit', allowed: [allowedLine('dev@example.com', dev)]}),
        )
      ).oid,
      oid,
    );
  }
  // isomorphic-git's payload cuts at a PGP armor end it does not find: not what git signed.
  const {payload: isoPayload} = await git.readCommit({fs: gitFs, gitdir: repo.gitdir, oid: merge});
  t.not(isoPayload, splitCommit(raw).payload.toString('utf8'));
});

test('a tag payload is the object up to the last signature armor line, as git cuts it', async t => {
  const {repo, dev} = await setup(t);
  await repo.commit({'a.txt': 'one\n'});
  const tag = await repo.tag('v2', {
    signing: {ssh: dev},
    message: 'notes mention -----BEGIN SSH SIGNATURE----- inline',
  });
  const raw = await repo.raw(tag);
  const {payload, signature} = splitTag(raw);
  t.true(signature?.startsWith('-----BEGIN SSH SIGNATURE-----\n'));
  t.is(Buffer.concat([payload, Buffer.from(signature ?? '')]).toString(), raw.toString());
  t.true(payload.toString().endsWith('inline\n'));
});

test('OpenPGP: gpg-signed commits and tags by an allowed key pass; another key or a changed commit is refused', async t => {
  const {dir, repo} = await setup(t);
  const release = await gpgKey(t, dir, 'Release Key <release@example.com>');
  const other = await gpgKey(t, dir, 'Other <other@example.com>');
  const commit = await repo.commit(
    {'a.txt': 'one\n'},
    {signing: {gpg: release}, email: 'release@example.com'},
  );
  const tag = await repo.tag('v1', {signing: {gpg: release}, email: 'release@example.com'});
  const policy = await policyFor(dir, {require: 'commit', pgp: [release.armoredPublic]});
  const signer = await verifyCommitSignature(await repo.store(), commit, 'app', policy);
  t.deepEqual(
    {format: signer.format, key: signer.key, principal: signer.principal},
    {format: 'openpgp', key: release.fingerprint, principal: 'Release Key <release@example.com>'},
  );
  t.is((await verifyTagSignature(await repo.store(), tag, 'app', policy)).key, release.fingerprint);
  const foreign = await repo.commit({'b.txt': 'two\n'}, {signing: {gpg: other}});
  await refusal(
    t,
    verifyCommitSignature(await repo.store(), foreign, 'app', policy),
    'unknown-key',
  );
  const raw = (await repo.raw(commit)).toString('utf8');
  const forged = await repo.writeRaw('commit', Buffer.from(raw.replace('\nchange', '\nchanged')));
  await refusal(
    t,
    verifyCommitSignature(await repo.store(), forged, 'app', policy),
    'bad-signature',
  );
  const vendorOnly = await policyFor(
    dir,
    {require: 'commit', pgp: [other.armoredPublic]},
    {require: 'commit', pgp: [release.armoredPublic]},
  );
  await refusal(
    t,
    verifyCommitSignature(await repo.store(), commit, 'app', vendorOnly),
    'not-allowed',
  );
});

test('OpenPGP keys and signatures made with the openpgp library verify too', async t => {
  const openpgp = await import('openpgp');
  const {privateKey, publicKey} = await openpgp.generateKey({
    userIDs: [{name: 'CI', email: 'ci@example.com'}],
    format: 'object',
  });
  const payload = Buffer.from('tree 0000000000000000000000000000000000000000\n\nmessage\n');
  const message = await openpgp.createMessage({binary: payload});
  // openpgp's typings name web stream types @types/node does not give here: the result is a string.
  const signature = (await openpgp.sign({
    message,
    signingKeys: privateKey,
    detached: true,
  })) as string;
  const keys = await readPgpKeys(publicKey.armor(), 'ci.asc');
  const verdict = await verifyPgpSignature(signature, payload, keys);
  t.is(verdict.status, 'valid');
  t.is(
    (await verifyPgpSignature(signature, Buffer.concat([payload, Buffer.from('x')]), keys)).status,
    'bad',
  );
  await t.throwsAsync(readPgpKeys(privateKey.armor(), 'secret.asc'), {
    instanceOf: ConfigError,
    message: /private key/,
  });
});

test('the policy comes from the node: a changeset that ships its own policy and signers is still refused', async t => {
  const {dir, repo, dev} = await setup(t);
  const attacker = await sshKey(dir, 'attacker');
  const oid = await repo.commit(
    {
      'deploy.json': '{"signing_policy": "signing.json"}',
      'signing.json': JSON.stringify({
        app: {require: 'commit', allowed_signers: ['signers']},
        vendor: {require: 'none'},
      }),
      signers: `${allowedLine('*', attacker)}\n`,
    },
    {signing: {ssh: attacker}},
  );
  const policy = await policyFor(dir, {
    require: 'commit',
    allowed: [allowedLine('dev@example.com', dev)],
  });
  await refusal(
    t,
    verifyChangesetSignatures(
      {app: {store: await repo.store(), rev: {named: oid, commit: oid}}},
      policy,
    ),
    'unknown-key',
  );
  // The policy is a path on the node, resolved there; nothing in the API reads it from a tree.
  t.is(policy.file, path.join(dir, 'node-etc', 'signing.json'));
});

test('verifyChangesetSignatures checks the vendor commit too, unless the policy says none', async t => {
  const {dir, repo, dev} = await setup(t);
  const vendor = await SignedRepo.init(path.join(dir, 'vendor'));
  const app = await repo.commit({'a.txt': 'one\n'}, {signing: {ssh: dev}});
  const pin = await vendor.commit({'v.txt': 'one\n'});
  const strict = await policyFor(
    dir,
    {require: 'commit', allowed: [allowedLine('dev@example.com', dev)]},
    {require: 'commit', allowed: [allowedLine('dev@example.com', dev)]},
  );
  const changeset = {
    app: {store: await repo.store(), rev: {named: app, commit: app}},
    vendor: {store: await vendor.store(), commit: pin},
  };
  const error = await refusal(t, verifyChangesetSignatures(changeset, strict), 'unsigned');
  t.regex(error.message, /^The vendor commit /);
  const lax = await policyFor(dir, {
    require: 'commit',
    allowed: [allowedLine('dev@example.com', dev)],
  });
  t.deepEqual((await verifyChangesetSignatures(changeset, lax)).vendor, undefined);
});

test('vendor-sync signs its commits with an OpenSSH key and git verify-commit accepts them', async t => {
  const dir = await tempDir(t, 'repodeploy-sign-');
  const key = await sshKey(dir, 'vendor-sync');
  const repo = await SignedRepo.init(path.join(dir, 'vendor'));
  await fsp.writeFile(path.join(repo.dir, 'vendor-manifest.json'), '{}\n');
  const signer = await loadSshSigner(key.file);
  t.is(signer.publicKey.fingerprint, key.fingerprint);
  const oid = await commitVendor({
    dir: repo.dir,
    added: [],
    removed: [],
    message: 'vendor: update\n\nTwo lines.',
    author: {name: 'vendor-sync', email: 'vendor-sync@example.com'},
    now: new Date(1_700_000_000_000),
    signer,
  });
  t.truthy(oid);
  const allowed = path.join(dir, 'allowed');
  await fsp.writeFile(allowed, `${allowedLine('vendor-sync@example.com', key)}\n`);
  const {stderr} = await exec(
    'git',
    ['-c', `gpg.ssh.allowedSignersFile=${allowed}`, 'verify-commit', oid ?? ''],
    {cwd: repo.dir},
  );
  t.regex(stderr, /Good "git" signature for vendor-sync@example\.com/);
  const vendorPolicy = await policyFor(
    dir,
    {require: 'commit', allowed: [allowedLine('x@example.com', key)]},
    {require: 'commit', allowed: [allowedLine('vendor-sync@example.com', key)]},
  );
  t.is(
    (await verifyCommitSignature(await repo.store(), oid ?? '', 'vendor', vendorPolicy)).key,
    key.fingerprint,
  );
});

test('our SSH signer makes ECDSA and RSA signatures that ssh-keygen -Y verify accepts', async t => {
  const dir = await tempDir(t, 'repodeploy-sign-');
  const payload = Buffer.from('tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nmessage\n');
  for (const type of ['ed25519', 'ecdsa:256', 'ecdsa:384', 'ecdsa:521', 'rsa:2048']) {
    const key = await sshKey(dir, type.replace(':', '-'), type);
    const signer = await loadSshSigner(key.file);
    const sig = path.join(dir, `${type}.sig`);
    await fsp.writeFile(sig, signer.sign(payload));
    const allowed = path.join(dir, 'allowed');
    await fsp.writeFile(allowed, `${allowedLine('me@example.com', key)}\n`);
    const check = exec('ssh-keygen', [
      '-Y',
      'verify',
      '-f',
      allowed,
      '-I',
      'me@example.com',
      '-n',
      'git',
      '-s',
      sig,
    ]);
    check.child.stdin?.end(payload);
    await t.notThrowsAsync(check, type);
  }
});

test('an encrypted signing key without its passphrase is a ConfigError; with it, it signs', async t => {
  const dir = await tempDir(t, 'repodeploy-sign-');
  const file = path.join(dir, 'locked');
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'hunter22', '-f', file]);
  await t.throwsAsync(loadSshSigner(file), {instanceOf: ConfigError});
  const signer = await loadSshSigner(file, {passphrase: 'hunter22'});
  t.true(verifySshSignature(parseSshSignature(signer.sign('x')), Buffer.from('x'), 'git'));
});

test('hostile SSH signatures (truncated, bit-flipped, huge lengths) fail as SignatureError, never RangeError', async t => {
  const dir = await tempDir(t, 'repodeploy-sign-');
  const signer = await loadSshSigner((await sshKey(dir, 'k')).file);
  const armored = signer.sign('payload');
  const blob = Buffer.from(armored.split('\n').slice(1, -2).join(''), 'base64');
  const armor = (data: Buffer) =>
    `-----BEGIN SSH SIGNATURE-----\n${data.toString('base64')}\n-----END SSH SIGNATURE-----\n`;
  const outcomes = new Set<string>();
  const attempt = (data: Buffer) => {
    try {
      const parsed = parseSshSignature(armor(data));
      outcomes.add(verifySshSignature(parsed, Buffer.from('payload'), 'git') ? 'valid' : 'invalid');
    } catch (error) {
      t.true(error instanceof SignatureError, String(error));
      outcomes.add('refused');
    }
  };
  for (let length = 0; length < blob.length; length++) attempt(blob.subarray(0, length));
  for (let index = 0; index < blob.length; index++) {
    const flipped = Buffer.from(blob);
    flipped[index] = (flipped[index] ?? 0) ^ 0xff;
    attempt(flipped);
  }
  const huge = Buffer.from(blob);
  huge.writeUInt32BE(0xffffffff, 10);
  attempt(huge);
  t.false(outcomes.has('valid'));
  t.throws(
    () => parseSshSignature('-----BEGIN SSH SIGNATURE-----\n@@@\n-----END SSH SIGNATURE-----'),
    {instanceOf: SignatureError},
  );
  t.throws(() => parseSshSignature('x'.repeat(100_000)), {instanceOf: SignatureError});
});

test('allowed_signers: comments, quoted principals, options, patterns and timestamps as ssh-keygen reads them', async t => {
  const dir = await tempDir(t, 'repodeploy-sign-');
  const key = await sshKey(dir, 'k');
  const [type, base64] = key.pub.split(' ');
  const text = [
    '# a comment',
    '',
    `  "ann@example.com,bob@example.com" ${type} ${base64} trailing comment`,
    `*@example.org namespaces="git,file",valid-after="20240101",VALID-BEFORE="20301231235959Z" ${type} ${base64}`,
  ].join('\n');
  const signers = parseAllowedSigners(text, 'allowed');
  t.is(signers.length, 2);
  t.is(signers[0]?.principals, 'ann@example.com,bob@example.com');
  t.is(signers[0]?.source, 'allowed:3');
  t.is(signers[1]?.namespaces, 'git,file');
  t.deepEqual(signers[1]?.validBefore, new Date(Date.UTC(2030, 11, 31, 23, 59, 59)));
  t.is(signers[1]?.key.fingerprint, key.fingerprint);
  t.true(matchPatternList('ann@example.org', '*@example.org'));
  t.false(matchPatternList('ann@example.org', '*@example.org,!ann@*'));
  t.true(matchPatternList('a1@x', 'a?@x'));
  t.false(matchPatternList('ANN@example.org', 'ann@example.org'));
  t.false(matchPatternList('x'.repeat(5000), '*a*a*a*a*a*a*b'));
  t.is(parseSshTime('20240230'), undefined);
  for (const [line, reason] of [
    [`*@x cert-authority ${type} ${base64}`, /cert-authority is not supported/],
    [`*@x namespaces=git ${type} ${base64}`, /must be in double quotes/],
    [`*@x no-touch-required ${type} ${base64}`, /not one ssh-keygen knows/],
    [`*@x valid-after="2024" ${type} ${base64}`, /is not YYYYMMDD/],
    [`*@x ssh-rsa ${base64}`, /is a ssh-ed25519 key, not ssh-rsa/],
    [`*@x ${type}`, /no base64 data/],
  ] as const) {
    t.throws(
      () => parseAllowedSigners(line, 'f'),
      {instanceOf: ConfigError, message: reason},
      line,
    );
  }
});

test('the policy file is validated strictly, names what is wrong, and resolves key files beside itself', async t => {
  const dir = await tempDir(t, 'repodeploy-sign-');
  const key = await sshKey(dir, 'k');
  await fsp.writeFile(path.join(dir, 'signers'), `${allowedLine('*', key)}\n`);
  const write = async (body: string) => {
    const file = path.join(dir, 'signing.json');
    await fsp.writeFile(file, body);
    return file;
  };
  const ok = await loadSigningPolicy(
    await write(
      '{"app": {"require": "tag", "allowed_signers": ["signers"]}, "vendor": {"require": "none"}}',
    ),
  );
  t.is(ok.app.signers.ssh[0]?.source, `${path.join(dir, 'signers')}:1`);
  for (const [body, message] of [
    ['{"app": {"require": "tag", "allowed_signers": ["signers"]}}', /"vendor"/],
    [
      '{"app": {"require": "always", "allowed_signers": ["signers"]}, "vendor": {"require": "none"}}',
      /"app\.require"/,
    ],
    [
      '{"app": {"require": "tag", "allowed_signer": ["signers"]}, "vendor": {"require": "none"}}',
      /unknown key "app\.allowed_signer"/,
    ],
    ['{"app": {"require": "tag"}, "vendor": {"require": "none"}}', /lists no key/],
    [
      '{"app": {"require": "tag", "allowed_signers": ["missing"]}, "vendor": {"require": "none"}}',
      /cannot be read/,
    ],
    [
      '{"app": {"require": "tag", "allowed_signers": ["signers"]}, "app": {"require": "commit"}, "vendor": {"require": "none"}}',
      /"app" appears twice/,
    ],
    ['{"app": ', /not valid JSON/],
  ] as const) {
    await t.throwsAsync(
      loadSigningPolicy(await write(body)),
      {instanceOf: ConfigError, message},
      body,
    );
  }
});
