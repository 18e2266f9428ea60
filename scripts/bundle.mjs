#!/usr/bin/env node
// Part of `npm run build`: bundle each command line (dist/lib/cli/deploy-main.js,
// dist/vendor-sync/cli.js) with its dependencies into one file under dist/bin/. Node 20 spends
// most of a command's start-up resolving and loading hundreds of small modules; one file starts
// about twice as fast. Source maps lead back to the TypeScript sources.
import {rmSync} from 'node:fs';
import {createRequire} from 'node:module';
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
/**
 * zod re-exports every one of its ~60 translations of error messages as `z.locales`, which no
 * bundler can drop; repodeploy uses English only (zod registers it from locales/en.js itself).
 * That namespace is bundled with English alone: much less code to load at every start.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({filter: /^\.\.\/locales\/index\.js$/}, args =>
      /[\\/]zod[\\/]v4[\\/](classic|core)$/.test(args.resolveDir)
        ? {path: path.join(args.resolveDir, '..', 'locales', 'en-only.js'), namespace: 'zod-en'}
        : undefined,
    );
    b.onLoad({filter: /.*/, namespace: 'zod-en'}, args => ({
      contents: "export {default as en} from './en.js';\n",
      resolveDir: path.dirname(args.path),
      loader: 'js',
    }));
  },
};
/**
 * jsonc-parser's `main` is a UMD build whose factory require()s its own modules by relative path
 * at run time, which a bundle cannot resolve ("Cannot find module './impl/format'"). Its `module`
 * field names a plain ES module build of the same code: bundle that one.
 */
const jsoncParserEsm = {
  name: 'jsonc-parser-esm',
  setup(b) {
    b.onResolve({filter: /^jsonc-parser$/}, () => ({
      path: path.join(
        path.dirname(createRequire(import.meta.url).resolve('jsonc-parser/package.json')),
        'lib',
        'esm',
        'main.js',
      ),
    }));
  },
};
await build({
  plugins: [zodEnglishOnly, jsoncParserEsm],
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
  // CommonJS dependencies inside an ES module bundle read __filename and __dirname...
  inject: [path.join(root, 'scripts', 'cjs-paths.mjs')],
  // ...and still call require().
  banner: {
    js: "import {createRequire as __repodeployRequire} from 'node:module'; const require = __repodeployRequire(import.meta.url);",
  },
});
