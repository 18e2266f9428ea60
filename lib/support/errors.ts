import {redact} from './redact.js';

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
  resource: 13,
  signature: 14,
  internal: 70,
  /** 128 + the signal's number, as a shell reports a process ended by it. */
  sigint: 130,
  sigterm: 143,
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

/** A path `deploy.json` names is not a plain path inside the release (exit 3, as any config error). */
export class ReleasePathError extends ConfigError {
  override name = 'ReleasePathError';
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

/** What a server said while refusing or failing a fetch, in its own words. */
export class ServerRefusal extends SourceError {
  override name = 'ServerRefusal';
  readonly serverWords: string;

  constructor(words: string, url: string) {
    // What a server sends is printed: no control characters from it reach a terminal.
    // eslint-disable-next-line no-control-regex -- control characters are exactly what is removed
    const clean = redact(words.replace(/[\x00-\x1f\x7f]+/g, ' ').trim());
    super(
      `Could not fetch from ${redact(url)}; the server said: ${clean}`,
      'Fix what the server names (its logs have the rest), or ask its administrator.',
    );
    this.serverWords = clean;
  }
}

/** Content failed a safety or integrity check (hostile tree entry, hash mismatch). */
export class IntegrityError extends DeployError {
  override readonly exitCode = ExitCode.integrity;
  override readonly code = 'EINTEGRITY';
  override name = 'IntegrityError';
}

/** The health check failed after the switch. */
export class HealthcheckError extends DeployError {
  override readonly exitCode = ExitCode.healthcheck;
  override readonly code = 'EHEALTH';
  override name = 'HealthcheckError';
}

/** The GitHub API refused or failed. */
export class GithubError extends DeployError {
  override readonly exitCode = ExitCode.github;
  override readonly code = 'EGITHUB';
  override name = 'GithubError';
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

/**
 * The run was stopped by SIGINT or SIGTERM: what it had started was stopped, the release it was
 * building marked failed; it exits 128 + the signal's number.
 */
export class InterruptedError extends DeployError {
  override readonly exitCode: ExitCodeValue;
  override readonly code = 'EINTERRUPTED';
  override name = 'InterruptedError';

  constructor(
    readonly signal: 'SIGINT' | 'SIGTERM',
    during?: string,
  ) {
    super(
      `interrupted by ${signal}${during ? ` during ${during}` : ''}.`,
      'What it had started was stopped and the release it was building marked failed; current is unchanged. Deploy again when ready.',
    );
    this.exitCode = signal === 'SIGINT' ? ExitCode.sigint : ExitCode.sigterm;
  }
}

/** The node itself ran out of something, or refused access to its own files (ENOSPC, EACCES...). */
export class ResourceError extends DeployError {
  override readonly exitCode = ExitCode.resource;
  override readonly code = 'ERESOURCE';
  override name = 'ResourceError';
}

/**
 * A commit or tag the node's signing policy does not cover: unsigned, signed by an unknown key, a
 * bad signature, or a key not allowed for that repository, committer or time. Nothing was written.
 */
export class SignatureError extends DeployError {
  override readonly exitCode = ExitCode.signature;
  override readonly code = 'ESIGNATURE';
  override name = 'SignatureError';

  constructor(
    message: string,
    readonly reason:
      'unsigned' | 'unknown-key' | 'bad-signature' | 'not-allowed' | 'wrong-principal' | 'expired',
    hint?: string,
    options?: ErrorOptions,
  ) {
    super(message, hint, options);
  }
}

const RESOURCE_ERRNOS: Record<string, {what: string; hint: string}> = {
  ENOSPC: {
    what: 'no space left on the device',
    hint: 'Free space (or inodes: df -i) on that file system, then run again',
  },
  EDQUOT: {what: 'disk quota exceeded', hint: 'Raise the quota or free space, then run again'},
  EROFS: {what: 'the file system is read-only', hint: 'Remount it read-write, then run again'},
  EACCES: {
    what: 'permission denied',
    hint: 'Run as the user that owns the deploy root, or fix the ownership of that path',
  },
  EPERM: {
    what: 'operation not permitted',
    hint: 'Run as the user that owns the deploy root, or fix the ownership or attributes of that path',
  },
  EMFILE: {
    what: 'too many open files in this process',
    hint: 'Raise the open-file limit (ulimit -n), then run again',
  },
  ENFILE: {
    what: 'too many open files on the system',
    hint: 'Raise fs.file-max or stop what holds the files, then run again',
  },
  EIO: {what: 'an I/O error from the device', hint: 'Check the disk (dmesg), then run again'},
};

/**
 * A system error that says the node is out of space, quota, file handles or permission becomes a
 * {@link ResourceError} naming the path and what to do; anything else is returned unchanged.
 */
export function asDeployError(error: unknown): unknown {
  if (error instanceof DeployError) return error;
  const code = errnoCode(error);
  const known = code ? RESOURCE_ERRNOS[code] : undefined;
  if (!known || !(error instanceof Error)) return error;
  const {path: where, dest, syscall} = error as NodeJS.ErrnoException & {dest?: string};
  // symlink(2) and rename(2) report the new name as `dest`: that is the path that failed.
  const on = dest ?? where;
  return new ResourceError(
    `${known.what} (${code ?? ''}${syscall ? ` in ${syscall}` : ''}${on ? ` on ${on}` : ''}).`,
    `${known.hint}.`,
    {cause: error},
  );
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
