import {createHash} from 'node:crypto';
import {promises as fsp} from 'node:fs';
import http from 'node:http';
import type {AddressInfo} from 'node:net';
import path from 'node:path';
import {normalizePypiName} from '../../lib/pins/vendor-manifest.js';

/** What the index says about one file besides its name and hash (PEP 592, PEP 503). */
export type FileMeta = {yanked?: true | string; requiresPython?: string};

export type PypiIndexOptions = {
  /**
   * `html`: a PEP 503 index that answers HTML whatever is asked (a static directory, an older
   * mirror); `json`: PEP 691 JSON only, 406 to a client that does not accept it; `both`: content
   * negotiation as PyPI does it. Default `html`.
   */
  format?: 'html' | 'json' | 'both';
  /** By file name; read on every request, so a test may change it while the index runs. */
  meta?: Record<string, FileMeta>;
};

export type PypiIndex = {
  url: string;
  /** The path of every request. */
  requests: string[];
  /** The Accept header of every project page request, and the type answered. */
  pages: Array<{accept: string; answered: string}>;
  close(): Promise<void>;
};

const JSON_TYPE = 'application/vnd.pypi.simple.v1+json';
const HTML_TYPE = 'application/vnd.pypi.simple.v1+html';

type IndexFile = {filename: string; sha256: string; meta: FileMeta};

/**
 * A "simple" index over the wheels and sdists in `filesDir`, served on 127.0.0.1:
 * `/simple/<project>/` lists the project's files, `/files/<name>?dl=1&src=simple` serves one.
 *
 * The HTML is shaped as real indexes write it: PyPI's template (double quotes, `&gt;=` in
 * `data-requires-python`, `data-yanked` with or without a reason) alternates with the other
 * common style (single quotes, numeric entities such as `&#x26;`, attributes in another order).
 * A download URL carries a query the server checks, as signed download URLs do, so a URL decoded
 * wrongly from the page is refused.
 */
export async function startPypiIndex(
  filesDir: string,
  options: PypiIndexOptions = {},
): Promise<PypiIndex> {
  const requests: string[] = [];
  const pages: PypiIndex['pages'] = [];
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      requests.push(url.pathname);
      const page = /^\/simple\/([^/]+)\/$/.exec(url.pathname);
      if (page) {
        const files = await projectFiles(filesDir, decodeURIComponent(page[1] ?? ''), options);
        const answered = answerPage(req, res, files, options.format ?? 'html');
        pages.push({accept: req.headers.accept ?? '', answered});
        return;
      }
      const file = /^\/files\/([^/]+)$/.exec(url.pathname);
      if (file && url.searchParams.get('src') === 'simple' && url.searchParams.get('dl') === '1') {
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
    pages,
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

async function projectFiles(
  filesDir: string,
  requested: string,
  options: PypiIndexOptions,
): Promise<IndexFile[]> {
  const project = normalizePypiName(requested);
  const names = (await fsp.readdir(filesDir))
    .filter(f => normalizePypiName(f.split('-')[0] ?? '') === project)
    .sort();
  return Promise.all(
    names.map(async filename => ({
      filename,
      sha256: createHash('sha256')
        .update(await fsp.readFile(path.join(filesDir, filename)))
        .digest('hex'),
      meta: options.meta?.[filename] ?? {},
    })),
  );
}

/** Answer a project page in the form the client asked for and this index serves. */
function answerPage(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  files: IndexFile[],
  format: 'html' | 'json' | 'both',
): string {
  if (files.length === 0) {
    res.writeHead(404, {'content-type': 'text/plain'}).end('Not Found');
    return '404';
  }
  const accept = req.headers.accept ?? '';
  const wantsJson = accept.includes(JSON_TYPE);
  if (format === 'json' || (format === 'both' && wantsJson)) {
    if (!wantsJson) {
      res.writeHead(406, {'content-type': 'text/plain'}).end(`Only ${JSON_TYPE} is served.`);
      return '406';
    }
    res.writeHead(200, {'content-type': JSON_TYPE, vary: 'Accept'});
    res.end(JSON.stringify(jsonPage(files)));
    return JSON_TYPE;
  }
  const type = format === 'both' && accept.includes(HTML_TYPE) ? HTML_TYPE : 'text/html';
  res.writeHead(200, {'content-type': `${type}; charset=utf-8`, vary: 'Accept'});
  res.end(htmlPage(files));
  return type;
}

function jsonPage(files: IndexFile[]) {
  const project = normalizePypiName(files[0]?.filename.split('-')[0] ?? '');
  return {
    meta: {'api-version': '1.1', _last_serial: 1},
    name: project,
    versions: [],
    files: files.map(f => ({
      filename: f.filename,
      url: `../../files/${encodeURIComponent(f.filename)}?dl=1&src=simple`,
      hashes: {sha256: f.sha256},
      'requires-python': f.meta.requiresPython ?? null,
      yanked: f.meta.yanked ?? false,
      'core-metadata': false,
    })),
  };
}

function htmlPage(files: IndexFile[]): string {
  const project = normalizePypiName(files[0]?.filename.split('-')[0] ?? '');
  const links = files.map((f, i) => (i % 2 === 0 ? pypiStyleLink(f) : singleQuotedLink(f)));
  return [
    '<!DOCTYPE html>',
    '<html>',
    '  <head>',
    '    <meta name="pypi:repository-version" content="1.1">',
    `    <title>Links for ${project}</title>`,
    '  </head>',
    '  <body>',
    `    <h1>Links for ${project}</h1>`,
    ...links,
    '  </body>',
    '</html>',
    '',
  ].join('\n');
}

/** As PyPI's template writes a link. */
function pypiStyleLink(f: IndexFile): string {
  const attrs = [
    `href="../../files/${encodeURIComponent(f.filename)}?dl=1&amp;src=simple#sha256=${f.sha256}"`,
  ];
  if (f.meta.requiresPython) attrs.push(`data-requires-python="${html(f.meta.requiresPython)}"`);
  if (f.meta.yanked)
    attrs.push(f.meta.yanked === true ? 'data-yanked=""' : `data-yanked="${html(f.meta.yanked)}"`);
  return `    <a ${attrs.join(' ')}>${f.filename}</a><br />`;
}

/** As other index generators write one: single quotes, numeric entities, a bare data-yanked. */
function singleQuotedLink(f: IndexFile): string {
  const attrs: string[] = [];
  if (f.meta.yanked)
    attrs.push(f.meta.yanked === true ? 'data-yanked' : `data-yanked='${numeric(f.meta.yanked)}'`);
  if (f.meta.requiresPython) attrs.push(`data-requires-python='${numeric(f.meta.requiresPython)}'`);
  attrs.push(
    `href='../../files/${encodeURIComponent(f.filename)}?dl=1&#x26;src=simple#sha256=${f.sha256}'`,
  );
  return `<a ${attrs.join(' ')} >\n  ${f.filename}\n</a><br/>`;
}

function html(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function numeric(text: string): string {
  return text.replace(/[&<>'"]/g, c => `&#x${c.charCodeAt(0).toString(16)};`);
}
