/**
 * The failures a user must tell apart, each with its own exit code.
 * `docs/exit-codes.md` documents them; `main()` is the only place that prints them.
 */

export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  config: 3,
  rev: 4,
  source: 5,
  integrity: 6,
  lock: 7,
  install: 8,
  healthcheck: 9,
  github: 10,
  notDeployable: 11,
  couldNotCheck: 12,
  internal: 70,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Base class: a message saying what failed, and a hint saying what to do next. */
export class DeployError extends Error {
  readonly exitCode: ExitCodeValue = ExitCode.failure;
  readonly code: string = 'EDEPLOY';
  override name = 'DeployError';

  constructor(
    message: string,
    readonly hint?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The command line or an option value is wrong. */
export class UsageError extends DeployError {
  override readonly exitCode = ExitCode.usage;
  override readonly code = 'EUSAGE';
  override name = 'UsageError';
}

/** `deploy.json`, the node's settings or the root layout is invalid. */
export class ConfigError extends DeployError {
  override readonly exitCode = ExitCode.config;
  override readonly code = 'ECONFIG';
  override name = 'ConfigError';
}

/** A rev does not name exactly one commit. */
export class RevError extends DeployError {
  override readonly exitCode = ExitCode.rev;
  override readonly code = 'EREV';
  override name = 'RevError';
}

/** A repository could not be read or fetched (network, auth, missing objects). */
export class SourceError extends DeployError {
  override readonly exitCode = ExitCode.source;
  override readonly code = 'ESOURCE';
  override name = 'SourceError';
}

/** Content failed a safety or integrity check (hostile tree entry, hash mismatch). */
export class IntegrityError extends DeployError {
  override readonly exitCode = ExitCode.integrity;
  override readonly code = 'EINTEGRITY';
  override name = 'IntegrityError';
}

/** Another run holds the root's lock. */
export class LockError extends DeployError {
  override readonly exitCode = ExitCode.lock;
  override readonly code = 'ELOCKED';
  override name = 'LockError';
}

/** The installer failed. */
export class InstallError extends DeployError {
  override readonly exitCode = ExitCode.install;
  override readonly code = 'EINSTALL';
  override name = 'InstallError';
}

/** The best short description of an unknown thrown value. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** The `code` property of a Node.js system error, if any. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = error.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
