#!/usr/bin/env node
import module from 'node:module';

// Node 22 and later keep compiled code between runs; on Node 20 this does nothing.
module.enableCompileCache?.();
// dist/bin/vendor-sync.mjs is the command bundled into one file by `npm run build` (faster start-up).
const {main} = await import('../dist/bin/vendor-sync.mjs');

process.exitCode = await main(process.argv.slice(2));
