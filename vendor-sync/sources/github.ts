import type {GithubAsset} from '../../lib/pins/deploy-config.js';
import {GithubError} from '../../lib/support/errors.js';
import {githubError, splitRepo, type GithubClient} from '../../lib/http/github.js';

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
    // The token goes with this request: only to the API's own origin, whatever the answer says.
    const api = new URL(client.request.endpoint.DEFAULTS.baseUrl);
    if (new URL(found.url).origin !== api.origin) {
      throw new GithubError(
        `The GitHub API named an asset URL on another origin (${new URL(found.url).origin}, not ${api.origin}) for ${asset.repo} ${asset.tag} ${asset.name}; the token is not sent there.`,
        'Check --github-api-url: it must be the API that serves the release.',
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
