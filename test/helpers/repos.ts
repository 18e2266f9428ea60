import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';

const exec = promisify(execFile);

/** A file to write: text, or content with a mode, or a symlink. */
export type FixtureFile = string | {content: string | Buffer; mode?: number} | {symlink: string};

/** The environment every fixture git command runs in: no user or system config, fixed identity. */
function gitEnv(time: number): NodeJS.ProcessEnv {
  const date = `${time} +0000`;
  return {
    PATH: process.env.PATH,
    HOME: '/nonexistent',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: 'Fixture Author',
    GIT_AUTHOR_EMAIL: 'fixture@example.invalid',
    GIT_COMMITTER_NAME: 'Fixture Author',
    GIT_COMMITTER_EMAIL: 'fixture@example.invalid',
    GIT_AUTHOR_DATE: date,
    GIT_COMMITTER_DATE: date,
  };
}

export async function git(cwd: string, args: string[], time = 1_700_000_000): Promise<string> {
  const {stdout} = await exec('git', args, {
    cwd,
    env: gitEnv(time),
    maxBuffer: 256 * 1024 * 1024,
    encoding: 'utf8',
  });
  return stdout.trim();
}

/**
 * A work-tree repository built with native git, with a fixed author and clock, so the same
 * steps give the same commit ids on every run.
 */
export class FixtureRepo {
  private time = 1_700_000_000;
  /** Gitlinks to keep in the index: `git add -A` would drop them, having no checkout. */
  private readonly gitlinks = new Map<string, string>();

  private constructor(readonly dir: string) {}

  static async init(dir: string): Promise<FixtureRepo> {
    await fsp.mkdir(dir, {recursive: true});
    await git(dir, ['init', '-q', '-b', 'main']);
    return new FixtureRepo(dir);
  }

  git(...args: string[]): Promise<string> {
    return git(this.dir, args, this.time);
  }

  async write(files: Record<string, FixtureFile>): Promise<this> {
    for (const [rel, spec] of Object.entries(files)) {
      const target = path.join(this.dir, rel);
      await fsp.mkdir(path.dirname(target), {recursive: true});
      await fsp.rm(target, {force: true, recursive: true});
      if (typeof spec === 'string') await fsp.writeFile(target, spec);
      else if ('symlink' in spec) await fsp.symlink(spec.symlink, target);
      else {
        await fsp.writeFile(target, spec.content);
        await fsp.chmod(target, spec.mode ?? 0o644);
      }
    }
    return this;
  }

  async remove(...paths: string[]): Promise<this> {
    await this.git('rm', '-q', '-r', '--', ...paths);
    return this;
  }

  /** Stage everything and commit; returns the new commit id. */
  async commit(message: string): Promise<string> {
    this.time += 60;
    await this.git('add', '-A');
    for (const [subPath, sha] of this.gitlinks) {
      await this.git('update-index', '--add', '--cacheinfo', `160000,${sha},${subPath}`);
    }
    await this.git('commit', '-q', '--allow-empty', '-m', message);
    return this.git('rev-parse', 'HEAD');
  }

  /** Record a gitlink (a submodule) at `subPath` pointing at `sha` of the repo at `url`. */
  async addSubmodule(subPath: string, url: string, sha: string): Promise<void> {
    await this.write({
      '.gitmodules': `[submodule "${subPath}"]\n\tpath = ${subPath}\n\turl = ${url}\n`,
    });
    this.gitlinks.set(subPath, sha);
  }

  async tag(name: string, options: {annotated?: boolean; rev?: string} = {}): Promise<void> {
    const rev = options.rev ?? 'HEAD';
    if (options.annotated) await this.git('tag', '-a', name, '-m', `tag ${name}`, rev);
    else await this.git('tag', name, rev);
  }

  async head(): Promise<string> {
    return this.git('rev-parse', 'HEAD');
  }

  async hasCommits(): Promise<boolean> {
    return this.git('rev-parse', '--verify', '-q', 'HEAD').then(
      () => true,
      () => false,
    );
  }

  /** Create or update the bare repository `bareDir` with every branch and tag of this one. */
  async publish(bareDir: string): Promise<string> {
    try {
      await fsp.access(path.join(bareDir, 'HEAD'));
    } catch {
      await fsp.mkdir(bareDir, {recursive: true});
      await git(bareDir, ['init', '-q', '--bare', '-b', 'main']);
      await git(bareDir, ['config', 'http.receivepack', 'true']);
    }
    await this.git('push', '-q', '--force', '--mirror', bareDir);
    return bareDir;
  }
}

/** Extract `git archive` of `rev` in `repoDir` into `dest`: the reference a release must equal. */
export async function gitArchive(repoDir: string, rev: string, dest: string): Promise<void> {
  await fsp.mkdir(dest, {recursive: true});
  await exec(
    'sh',
    ['-c', `git -C "${repoDir}" archive --format=tar "${rev}" | tar -x -C "${dest}"`],
    {
      env: gitEnv(0),
    },
  );
}
