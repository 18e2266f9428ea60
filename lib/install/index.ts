import type {InstallSettings} from '../pins/deploy-config.js';
import {commandInstaller} from './command.js';
import {npmInstaller} from './npm.js';
import {pipInstaller} from './pip.js';
import {pnpmInstaller} from './pnpm.js';
import {yarnInstaller} from './yarn.js';
import {pythonLockInstaller} from './python-lock.js';
import type {Installer} from './types.js';

export type {InstallContext, Installer, VerifiedArtifact} from './types.js';

/** The installer for a release's `deploy.json` `install` settings. */
export function createInstaller(settings: InstallSettings): Installer {
  switch (settings.type) {
    case 'npm':
      return npmInstaller(settings);
    case 'pnpm':
      return pnpmInstaller(settings);
    case 'yarn':
      return yarnInstaller(settings);
    case 'pip':
      return pipInstaller(settings);
    case 'uv':
    case 'poetry':
      return pythonLockInstaller(settings);
    case 'command':
      return commandInstaller(settings);
  }
}
