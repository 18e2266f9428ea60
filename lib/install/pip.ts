import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import pLimit from 'p-limit';
import type {TreeFile} from '../git/export.js';
import type {PipInstallSettings} from '../pins/deploy-config.js';
import {ConfigError} from '../support/errors.js';
import {samePin, sha256File, sha256Hex} from '../pins/integrity.js';
import {
  normalizePypiName,
  readRegularFile,
  verifyArtifactFile,
  type Artifact,
} from '../pins/vendor-manifest.js';
import {networkWall} from './no-network.js';
import {appendLog, runLogged} from '../node/run-logged.js';
import {hermeticEnv, makeScratch} from './run.js';
import {checkWheel} from './wheel-check.js';
import type {ReuseSpec} from './reuse.js';
import {relocateVenv} from './venv-relocate.js';
import {parseRequirements, type PipRequirement} from '../pins/requirements.js';
import {
  IntegrityProblems,
  type InstallContext,
  type Installer,
  type VerifiedArtifact,
} from './types.js';

export {parseRequirements, type PipRequirement} from '../pins/requirements.js';

/**
 * What a pip install reads: the file that pins the requirements (a requirements file, or a lock
 * they are derived from), and the requirements pip gets.
 */
export type PipSource = {
  kind: 'pip' | 'uv' | 'poetry';
  describe: string;
  /** The pinning file in the release: the requirements file or the lock. */
  file: string;
  /** Other files of the release the requirements are read from, when there. */
  also?: string[];
  python: string;
  venv: string;
  reuse: boolean;
  /** Every setting of the install, for its reuse key. */
  settings: unknown;
  /** The requirements, checked; a ConfigError when the app lacks the file. */
  read(ctx: InstallContext): Promise<PipRequirement[]>;
  /** The requirements file `pip install -r` reads, written into `scratchDir` when derived. */
  requirementsFile(ctx: InstallContext, scratchDir: string): Promise<string>;
};

/**
 * The pip installer: a virtualenv inside the release, then
 * `pip install --no-index --find-links <verified wheels> --require-hashes -r <requirements>`,
 * with every pip configuration file and PIP_* variable of the node shut out.
 */
export function pipInstaller(settings: PipInstallSettings): Installer {
  return pythonInstaller({
    kind: 'pip',
    describe: `pip install -r ${settings.requirements} into ${settings.venv}/`,
    file: settings.requirements,
    python: settings.python,
    venv: settings.venv,
    reuse: settings.reuse,
    settings,
    read: ctx => readPipRequirements(ctx, settings),
    requirementsFile: ctx => Promise.resolve(path.join(ctx.releaseDir, settings.requirements)),
  });
}

/** An installer over one source of requirements: verify, reuse, install as pip does. */
export function pythonInstaller(source: PipSource): Installer {
  return {
    kind: source.kind,
    describe: source.describe,
    verify: ctx => verifyPipArtifacts(ctx, source),
    reuse: source.reuse ? (ctx, verified) => pipReuseKey(ctx, source, verified) : undefined,
    early: {
      inputs: tree => {
        const inputs = pipInputs(tree, {requirements: source.file, venv: source.venv});
        const also = new Set((source.also ?? []).map(p => path.posix.normalize(p)));
        for (const entry of tree) if (also.has(entry.path)) inputs?.add(entry.path);
        return inputs;
      },
      // pip reads the requirements file and the wheelhouse only; nothing of the app runs.
      blocker: () => Promise.resolve(undefined),
    },
    install: (ctx, verified, alongside) => pipInstall(ctx, source, verified, alongside),
  };
}

/** Every file the requirements file pins, found in the vendor tree and checked. */
async function verifyPipArtifacts(
  ctx: InstallContext,
  source: PipSource,
): Promise<VerifiedArtifact[]> {
  const requirements = await source.read(ctx);
  const problems = new IntegrityProblems('pypi');
  const verified: VerifiedArtifact[] = [];
  for (const req of requirements) {
    const candidates = (ctx.manifest?.artifacts ?? []).filter(
      a => a.ecosystem === 'pypi' && normalizePypiName(a.name) === normalizePypiName(req.name),
    );
    const matching = candidates.filter(a => samePin(a.integrity, req.integrity));
    if (matching.length === 0) {
      // A requirement behind an environment marker may not apply to this node: pip decides.
      if (req.marker) continue;
      const sameVersion = candidates.filter(a => a.version === req.version);
      const where = req.line > 0 ? `${source.file}:${req.line}` : source.file;
      problems.add(
        req.name,
        sameVersion.length > 0
          ? `${req.name}==${req.version} (${where}): the vendor repo has files for it, but none with a hash the ${source.kind === 'pip' ? 'requirements file' : 'lock'} allows`
          : `${req.name}==${req.version} (${where}): not in the vendor repo`,
        'missing',
      );
      continue;
    }
    for (const artifact of matching) {
      const file = await verifyPipArtifact(ctx, req, artifact, problems);
      if (file === undefined) continue;
      verified.push({name: req.name, version: req.version, integrity: req.integrity, file});
    }
  }
  problems.throwIfAny(ctx.manifest === undefined);
  return verified;
}

/** The app's requirements file, parsed; a ConfigError when the app has none. */
async function readPipRequirements(
  ctx: InstallContext,
  settings: PipInstallSettings,
): Promise<PipRequirement[]> {
  const file = path.join(ctx.releaseDir, settings.requirements);
  const text = await readRegularFile(file, settings.requirements);
  if (text === undefined) {
    throw new ConfigError(
      `deploy.json asks for a pip install, but the app has no ${settings.requirements}.`,
      'Commit a requirements file with == pins and --hash lines, or set install.requirements.',
    );
  }
  return parseRequirements(text, settings.requirements);
}

/**
 * One vendored file checked against the requirement's hashes, and a wheel's contents against
 * what pip may unpack; its path, or undefined with the problem added.
 */
async function verifyPipArtifact(
  ctx: InstallContext,
  req: PipRequirement,
  artifact: Artifact,
  problems: IntegrityProblems,
): Promise<string | undefined> {
  try {
    const verifiedFile = await verifyArtifactFile(ctx.vendorDir ?? '', artifact, req.integrity);
    if (verifiedFile.endsWith('.whl')) {
      try {
        await checkWheel(verifiedFile, artifact.path);
      } catch (error) {
        problems.add(req.name, (error as Error).message, 'hostile');
        return undefined;
      }
    }
    return verifiedFile;
  } catch (error) {
    problems.add(req.name, (error as Error).message, 'tampered');
    return undefined;
  }
}

/**
 * A virtualenv in the release, then pip install from a wheelhouse of the verified files only;
 * `alongside` (the rest of the release) is written while both run.
 */
async function pipInstall(
  ctx: InstallContext,
  source: PipSource,
  verified: VerifiedArtifact[],
  alongside: (() => Promise<void>) | undefined,
): Promise<void> {
  const scratch = await makeScratch('repodeploy-pip-', ctx.scratchDir);
  const writing = alongside?.();
  // Awaited by pip's run below (or in finally): not an unhandled rejection meanwhile.
  writing?.catch(() => undefined);
  try {
    const wheelhouse = await fillWheelhouse(scratch.dir, verified);
    const requirements = await source.requirementsFile(ctx, scratch.dir);
    // Behind the check, a second wall: pip cannot reach any network (lib/install/no-network.ts).
    const wall = await networkWall(ctx.env);
    await appendLog(ctx.logFile, `${wall.describe}\n`);
    const env = pipEnv(ctx, scratch.home, wall.env);
    const venv = path.join(ctx.releaseDir, source.venv);
    const [python, venvArgs] = wall.wrap(source.python, ['-m', 'venv', venv]);
    await runLogged(python, venvArgs, {
      cwd: ctx.releaseDir,
      env,
      logFile: ctx.logFile,
      label: `${source.python} -m venv`,
      timeoutMs: ctx.timeoutMs,
    });
    const [pip, pipArgs] = wall.wrap(path.join(venv, 'bin', 'python'), [
      '-m',
      'pip',
      'install',
      '--no-index',
      '--find-links',
      wheelhouse,
      '--require-hashes',
      '--no-cache-dir',
      // Nothing is to be fetched: a fetch that fails fails at once, without backing off.
      '--retries',
      '0',
      '-r',
      requirements,
    ]);
    await runLogged(pip, pipArgs, {
      cwd: ctx.releaseDir,
      env,
      logFile: ctx.logFile,
      label: 'pip install',
      timeoutMs: ctx.timeoutMs,
      alongside: writing ? () => writing : undefined,
    });
  } finally {
    // The venv step failed first: its error is the install's, once the writing has stopped.
    await writing?.catch(() => undefined);
    await scratch.cleanup();
  }
}

/** pip sees only the files just verified, copied so the bytes checked are the bytes used. */
async function fillWheelhouse(scratchDir: string, verified: VerifiedArtifact[]): Promise<string> {
  const wheelhouse = path.join(scratchDir, 'wheelhouse');
  await fsp.mkdir(wheelhouse);
  for (const artifact of verified) {
    await fsp.copyFile(artifact.file, path.join(wheelhouse, path.basename(artifact.file)));
  }
  return wheelhouse;
}

/** pip's environment: no pip.conf (global, user or site) and no PIP_* variable of the node. */
function pipEnv(
  ctx: InstallContext,
  home: string,
  wallEnv: Record<string, string>,
): Record<string, string> {
  return hermeticEnv(ctx.env, home, {
    PIP_CONFIG_FILE: '/dev/null',
    PIP_NO_INDEX: '1',
    PIP_NO_INPUT: '1',
    // pip decodes a requirements file without a coding line by the locale: make it UTF-8,
    // as the check reads it (lib/pins/requirements.ts).
    PYTHONUTF8: '1',
    PIP_DISABLE_PIP_VERSION_CHECK: '1',
    PYTHONNOUSERSITE: '1',
    PYTHONDONTWRITEBYTECODE: '1',
    RELEASE_DIR: ctx.releaseDir,
    ...wallEnv,
  });
}

/**
 * What pip reads of the app before it installs: the requirements file (and the directories above
 * it), and `.python-version`, which pyenv's shims read to choose the interpreter; with the
 * directories above the virtualenv, which it creates. Undefined when the app commits something
 * where the virtualenv goes (the order would matter).
 */
export function pipInputs(
  tree: TreeFile[],
  settings: Pick<PipInstallSettings, 'requirements' | 'venv'>,
): Set<string> | undefined {
  const requirements = path.posix.normalize(settings.requirements);
  const venv = path.posix.normalize(settings.venv).replace(/\/$/, '');
  const inTheWay = (entry: TreeFile) =>
    entry.path === venv ||
    entry.path.startsWith(`${venv}/`) ||
    (entry.kind !== 'dir' && venv.startsWith(`${entry.path}/`));
  if (tree.some(inTheWay)) return undefined;
  const inputs = new Set<string>();
  for (const entry of tree) {
    if (
      entry.path === requirements ||
      entry.path === '.python-version' ||
      // The directories above the requirements file and above the venv (which pip creates).
      (entry.kind === 'dir' &&
        (requirements.startsWith(`${entry.path}/`) || venv.startsWith(`${entry.path}/`)))
    ) {
      inputs.add(entry.path);
    }
  }
  return inputs;
}

/** The interpreter a pip install runs with, as the key of its reuse names it. */
const PYTHON_FACTS = [
  'import ensurepip, json, os, platform, sys, sysconfig',
  'print(json.dumps({"version": sys.version, "executable": os.path.realpath(sys.executable),',
  ' "pip": ensurepip.version(), "platform": sysconfig.get_platform(),',
  ' "libc": platform.libc_ver(), "machine": platform.machine()}))',
].join('\n');

/**
 * The key of a pip install (lib/install/reuse.ts): the requirements file's bytes, the name and
 * sha256 of every verified file in the wheelhouse, the install settings, the interpreter (its
 * real path and exact version, as found from the release on the installer's PATH), the pip its
 * ensurepip puts in a new virtualenv, and the platform.
 */
async function pipReuseKey(
  ctx: InstallContext,
  source: PipSource,
  verified: VerifiedArtifact[],
): Promise<ReuseSpec | {reason: string}> {
  // The lock's bytes (or the requirements file's): what pip is told to install comes from them.
  const requirements = await fsp.readFile(path.join(ctx.releaseDir, source.file));
  const also = await Promise.all(
    (source.also ?? []).map(async rel => {
      const text = await readRegularFile(path.join(ctx.releaseDir, rel), rel);
      return `${rel} ${text === undefined ? '-' : sha256Hex(text)}`;
    }),
  );
  const python = await pythonFacts(ctx, source);
  if (typeof python === 'string') return {reason: python};
  const limit = pLimit(4);
  const artifacts = await Promise.all(
    verified.map(a =>
      limit(async () => `${path.basename(a.file)} sha256:${await sha256File(a.file)}`),
    ),
  );
  const key = sha256Hex(
    JSON.stringify({
      installer: source.kind,
      settings: source.settings,
      requirements: sha256Hex(requirements),
      // Absent for pip: its keys stay those of the releases before.
      ...(also.length > 0 ? {also} : {}),
      artifacts: artifacts.sort(),
      python,
      platform: `${process.platform}-${process.arch}`,
    }),
  );
  const venv = (dir: string) => path.join(dir, source.venv);
  return {
    key,
    outputs: [path.posix.normalize(source.venv)],
    inputs: `${source.kind === 'pip' ? 'requirements' : source.file}, wheels, Python, pip and install settings`,
    // bin/python3 links to the interpreter the venv was made with, outside every release.
    outsideLinks: true,
    relocate: (previousDir, releaseDir) => relocateVenv(venv(previousDir), venv(releaseDir)),
  };
}

const execFileAsync = promisify(execFile);

/** What PYTHON_FACTS prints for the interpreter the install would run, or why it cannot tell. */
async function pythonFacts(
  ctx: InstallContext,
  settings: Pick<PipSource, 'python'>,
): Promise<Record<string, unknown> | string> {
  const scratch = await makeScratch('repodeploy-python-', ctx.scratchDir);
  try {
    // -I: no PYTHON* variable, no user site; the cwd and PATH the venv step gets.
    const {stdout} = await execFileAsync(settings.python, ['-I', '-c', PYTHON_FACTS], {
      cwd: ctx.releaseDir,
      env: pipEnv(ctx, scratch.home, {}),
      timeout: 60_000,
    });
    return JSON.parse(stdout) as Record<string, unknown>;
  } catch (error) {
    return `${settings.python} could not tell its version (${(error as Error).message.split('\n')[0] ?? ''})`;
  } finally {
    await scratch.cleanup();
  }
}
