import {readFileSync} from 'node:fs';

/**
 * The package's name and version, from its package.json: the nearest one above this module that
 * names this package (compiled to dist/lib/support/version.js, or bundled under dist/bin/).
 */
function readPackage(): {name: string; version: string} {
  for (let up = '../'; up.length <= 5 * 3; up += '../') {
    try {
      const pkg = JSON.parse(
        readFileSync(new URL(`${up}package.json`, import.meta.url), 'utf8'),
      ) as {name?: string; version?: string};
      if (pkg.name === 'repodeploy' && pkg.version) return {name: pkg.name, version: pkg.version};
    } catch {
      // Not at this level: look one further up.
    }
  }
  throw new Error('package.json of repodeploy not found above the running code');
}

const pkg = readPackage();

export const TOOL_NAME: string = pkg.name;
export const TOOL_VERSION: string = pkg.version;
