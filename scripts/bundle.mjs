#!/usr/bin/env node
// Part of `npm run build`: bundle each command line (dist/lib/cli/deploy-main.js,
// dist/vendor-sync/cli.js) with its dependencies into one file under dist/bin/. Node 20 spends
// most of a command's start-up resolving and loading hundreds of small modules; one file starts
// about twice as fast. Source maps lead back to the TypeScript sources.
import {rmSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {build} from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const entries = {
  deploy: 'dist/lib/cli/deploy-main.js',
  'vendor-sync': 'dist/vendor-sync/cli.js',
};
// Chunk names carry content hashes: start empty so old chunks do not pile up.
rmSync(path.join(root, 'dist', 'bin'), {recursive: true, force: true});
await build({
  entryPoints: Object.fromEntries(
    Object.entries(entries).map(([name, file]) => [name, path.join(root, file)]),
  ),
  outdir: path.join(root, 'dist', 'bin'),
  outExtension: {'.js': '.mjs'},
  bundle: true,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  // CommonJS dependencies inside an ES module bundle still call require().
  banner: {
    js: "import {createRequire as __repodeployRequire} from 'node:module'; const require = __repodeployRequire(import.meta.url);",
  },
});
