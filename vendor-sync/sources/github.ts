import {retry} from '@octokit/plugin-retry';
import {throttling} from '@octokit/plugin-throttling';
import {Octokit} from '@octokit/rest';
import type {GithubAsset} from '../../lib/deploy-config.js';
import {DeployError, ExitCode} from '../../lib/errors.js';

/** The GitHub API refused or failed. */
export class GithubError extends DeployError {
  override readonly exitCode = ExitCode.github;
  override readonly code = 'EGITHUB';
  override name = 'GithubError';
}

const RetryingOctokit = Octokit.plugin(retry, throttling);
export type GithubClient = InstanceType<typeof RetryingOctokit>;

/**
 * An Octokit for `apiUrl` (GitHub Enterprise or a test server) that retries 5xx and waits out
 * rate limits (Retry-After, x-ratelimit-reset) a bounded number of times.
 */
export function githubClient(options: {
  apiUrl: string;
  token: string | undefined;
  maxRetries?: number;
}): GithubClient {
  const maxRetries = options.maxRetries ?? 3;
  return new RetryingOctokit({
    baseUrl: options.apiUrl.replace(/\/$/, ''),
    ...(options.token ? {auth: options.token} : {}),
    userAgent: 'repodeploy-vendor-sync',
    log: {
      debug: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined,
    },
    retry: {retries: maxRetries},
    throttle: {
      onRateLimit: (_after: number, _opts: unknown, _o: unknown, retryCount: number) =>
        retryCount < maxRetries,
      onSecondaryRateLimit: (_after: number, _opts: unknown, _o: unknown, retryCount: number) =>
        retryCount < maxRetries,
    },
  });
}

export function splitRepo(repo: string): {owner: string; repo: string} {
  const [owner = '', name = ''] = repo.split('/');
  return {owner, repo: name};
}

/** The API URL that serves an asset's bytes (answering with a redirect to the storage host). */
export async function assetDownloadUrl(client: GithubClient, asset: GithubAsset): Promise<string> {
  try {
    const {data: release} = await client.rest.repos.getReleaseByTag({
      ...splitRepo(asset.repo),
      tag: asset.tag,
    });
    const found = release.assets.find(a => a.name === asset.name);
    if (!found) {
      throw new GithubError(
        `Release ${asset.tag} of ${asset.repo} has no asset named ${asset.name} (it has: ${release.assets.map(a => a.name).join(', ') || 'none'}).`,
        'Fix "assets" in deploy.json.',
      );
    }
    return found.url;
  } catch (error) {
    throw githubError(error, `read release ${asset.tag} of ${asset.repo}`);
  }
}

export async function latestRelease(
  client: GithubClient,
  repo: string,
): Promise<string | undefined> {
  try {
    const {data} = await client.rest.repos.getLatestRelease(splitRepo(repo));
    return data.tag_name;
  } catch (error) {
    if ((error as {status?: number}).status === 404) return undefined;
    throw githubError(error, `read the latest release of ${repo}`);
  }
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
