import http from 'node:http';
import type {AddressInfo} from 'node:net';

/** What a test puts on the fake GitHub: releases with assets, and the pull requests made. */
export type FakeRelease = {
  tag: string;
  assets: Array<{name: string; data: Buffer}>;
  publishedAt?: string;
};

export type PullRequest = {
  number: number;
  head: string;
  base: string;
  title: string;
  body: string;
  state: 'open' | 'closed';
};

export type CommitStatus = {
  sha: string;
  state: string;
  context: string;
  description: string;
  target_url?: string;
};

/**
 * What a token may do. `read`: as the GITHUB_TOKEN of a workflow run for a pull request from a
 * fork, reads work and every write answers 403 "Resource not accessible by integration".
 * `repos`: the repositories the token can see; GitHub answers 404 for any other.
 */
export type TokenAccess = {access: 'write' | 'read'; repos?: string[]};

export type FakeGithub = {
  apiUrl: string;
  releases: Map<string, FakeRelease[]>;
  pulls: Map<string, PullRequest[]>;
  statuses: Map<string, CommitStatus[]>;
  /** Every request: method, path, and whether it carried an Authorization header. */
  requests: Array<{method: string; path: string; authorized: boolean; host: 'api' | 'storage'}>;
  /** Answer the next N API requests with a rate-limit refusal (403 + x-ratelimit-reset, or 429 + Retry-After). */
  rateLimitNext(count: number, kind: '403' | '429'): void;
  close(): Promise<void>;
};

/**
 * A local server answering the GitHub REST endpoints vendor-sync uses, in GitHub's documented
 * response shapes (releases by tag, latest release, release assets with the 302 to a storage host
 * on another origin, pulls list/create/update). Octokit talks to it through `baseUrl`.
 */
export async function startFakeGithub(
  options: {token?: string; tokens?: Record<string, TokenAccess>} = {},
): Promise<FakeGithub> {
  const releases = new Map<string, FakeRelease[]>();
  const pulls = new Map<string, PullRequest[]>();
  const statuses = new Map<string, CommitStatus[]>();
  const requests: FakeGithub['requests'] = [];
  let rateLimited = 0;
  let rateKind: '403' | '429' = '429';
  let nextPr = 1;

  const storage = http.createServer((req, res) => {
    requests.push({
      method: req.method ?? 'GET',
      path: req.url ?? '',
      authorized: Boolean(req.headers.authorization),
      host: 'storage',
    });
    const match = /^\/assets\/([^/]+)\/(\d+)\/(\d+)$/.exec(req.url ?? '');
    const [, key, releaseIndex, assetIndex] = match ?? [];
    const asset = releases.get(decodeURIComponent(key ?? ''))?.[Number(releaseIndex)]?.assets[
      Number(assetIndex)
    ];
    if (!asset) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': asset.data.length,
      // A hostile storage host: file names must come from deploy.json, never from this header.
      'content-disposition': `attachment; filename="../../escaped-${asset.name}"`,
    });
    res.end(asset.data);
  });
  await new Promise<void>(resolve => storage.listen(0, '127.0.0.1', resolve));
  const storageUrl = `http://127.0.0.1:${(storage.address() as AddressInfo).port}`;

  const api = http.createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body =
        chunks.length > 0
          ? (JSON.parse(Buffer.concat(chunks).toString()) as Record<string, string>)
          : {};
      const url = new URL(req.url ?? '/', apiUrl);
      requests.push({
        method: req.method ?? 'GET',
        path: url.pathname + url.search,
        authorized: Boolean(req.headers.authorization),
        host: 'api',
      });
      const json = (status: number, data: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, {
          'content-type': 'application/json; charset=utf-8',
          'x-ratelimit-remaining': '4999',
          ...headers,
        });
        res.end(JSON.stringify(data));
      };
      if (rateLimited > 0) {
        rateLimited--;
        if (rateKind === '429') json(429, {message: 'Too many requests'}, {'retry-after': '1'});
        else {
          json(
            403,
            {
              message: 'API rate limit exceeded',
              documentation_url:
                'https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting',
            },
            {
              'x-ratelimit-remaining': '0',
              'x-ratelimit-limit': '60',
              'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + 1),
            },
          );
        }
        return;
      }
      const presented = /^token (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const access: TokenAccess | undefined =
        presented === undefined
          ? undefined
          : presented === options.token
            ? {access: 'write'}
            : options.tokens?.[presented];
      if ((options.token || options.tokens) && !access) {
        json(401, {message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest'});
        return;
      }
      const repoMatch = /^\/repos\/([^/]+)\/([^/]+)(\/.*)$/.exec(url.pathname);
      if (!repoMatch) {
        json(404, {message: 'Not Found'});
        return;
      }
      const [, owner = '', name = '', rest = ''] = repoMatch;
      const key = `${owner}/${name}`;
      const refusal = refuse(access, key, req.method ?? 'GET', rest);
      if (refusal) {
        json(refusal.status, refusal.body);
        return;
      }
      const list = releases.get(key) ?? [];
      const releaseJson = (release: FakeRelease, index: number) => ({
        url: `${apiUrl}/repos/${key}/releases/${index + 1}`,
        html_url: `https://github.com/${key}/releases/tag/${release.tag}`,
        id: index + 1,
        tag_name: release.tag,
        name: release.tag,
        draft: false,
        prerelease: false,
        created_at: release.publishedAt ?? '2026-01-01T00:00:00Z',
        published_at: release.publishedAt ?? '2026-01-01T00:00:00Z',
        assets: release.assets.map((asset, assetIndex) => ({
          url: `${apiUrl}/repos/${key}/releases/assets/${(index + 1) * 1000 + assetIndex}`,
          browser_download_url: `https://github.com/${key}/releases/download/${release.tag}/${asset.name}`,
          id: (index + 1) * 1000 + assetIndex,
          name: asset.name,
          label: '',
          state: 'uploaded',
          content_type: 'application/octet-stream',
          size: asset.data.length,
          download_count: 0,
          created_at: '2026-01-01T00:00:00Z',
          updated_at: '2026-01-01T00:00:00Z',
        })),
      });
      let m: RegExpExecArray | null;
      if (req.method === 'GET' && (m = /^\/releases\/tags\/(.+)$/.exec(rest))) {
        const index = list.findIndex(r => r.tag === decodeURIComponent(m?.[1] ?? ''));
        if (index === -1) json(404, {message: 'Not Found'});
        else json(200, releaseJson(list[index] as FakeRelease, index));
        return;
      }
      if (req.method === 'GET' && rest === '/releases/latest') {
        const index = list.length - 1;
        if (index < 0) json(404, {message: 'Not Found'});
        else json(200, releaseJson(list[index] as FakeRelease, index));
        return;
      }
      if (req.method === 'GET' && (m = /^\/releases\/assets\/(\d+)$/.exec(rest))) {
        const id = Number(m[1]);
        const releaseIndex = Math.floor(id / 1000) - 1;
        const assetIndex = id % 1000;
        if (!list[releaseIndex]?.assets[assetIndex]) {
          json(404, {message: 'Not Found'});
          return;
        }
        if (req.headers.accept !== 'application/octet-stream') {
          json(200, releaseJson(list[releaseIndex], releaseIndex).assets[assetIndex]);
          return;
        }
        // As GitHub does: a redirect to a storage host on another origin.
        res.writeHead(302, {
          location: `${storageUrl}/assets/${encodeURIComponent(key)}/${releaseIndex}/${assetIndex}`,
        });
        res.end();
        return;
      }
      if (req.method === 'POST' && (m = /^\/statuses\/([0-9a-f]{40})$/.exec(rest))) {
        if (!['error', 'failure', 'pending', 'success'].includes(body.state ?? '')) {
          json(422, {message: 'Validation Failed'});
          return;
        }
        const status: CommitStatus = {
          sha: m[1] ?? '',
          state: body.state ?? '',
          context: body.context ?? 'default',
          description: body.description ?? '',
          ...(body.target_url ? {target_url: body.target_url} : {}),
        };
        statuses.set(key, [...(statuses.get(key) ?? []), status]);
        json(201, {
          url: `${apiUrl}/repos/${key}/statuses/${status.sha}`,
          id: statuses.get(key)?.length ?? 1,
          state: status.state,
          description: status.description,
          target_url: status.target_url ?? null,
          context: status.context,
          created_at: '2026-01-01T00:00:00Z',
          updated_at: '2026-01-01T00:00:00Z',
        });
        return;
      }
      const prs = pulls.get(key) ?? [];
      pulls.set(key, prs);
      const prJson = (pr: PullRequest) => ({
        url: `${apiUrl}/repos/${key}/pulls/${pr.number}`,
        html_url: `https://github.com/${key}/pull/${pr.number}`,
        number: pr.number,
        state: pr.state,
        title: pr.title,
        body: pr.body,
        head: {ref: pr.head, label: `${owner}:${pr.head}`, sha: '0'.repeat(40)},
        base: {ref: pr.base, label: `${owner}:${pr.base}`, sha: '0'.repeat(40)},
      });
      if (req.method === 'GET' && rest === '/pulls') {
        const state = url.searchParams.get('state') ?? 'open';
        const head = url.searchParams.get('head');
        json(
          200,
          prs
            .filter(
              pr =>
                (state === 'all' || pr.state === state) &&
                (!head || `${owner}:${pr.head}` === head),
            )
            .map(prJson),
        );
        return;
      }
      if (req.method === 'POST' && rest === '/pulls') {
        if (prs.some(pr => pr.state === 'open' && pr.head === body.head)) {
          json(422, {
            message: 'Validation Failed',
            errors: [
              {
                resource: 'PullRequest',
                code: 'custom',
                message: `A pull request already exists for ${owner}:${body.head}.`,
              },
            ],
          });
          return;
        }
        const pr: PullRequest = {
          number: nextPr++,
          head: body.head ?? '',
          base: body.base ?? '',
          title: body.title ?? '',
          body: body.body ?? '',
          state: 'open',
        };
        prs.push(pr);
        json(201, prJson(pr));
        return;
      }
      if (req.method === 'PATCH' && (m = /^\/pulls\/(\d+)$/.exec(rest))) {
        const pr = prs.find(p => p.number === Number(m?.[1]));
        if (!pr) {
          json(404, {message: 'Not Found'});
          return;
        }
        if (body.title !== undefined) pr.title = body.title;
        if (body.body !== undefined) pr.body = body.body;
        json(200, prJson(pr));
        return;
      }
      json(404, {message: 'Not Found'});
    })();
  });
  await new Promise<void>(resolve => api.listen(0, '127.0.0.1', resolve));
  const apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  return {
    apiUrl,
    releases,
    pulls,
    statuses,
    requests,
    rateLimitNext(count, kind) {
      rateLimited = count;
      rateKind = kind;
    },
    close: async () => {
      for (const server of [api, storage]) {
        server.closeAllConnections();
        await new Promise<void>(resolve =>
          server.close(() => {
            resolve();
          }),
        );
      }
    },
  };
}

/** GitHub's documented answer when a token may not see a repository, or may not write to it. */
function refuse(
  access: TokenAccess | undefined,
  repo: string,
  method: string,
  rest: string,
): {status: number; body: Record<string, string>} | undefined {
  if (!access) return undefined;
  const documentation_url = rest.startsWith('/statuses/')
    ? 'https://docs.github.com/rest/commits/statuses#create-a-commit-status'
    : 'https://docs.github.com/rest';
  if (access.repos && !access.repos.includes(repo))
    return {status: 404, body: {message: 'Not Found', documentation_url, status: '404'}};
  if (access.access === 'read' && method !== 'GET' && method !== 'HEAD') {
    return {
      status: 403,
      body: {message: 'Resource not accessible by integration', documentation_url, status: '403'},
    };
  }
  return undefined;
}
