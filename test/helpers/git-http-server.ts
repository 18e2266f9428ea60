import {spawn} from 'node:child_process';
import http from 'node:http';
import type {AddressInfo} from 'node:net';

/** One request the server answered, for tests that check what went over the wire. */
export type GitRequestLog = {method: string; path: string; status: number; bytesOut: number};

export type GitHttpServer = {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  /** URL of the repository at `name` under the project root (e.g. "app.git"). */
  repoUrl(name: string): string;
  requests: GitRequestLog[];
  close(): Promise<void>;
};

export type GitHttpServerOptions = {
  /** Directory whose bare repositories are served. */
  projectRoot: string;
  /** Require HTTP Basic auth with these credentials. */
  auth?: {username: string; password: string};
  /** Allow pushes (sets REMOTE_USER; the repo also needs http.receivepack=true). */
  allowPush?: boolean;
  /** Cut every upload-pack (fetch) response after this many bytes and drop the connection. */
  truncateUploadPackAt?: number;
  /** Send upload-pack response headers, then nothing more (a stalled server). */
  stallUploadPack?: boolean;
  /** Called before git answers: return true when the hook has answered the request itself. */
  intercept?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>;
};

/**
 * A real git smart-HTTP server: `git http-backend` run as CGI behind `node:http` on 127.0.0.1,
 * port 0. Native git and isomorphic-git both fetch from it.
 */
export async function startGitHttpServer(options: GitHttpServerOptions): Promise<GitHttpServer> {
  const requests: GitRequestLog[] = [];
  const server = http.createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, {'content-type': 'text/plain'});
      res.end(String(error));
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (options.intercept && (await options.intercept(req, res))) return;
    if (options.auth && !authorized(req, options.auth)) {
      req.resume();
      res.writeHead(401, {'www-authenticate': 'Basic realm="git"', 'content-type': 'text/plain'});
      res.end('authentication required\n');
      requests.push({method: req.method ?? 'GET', path: url.pathname, status: 401, bytesOut: 0});
      return;
    }
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: options.projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      GIT_CONFIG_NOSYSTEM: '1',
      HOME: options.projectRoot,
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.replace(/^\?/, ''),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: '127.0.0.1',
      ...(req.headers['content-length'] ? {CONTENT_LENGTH: req.headers['content-length']} : {}),
      ...(req.headers['content-encoding']
        ? {HTTP_CONTENT_ENCODING: req.headers['content-encoding']}
        : {}),
      ...(req.headers['git-protocol'] ? {GIT_PROTOCOL: String(req.headers['git-protocol'])} : {}),
      ...(options.allowPush ? {REMOTE_USER: options.auth?.username ?? 'tester'} : {}),
    };
    const child = spawn('git', ['http-backend'], {env, stdio: ['pipe', 'pipe', 'pipe']});
    req.pipe(child.stdin);
    child.stderr.resume();
    let header = Buffer.alloc(0);
    let headersDone = false;
    let bytesOut = 0;
    let status = 200;
    const uploadPack = req.method === 'POST' && url.pathname.endsWith('/git-upload-pack');
    const forward = (chunk: Buffer) => {
      if (uploadPack && options.stallUploadPack) return;
      const limit = uploadPack ? options.truncateUploadPackAt : undefined;
      if (limit !== undefined && bytesOut + chunk.length > limit) {
        res.write(chunk.subarray(0, Math.max(0, limit - bytesOut)));
        bytesOut = limit;
        res.socket?.destroy();
        child.kill();
        return;
      }
      bytesOut += chunk.length;
      res.write(chunk);
    };
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        forward(chunk);
        return;
      }
      header = Buffer.concat([header, chunk]);
      const end = header.indexOf('\r\n\r\n');
      if (end === -1) return;
      const lines = header.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon === -1) continue;
        const key = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (key.toLowerCase() === 'status') status = Number.parseInt(value, 10);
        else headers[key] = value;
      }
      res.writeHead(status, headers);
      headersDone = true;
      forward(header.subarray(end + 4));
    });
    await new Promise<void>(resolve => {
      child.on('close', () => {
        if (!headersDone) res.writeHead(502);
        // A stalled server keeps the response open: nothing more, and no end either.
        if (!(uploadPack && options.stallUploadPack)) res.end();
        requests.push({method: req.method ?? 'GET', path: url.pathname, status, bytesOut});
        resolve();
      });
    });
  }

  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const {port} = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  return {
    url: base,
    repoUrl: name => `${base}/${name}`,
    requests,
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

function authorized(
  req: http.IncomingMessage,
  auth: {username: string; password: string},
): boolean {
  const header = req.headers.authorization ?? '';
  const match = /^Basic (.+)$/.exec(header);
  if (!match?.[1]) return false;
  return Buffer.from(match[1], 'base64').toString() === `${auth.username}:${auth.password}`;
}
