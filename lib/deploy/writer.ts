import path from 'node:path';
import {exportTree, type TreeFile} from '../git/export.js';
import type {GitStore} from '../git/store.js';
import {VENDOR_DIR} from '../node/layout.js';
import {plural} from '../support/format.js';
import {pausePoint} from '../support/pause-points.js';
import type {Reporter} from '../support/reporter.js';
import type {VendorCheckout} from './changeset.js';

/** The app commit a release is written from. */
export type AppTree = {store: GitStore; sha: string; tree: TreeFile[]};

/**
 * Writes one release, whole or in two parts: an installer that reads only part of the app (npm:
 * its package files) can start once that part and the vendor tree are written, while the rest
 * is written. Every step that needs the release whole calls {@link ReleaseWriter.finish} first;
 * the rest is written once, whoever asks first.
 */
export class ReleaseWriter {
  private finishing: Promise<void> | undefined;

  private constructor(private readonly rest: (() => Promise<void>) | undefined) {}

  /** Write the release now: whole, or (with `first`) the vendor tree and those app paths. */
  static async start(
    write: (first: ReadonlySet<string> | undefined) => Promise<(() => Promise<void>) | undefined>,
    first: ReadonlySet<string> | undefined,
  ): Promise<ReleaseWriter> {
    return new ReleaseWriter(await write(first));
  }

  /** Whether the whole release is written (or being written). */
  get complete(): boolean {
    return !this.rest || this.finishing !== undefined;
  }

  /** Write what is left of the release (at most once: later calls share the first). */
  finish(): Promise<void> {
    return (this.finishing ??= this.rest ? this.rest() : Promise.resolve());
  }
}

/** Write the app tree, and the vendor tree under vendor/, into `releaseDir`. */
export async function writeTrees(
  releaseDir: string,
  app: AppTree,
  vendor: VendorCheckout | undefined,
  reporter: Reporter,
): Promise<void> {
  const rest = await writeTreesInTwo(releaseDir, app, vendor, reporter, new Set());
  await rest();
}

/**
 * Write the vendor tree and the app entries in `first` (with the app's own `vendor` entry, the
 * vendor tree's place) into `releaseDir` now, and return the function that writes the rest of
 * the app tree.
 */
export async function writeTreesInTwo(
  releaseDir: string,
  app: AppTree,
  vendor: VendorCheckout | undefined,
  reporter: Reporter,
  first: ReadonlySet<string>,
): Promise<() => Promise<void>> {
  const label = `app commit ${app.sha}`;
  const now = app.tree.filter(entry => first.has(entry.path) || entry.path === VENDOR_DIR);
  const later = app.tree.filter(entry => !first.has(entry.path) && entry.path !== VENDOR_DIR);
  const early = await exportTree(app.store, app.sha, releaseDir, {label, entries: now});
  if (vendor) {
    const stats = await exportTree(
      vendor.store,
      vendor.pin.sha,
      path.join(releaseDir, VENDOR_DIR),
      {label: `vendor commit ${vendor.pin.sha}`, entries: vendor.tree},
    );
    reporter.info(`  vendor: ${plural(stats.files, 'file')}, ${plural(stats.symlinks, 'symlink')}`);
  }
  return async () => {
    const stats = await exportTree(app.store, app.sha, releaseDir, {
      label,
      entries: later,
      midway: () => pausePoint(path.dirname(path.dirname(releaseDir)), 'mid-write'),
    });
    reporter.info(
      `  app: ${plural(early.files + stats.files, 'file')}, ${plural(early.symlinks + stats.symlinks, 'symlink')}`,
    );
  };
}
