import {Octokit} from '@octokit/rest';
import {DeployError, GithubError} from '../support/errors.js';
import {TOOL_NAME, TOOL_VERSION} from '../support/version.js';
import {realSleep, retryDelayForStatus, withRetries} from './retry.js';

export type GithubClient = Octokit;

/**
 * An Octokit for `apiUrl` (GitHub Enterprise or a test server). 5xx answers are retried with
 * backoff, and rate limits (429 / 403 with Retry-After or x-ratelimit-reset) are waited out, a
 * bounded number of times and never longer than `maxWaitMs` each: the same policy as downloads.
 */
export function githubClient(options: {
  apiUrl: string;
  token: string | undefined;
  attempts?: number;
  maxWaitMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** How the client names itself; default: repodeploy/VERSION. */
  userAgent?: string;
  /** The fetch Octokit uses (one that goes through the configured proxy); default: Node's. */
  fetch?: typeof fetch;
}): GithubClient {
  const client = new Octokit({
    baseUrl: options.apiUrl.replace(/\/$/, ''),
    ...(options.token ? {auth: options.token} : {}),
    userAgent: options.userAgent ?? `${TOOL_NAME}/${TOOL_VERSION}`,
    ...(options.fetch ? {request: {fetch: options.fetch}} : {}),
    log: {
      debug: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined,
    },
  });
  const policy = {
    attempts: options.attempts ?? 4,
    maxWaitMs: options.maxWaitMs ?? 120_000,
    sleep: options.sleep ?? realSleep,
    delay: statusDelay,
    subject: 'GitHub (rate limit)',
    hint: 'Run again later, or set GITHUB_TOKEN for a higher rate limit.',
    giveUp: GithubError,
  };
  client.hook.wrap('request', (request, requestOptions) =>
    withRetries(policy, async () => request(requestOptions)),
  );
  return client;
}

/** An API answer worth retrying (5xx, a rate limit): how long to wait. Network errors are final. */
function statusDelay(error: unknown, attempt: number): number | undefined {
  const {status, response} = error as {
    status?: number;
    response?: {headers?: Record<string, string | undefined>};
  };
  if (status === undefined) return undefined;
  return retryDelayForStatus(status, name => response?.headers?.[name], attempt, 500);
}

export function splitRepo(repo: string): {owner: string; repo: string} {
  const [owner = '', name = ''] = repo.split('/');
  return {owner, repo: name};
}

export function githubError(error: unknown, action: string): unknown {
  if (error instanceof DeployError) return error;
  const status = (error as {status?: number}).status;
  if (status === undefined) return error;
  return new GithubError(
    `GitHub refused to ${action}: HTTP ${status}.`,
    status === 401 || status === 403
      ? 'Check GITHUB_TOKEN (or GH_TOKEN): it must be valid and allowed to do this.'
      : status === 404
        ? 'Check the repository and the name; a private repository needs a token.'
        : 'Try again later.',
    {cause: error},
  );
}
