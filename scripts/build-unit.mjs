#!/usr/bin/env node
// Part of `npm run test:unit`: bundle each test/unit/*.test.ts with the lib/ and vendor-sync/ code
// it imports into dist/unit/ (esbuild, no type check), so the fast lane needs no `npm run build`.
// `tsc` (strict, the full build) and `npm run lint` are what type-check these files; this only
// makes them runnable in well under a second. The packages stay external: node resolves them from
// node_modules as it does for the full build. dist/unit/ is separate from tsc's dist/lib/, whose
// exact text the protection checks read.
import {readdirSync, rmSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {build} from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(root, 'test', 'unit');
const entryPoints = readdirSync(dir)
  .filter(name => name.endsWith('.test.ts'))
  .map(name => path.join(dir, name));
rmSync(path.join(root, 'dist', 'unit'), {recursive: true, force: true});
await build({
  entryPoints,
  outbase: path.join(root, 'test'),
  outdir: path.join(root, 'dist', 'unit'),
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
});
