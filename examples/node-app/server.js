// A small HTTP service: the sample app repodeploy's demo deploys, with its npm dependencies
// installed offline from the vendor repository.
import http from 'node:http';
import {readFileSync} from 'node:fs';
import createDebug from 'debug';
import escapeHtml from 'escape-html';

const debug = createDebug('sample');
const {version} = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
const port = Number(process.env.PORT ?? 8080);

http
  .createServer((req, res) => {
    debug('%s %s', req.method, req.url);
    res.writeHead(200, {'content-type': 'application/json'});
    res.end(JSON.stringify({app: 'sample', version, path: escapeHtml(req.url ?? '/')}));
  })
  .listen(port, '127.0.0.1', () => {
    console.log(`sample app ${version} listening on 127.0.0.1:${port}`);
  });
