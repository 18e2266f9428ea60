import path from 'node:path';

/**
 * The names of everything in a node root, in one place: `docs/node-layout.md` in code. Every
 * module that reads or writes a node root takes its names from here.
 *
 * ```
 * <root>/
 *   current -> releases/<id>
 *   releases/<id>/              the app tree at the deployed commit
 *   releases/<id>/vendor/       the vendor tree at the commit the app pins
 *   releases/<id>/.repodeploy/  release.json, install.log, install.json, files.json
 *   repos/app.git/  repos/vendor.git/
 *   shared/  node.json  history.jsonl  .lock/  .scratch/  maintenance
 * ```
 */
export const CURRENT_LINK = 'current';
export const RELEASES_DIR = 'releases';
/** Reserved directory inside each release for the tool's own files (metadata, logs). */
export const META_DIR = '.repodeploy';
export const RELEASE_JSON = 'release.json';
export const INSTALL_LOG = 'install.log';
/** What an install left, for the next deploy's reuse (lib/install/reuse.ts). */
export const INSTALL_RECORD = 'install.json';
/** What the write of the release produced, for the next deploy to take unchanged files from. */
export const FILES_MANIFEST = 'files.json';
/** The release's vendor tree, at the place the app's own `vendor` entry (a submodule) holds. */
export const VENDOR_DIR = 'vendor';
/** The node's git stores: objects accumulate across deploys, so fetches are incremental. */
export const REPOS_DIR = 'repos';
export const SHARED_DIR = 'shared';
export const NODE_SETTINGS_FILE = 'node.json';
export const HISTORY_FILE = 'history.jsonl';
export const LOCK_DIR = '.lock';
/** Installer scratch directories (an npm cache, a wheelhouse) of the running deploy. */
export const SCRATCH_DIR = '.scratch';
export const MAINTENANCE_FILE = 'maintenance';

/** The two git stores a node keeps, one per source. */
export type StoreName = 'app' | 'vendor';
export const STORE_NAMES: readonly StoreName[] = ['app', 'vendor'];

/** The store for `name` under a repos directory (the node's, or a scratch one for check/bundle). */
export function storeDir(reposDir: string, name: StoreName): string {
  return path.join(reposDir, `${name}.git`);
}

/** Where a release's install log is: the hooks' and installers' output, kept as evidence. */
export function installLog(releaseDir: string): string {
  return path.join(releaseDir, META_DIR, INSTALL_LOG);
}

/** The absolute places of one node root. */
export type NodeLayout = {
  root: string;
  repos: string;
  scratch: string;
  shared: string;
  releases: string;
  current: string;
  release: (id: string) => string;
};

export function nodeLayout(root: string): NodeLayout {
  return {
    root,
    repos: path.join(root, REPOS_DIR),
    scratch: path.join(root, SCRATCH_DIR),
    shared: path.join(root, SHARED_DIR),
    releases: path.join(root, RELEASES_DIR),
    current: path.join(root, CURRENT_LINK),
    release: id => path.join(root, RELEASES_DIR, id),
  };
}
