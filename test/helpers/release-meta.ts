import type {ReleaseMeta} from '../../lib/node/release-store.js';

/** Release metadata for tests that drive the release store directly. */
export function releaseMeta(id: string, state: ReleaseMeta['state'] = 'building'): ReleaseMeta {
  return {
    format: 1,
    id,
    state,
    createdAt: new Date().toISOString(),
    user: 'u',
    host: 'h',
    tool: {name: 'repodeploy', version: '0'},
    app: {url: 'x', requested: 'main', sha: 'a'.repeat(40)},
    vendor: null,
  };
}
