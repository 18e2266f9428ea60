// Injected by scripts/bundle.mjs into the bundles: CommonJS modules read the free variables
// __filename and __dirname, which an ES module does not have (@yarnpkg/lockfile reads them as it
// loads, to name a Yarn binary it never runs here). They name the chunk the code landed in.
import path from 'node:path';
import {fileURLToPath} from 'node:url';

export const __filename = fileURLToPath(import.meta.url);
export const __dirname = path.dirname(__filename);
