import {execFile} from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import {packageRoot} from './helpers/world.js';

test('npm run demo: deploys the sample app twice with its real npm install and the app answers', async t => {
  const {code, stdout, stderr} = await new Promise<{code: number; stdout: string; stderr: string}>(
    resolve => {
      execFile(
        process.execPath,
        [path.join(packageRoot, 'dist', 'examples', 'demo.js')],
        {env: {PATH: process.env.PATH, HOME: process.env.HOME}, encoding: 'utf8'},
        (error, out, err) => {
          resolve({code: error ? Number(error.code ?? 1) : 0, stdout: out, stderr: err});
        },
      );
    },
  );
  t.is(code, 0, stderr);
  t.regex(stdout, /\$ deploy --rev v1\.0\.0 --repo http:\/\/127\.0\.0\.1:\d+\/app\.git/);
  t.regex(stdout, /^deployed \d{8}T\d{6}Z-[0-9a-f]{7}$/m);
  t.regex(stderr, /3 npm artifacts match the hashes pinned by the app/);
  t.regex(stdout, /GET \/hello\?who=<ops> -> 200 \{"app":"sample","version":"1\.1\.0"/);
  t.regex(stdout, /\* \d{8}T\d{6}Z-[0-9a-f]{7}\s+live/);
});
