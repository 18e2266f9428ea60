import {createHash} from 'node:crypto';
import {promises as fsp} from 'node:fs';
import http from 'node:http';
import type {AddressInfo} from 'node:net';
import path from 'node:path';
import {normalizePypiName} from '../../lib/vendor-manifest.js';

export type PypiIndex = {url: string; requests: string[]; close(): Promise<void>};

/**
 * A PEP 503 "simple" index over the wheels and sdists in `filesDir`, served on 127.0.0.1:
 * `/simple/<project>/` lists the project's files with `#sha256=` fragments; `/files/<name>` serves them.
 */
export async function startPypiIndex(filesDir: string): Promise<PypiIndex> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      requests.push(url.pathname);
      const page = /^\/simple\/([^/]+)\/$/.exec(url.pathname);
      if (page) {
        const project = normalizePypiName(decodeURIComponent(page[1] ?? ''));
        const names = (await fsp.readdir(filesDir))
          .filter(f => normalizePypiName(f.split('-')[0] ?? '') === project)
          .sort();
        if (names.length === 0) {
          res.writeHead(404).end();
          return;
        }
        const links = await Promise.all(
          names.map(async f => {
            const hash = createHash('sha256')
              .update(await fsp.readFile(path.join(filesDir, f)))
              .digest('hex');
            return `<a href="../../files/${encodeURIComponent(f)}#sha256=${hash}">${f}</a><br/>`;
          }),
        );
        res.writeHead(200, {'content-type': 'text/html'});
        res.end(
          `<!DOCTYPE html><html><body><h1>Links for ${project}</h1>\n${links.join('\n')}\n</body></html>`,
        );
        return;
      }
      const file = /^\/files\/([^/]+)$/.exec(url.pathname);
      if (file) {
        try {
          const data = await fsp.readFile(path.join(filesDir, decodeURIComponent(file[1] ?? '')));
          res.writeHead(200, {'content-type': 'application/octet-stream'});
          res.end(data);
          return;
        } catch {
          // fall through to 404
        }
      }
      res.writeHead(404).end();
    })();
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/simple/`,
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
