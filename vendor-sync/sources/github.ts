import type {GithubAsset} from '../../lib/deploy-config.js';
import {GithubError, githubError, splitRepo, type GithubClient} from '../../lib/github.js';

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
