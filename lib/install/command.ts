import type {CommandInstallSettings} from '../pins/deploy-config.js';
import {runLogged} from '../node/run-logged.js';
import {hermeticEnv, makeScratch} from './run.js';
import type {Installer} from './types.js';

/**
 * The command installer: the app's own argv, run in the release directory without a shell, with
 * RELEASE_DIR and VENDOR_DIR set. What it installs is the app's business; what it inherits is not:
 * it gets the same clean environment as the npm and pip installers.
 */
export function commandInstaller(settings: CommandInstallSettings): Installer {
  return {
    kind: 'command',
    describe: settings.command.join(' '),
    verify: () => Promise.resolve([]),
    async install(ctx) {
      const scratch = await makeScratch('repodeploy-cmd-', ctx.scratchDir);
      try {
        const [command, ...args] = settings.command as [string, ...string[]];
        const env = hermeticEnv(ctx.env, scratch.home, {
          ...settings.env,
          RELEASE_DIR: ctx.releaseDir,
          ...(ctx.vendorDir ? {VENDOR_DIR: ctx.vendorDir} : {}),
        });
        await runLogged(command, args, {
          cwd: ctx.releaseDir,
          env,
          logFile: ctx.logFile,
          label: `install command "${settings.command.join(' ')}"`,
          timeoutMs: ctx.timeoutMs,
        });
      } finally {
        await scratch.cleanup();
      }
    },
  };
}
