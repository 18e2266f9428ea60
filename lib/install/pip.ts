import {promises as fsp} from 'node:fs';
import path from 'node:path';
import type {PipInstallSettings} from '../pins/deploy-config.js';
import {ConfigError} from '../support/errors.js';
import {samePin} from '../pins/integrity.js';
import {normalizePypiName, readRegularFile, verifyArtifactFile} from '../pins/vendor-manifest.js';
import {networkWall} from './no-network.js';
import {appendLog, hermeticEnv, makeScratch, runLogged} from './run.js';
import {checkWheel} from './wheel-check.js';
import {parseRequirements} from '../pins/requirements.js';
import {IntegrityProblems, type Installer, type VerifiedArtifact} from './types.js';

export {parseRequirements, type PipRequirement} from '../pins/requirements.js';

/**
 * The pip installer: a virtualenv inside the release, then
 * `pip install --no-index --find-links <verified wheels> --require-hashes -r <requirements>`,
 * with every pip configuration file and PIP_* variable of the node shut out.
 */
export function pipInstaller(settings: PipInstallSettings): Installer {
  return {
    kind: 'pip',
    describe: `pip install -r ${settings.requirements} into ${settings.venv}/`,
    async verify(ctx) {
      const file = path.join(ctx.releaseDir, settings.requirements);
      const text = await readRegularFile(file, settings.requirements);
      if (text === undefined) {
        throw new ConfigError(
          `deploy.json asks for a pip install, but the app has no ${settings.requirements}.`,
          'Commit a requirements file with == pins and --hash lines, or set install.requirements.',
        );
      }
      const requirements = parseRequirements(text, settings.requirements);
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
          problems.add(
            req.name,
            sameVersion.length > 0
              ? `${req.name}==${req.version} (${settings.requirements}:${req.line}): the vendor repo has files for it, but none with a hash the requirements file allows`
              : `${req.name}==${req.version} (${settings.requirements}:${req.line}): not in the vendor repo`,
            'missing',
          );
          continue;
        }
        for (const artifact of matching) {
          try {
            const verifiedFile = await verifyArtifactFile(
              ctx.vendorDir ?? '',
              artifact,
              req.integrity,
            );
            if (verifiedFile.endsWith('.whl')) {
              try {
                await checkWheel(verifiedFile, artifact.path);
              } catch (error) {
                problems.add(req.name, (error as Error).message, 'hostile');
                continue;
              }
            }
            verified.push({
              name: req.name,
              version: req.version,
              integrity: req.integrity,
              file: verifiedFile,
            });
          } catch (error) {
            problems.add(req.name, (error as Error).message, 'tampered');
          }
        }
      }
      problems.throwIfAny(ctx.manifest === undefined);
      return verified;
    },
    async install(ctx, verified) {
      const scratch = await makeScratch('repodeploy-pip-', ctx.scratchDir);
      try {
        // pip sees only the files just verified, copied so the bytes checked are the bytes used.
        const wheelhouse = path.join(scratch.dir, 'wheelhouse');
        await fsp.mkdir(wheelhouse);
        for (const artifact of verified) {
          await fsp.copyFile(artifact.file, path.join(wheelhouse, path.basename(artifact.file)));
        }
        // Behind the check, a second wall: pip cannot reach any network (lib/install/no-network.ts).
        const wall = await networkWall(ctx.env);
        await appendLog(ctx.logFile, `${wall.describe}\n`);
        const env = hermeticEnv(ctx.env, scratch.home, {
          // No pip.conf (global, user or site) and no PIP_* variable of the node applies.
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
          ...wall.env,
        });
        const venv = path.join(ctx.releaseDir, settings.venv);
        const [python, venvArgs] = wall.wrap(settings.python, ['-m', 'venv', venv]);
        await runLogged(python, venvArgs, {
          cwd: ctx.releaseDir,
          env,
          logFile: ctx.logFile,
          label: `${settings.python} -m venv`,
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
          path.join(ctx.releaseDir, settings.requirements),
        ]);
        await runLogged(pip, pipArgs, {
          cwd: ctx.releaseDir,
          env,
          logFile: ctx.logFile,
          label: 'pip install',
          timeoutMs: ctx.timeoutMs,
        });
      } finally {
        await scratch.cleanup();
      }
    },
  };
}
