// A small HTTP service: the sample app repodeploy's demo deploys.
import http from 'node:http';
import {readFileSync} from 'node:fs';

const {version} = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
const port = Number(process.env.PORT ?? 8080);

http
  .createServer((req, res) => {
    res.writeHead(200, {'content-type': 'application/json'});
    res.end(JSON.stringify({app: 'sample', version, path: req.url}));
  })
  .listen(port, '127.0.0.1', () => {
    console.log(`sample app ${version} listening on 127.0.0.1:${port}`);
  });
