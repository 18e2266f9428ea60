import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {DeployError, InstallError} from '../support/errors.js';

/** Where `deploy check` keeps the install log of a failed install: in the directory it ran in. */
export const CHECK_INSTALL_LOG = 'repodeploy-check-install.log';

/**
 * The install failure with its log kept. The check installs into a scratch directory it removes
 * when it ends, so the hint "the full output is in <scratch>/…/install.log" named a file already
 * gone; the log is copied to the working directory (a CI workspace, where a later step can upload
 * it) and the hint names the copy.
 */
export async function keepInstallLog(
  error: DeployError,
  logFile: string,
  cwd: string,
): Promise<DeployError> {
  // Only a failure whose hint points at the log: others (a missing vendor tree) have no log.
  if (!error.hint?.includes(logFile)) return error;
  const kept = path.resolve(cwd, CHECK_INSTALL_LOG);
  const copied = await fsp.copyFile(logFile, kept).then(
    () => true,
    () => false,
  );
  const hint = copied
    ? error.hint.replace(logFile, kept)
    : `The log could not be copied to ${kept}; the last lines above are all that is kept.`;
  return new InstallError(error.message, hint, {cause: error});
}
