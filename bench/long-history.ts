/**
 * Repositories the size of real long-lived ones, built deterministically with `git fast-import` in
 * a minute or two: an app with thousands of commits of churn (source files edited a few at a time,
 * bundles that are replaced and later deleted, so the history is far larger than the tree at its
 * tip), and a vendor repository of thousands of files pinned as a submodule at `vendor`.
 */
import {spawn} from 'node:child_process';
import {createCipheriv} from 'node:crypto';
import {once} from 'node:events';
import type {Writable} from 'node:stream';

export type HistoryShape = {
  /** Commits on the app's main branch. */
  commits: number;
  /** Source files in the tree at every commit. */
  files: number;
  /** Every this many commits, a bundle of `bundleBytes` replaces the last one. */
  bundleEvery: number;
  bundleBytes: number;
  /** Bundles kept in the tree at once (older ones are deleted): history grows, the tree does not. */
  bundlesKept: number;
};

/** About the repository the issue measured: 8,167 commits, a 2,064-file tree, a 440 MB pack. */
export const LONG_HISTORY: HistoryShape = {
  commits: 8000,
  files: 2100,
  bundleEvery: 25,
  bundleBytes: 1_200_000,
  bundlesKept: 3,
};

/** Deterministic bytes that do not compress much: AES-CTR over zeros with a fixed key. */
export function noise(seed: number, length: number): Buffer {
  const key = Buffer.alloc(16, 7);
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(seed >>> 0, 0);
  return createCipheriv('aes-128-ctr', key, iv).update(Buffer.alloc(length));
}

/** A source file's text at some version: lines of code, a few of them changed from one to the next. */
function source(file: number, version: number): Buffer {
  const lines: string[] = [`// file ${file}`];
  for (let i = 0; i < 60 + (file % 90); i++) {
    // One line in eight changes with each version: a realistic diff, and a delta git can find.
    const v = i % 8 === version % 8 ? version : 0;
    lines.push(`export const f${file}_${i} = ${(file * 7919 + i * 104729 + v * 31) % 1_000_003};`);
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

const filePath = (file: number) => `src/m${file % 64}/part${Math.floor(file / 64)}.js`;

class FastImport {
  private mark = 0;

  constructor(private readonly out: Writable) {}

  async write(chunk: string | Buffer): Promise<void> {
    if (!this.out.write(chunk)) await once(this.out, 'drain');
  }

  async blob(content: Buffer): Promise<number> {
    const mark = ++this.mark;
    await this.write(`blob\nmark :${mark}\ndata ${content.length}\n`);
    await this.write(content);
    await this.write('\n');
    return mark;
  }

  async commit(options: {
    ref: string;
    time: number;
    message: string;
    parent?: number;
    /** A parent named by sha, in a repository that exists already. */
    from?: string;
    changes: string[];
  }): Promise<number> {
    const mark = ++this.mark;
    const message = Buffer.from(options.message);
    await this.write(
      `commit ${options.ref}\nmark :${mark}\n` +
        `author Bench <bench@example.invalid> ${options.time} +0000\n` +
        `committer Bench <bench@example.invalid> ${options.time} +0000\n` +
        `data ${message.length}\n`,
    );
    await this.write(message);
    const from = options.parent ? `:${options.parent}` : options.from;
    await this.write(`\n${from ? `from ${from}\n` : ''}`);
    await this.write(`${options.changes.join('\n')}\n\n`);
    return mark;
  }
}

/**
 * Run `git fast-import` into the bare repository `gitdir`, fed by `feed`; `append` adds to a
 * repository that exists already.
 */
async function fastImport(
  gitdir: string,
  feed: (fi: FastImport) => Promise<void>,
  append = false,
): Promise<void> {
  if (!append) await run('git', ['init', '-q', '--bare', '-b', 'main', gitdir]);
  const child = spawn('git', ['--git-dir', gitdir, 'fast-import', '--quiet', '--depth=50'], {
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  const exited = once(child, 'close');
  await feed(new FastImport(child.stdin));
  child.stdin.end();
  const [code] = (await exited) as [number];
  if (code !== 0) throw new Error(`git fast-import into ${gitdir} exited ${code}`);
}

/** The vendor repository: `files` small artifacts in a flat-ish layout, in one commit. */
export async function buildVendor(gitdir: string, files: number): Promise<void> {
  await fastImport(gitdir, async fi => {
    const changes: string[] = [];
    for (let i = 0; i < files; i++) {
      const mark = await fi.blob(noise(1_000_000 + i, 2_000 + (i % 13) * 500));
      changes.push(`M 100644 :${mark} npm/pkg${i % 400}/pkg${i % 400}-${i}.tgz`);
    }
    await fi.commit({ref: 'refs/heads/main', time: 1_700_000_000, message: 'vendor', changes});
  });
}

/** The vendor repository of an npm app: these files (tarballs and manifest) in one commit. */
export async function buildFilesRepo(gitdir: string, files: Record<string, Buffer>): Promise<void> {
  await fastImport(gitdir, async fi => {
    const changes: string[] = [];
    for (const [name, content] of Object.entries(files))
      changes.push(`M 100644 :${await fi.blob(content)} ${name}`);
    await fi.commit({ref: 'refs/heads/main', time: 1_700_000_000, message: 'vendor', changes});
  });
}

/**
 * One commit on `ref` whose parent is `parent` (a full sha), writing `files` and pointing the
 * gitlinks of `gitlinks` (path to sha) at new commits; resolves the new commit's sha.
 */
export async function appendCommit(
  gitdir: string,
  options: {
    ref: string;
    parent: string;
    message: string;
    files: Record<string, Buffer>;
    gitlinks?: Record<string, string>;
  },
): Promise<string> {
  await fastImport(
    gitdir,
    async fi => {
      const changes: string[] = [];
      for (const [name, content] of Object.entries(options.files))
        changes.push(`M 100644 :${await fi.blob(content)} ${name}`);
      for (const [name, sha] of Object.entries(options.gitlinks ?? {}))
        changes.push(`M 160000 ${sha} ${name}`);
      await fi.commit({
        ref: options.ref,
        time: 1_800_000_000,
        message: options.message,
        from: options.parent,
        changes,
      });
    },
    true,
  );
  return (await output('git', ['--git-dir', gitdir, 'rev-parse', options.ref])).trim();
}

/**
 * A repository whose history inflates far beyond its pack: `versions` commits of one 1 MiB text
 * file, each changing a few lines, so every version compresses and deltas against the last to a
 * few bytes (1,000 versions: 1 GiB of blobs in a pack of a few MiB).
 */
export async function buildInflating(gitdir: string, versions: number): Promise<void> {
  const lines = Array.from({length: 16_384}, (_, i) => `line ${i} `.padEnd(63, '.'));
  await fastImport(gitdir, async fi => {
    let parent: number | undefined;
    for (let v = 0; v < versions; v++) {
      for (let k = 0; k < 4; k++) {
        const i = (v * 4099 + k * 7919) % lines.length;
        lines[i] = `line ${i} version ${v}`.padEnd(63, '.');
      }
      const changes = [`M 100644 :${await fi.blob(Buffer.from(`${lines.join('\n')}\n`))} big.txt`];
      if (v === 0) changes.push(`M 100644 :${await fi.blob(Buffer.from('{}\n'))} deploy.json`);
      parent = await fi.commit({
        ref: 'refs/heads/main',
        time: 1_700_000_000 + v * 600,
        message: `version ${v}`,
        ...(parent ? {parent} : {}),
        changes,
      });
    }
  });
}

/** What the app's first commit holds besides its sources (an npm app's manifests, say). */
export type AppFiles = {deployJson?: Buffer; files?: Record<string, Buffer>};

/**
 * The app: `shape.commits` commits, each editing a few source files (and every `bundleEvery`
 * commits replacing a bundle), the vendor repository pinned as a submodule at `vendor` (relative
 * URL, as Zamboni did) from the first commit on, and a deploy.json that declares nothing to
 * install: the cost measured is git's, fetching and writing the trees.
 */
export async function buildApp(
  gitdir: string,
  shape: HistoryShape,
  vendorSha: string,
  extra: AppFiles = {},
): Promise<void> {
  await fastImport(gitdir, async fi => {
    const versions = new Array<number>(shape.files).fill(0);
    let parent: number | undefined;
    let x = 12345;
    for (let c = 0; c < shape.commits; c++) {
      const changes: string[] = [];
      if (c === 0) {
        const gitmodules = '[submodule "vendor"]\n\tpath = vendor\n\turl = ../vendor.git\n';
        changes.push(`M 160000 ${vendorSha} vendor`);
        changes.push(`M 100644 :${await fi.blob(Buffer.from(gitmodules))} .gitmodules`);
        const deployJson = extra.deployJson ?? Buffer.from('{}\n');
        changes.push(`M 100644 :${await fi.blob(deployJson)} deploy.json`);
        for (const [name, content] of Object.entries(extra.files ?? {}))
          changes.push(`M 100644 :${await fi.blob(content)} ${name}`);
        for (let f = 0; f < shape.files; f++)
          changes.push(`M 100644 :${await fi.blob(source(f, 0))} ${filePath(f)}`);
      } else {
        for (let k = 0; k < 1 + (c % 5); k++) {
          x = (x * 1103515245 + 12345) % 2 ** 31;
          const f = x % shape.files;
          versions[f] = (versions[f] ?? 0) + 1;
          changes.push(`M 100644 :${await fi.blob(source(f, versions[f] ?? 0))} ${filePath(f)}`);
        }
      }
      if (c % shape.bundleEvery === 0) {
        const n = c / shape.bundleEvery;
        changes.push(`M 100644 :${await fi.blob(noise(n, shape.bundleBytes))} dist/bundle-${n}.js`);
        if (n >= shape.bundlesKept) changes.push(`D dist/bundle-${n - shape.bundlesKept}.js`);
      }
      parent = await fi.commit({
        ref: 'refs/heads/main',
        time: 1_700_000_000 + c * 600,
        message: `change ${c}`,
        ...(parent ? {parent} : {}),
        changes,
      });
    }
  });
}

function output(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {stdio: ['ignore', 'pipe', 'inherit']});
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', code => {
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}`));
    });
  });
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {stdio: 'inherit'});
    child.on('close', code => {
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}`));
    });
  });
}
