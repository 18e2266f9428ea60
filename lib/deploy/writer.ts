import path from 'node:path';
import {exportTree, type ExportOptions, type ExportStats, type TreeFile} from '../git/export.js';
import type {GitStore} from '../git/store.js';
import {VENDOR_DIR} from '../node/layout.js';
import {plural} from '../support/format.js';
import {pausePoint} from '../support/pause-points.js';
import type {Reporter} from '../support/reporter.js';
import type {VendorCheckout} from './changeset.js';
import {
  fileRecord,
  PreviousFiles,
  writeFilesManifest,
  type FileRecord,
  type PreviousRelease,
} from './previous-files.js';

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

export type WriteOptions = {
  /** Record what was written in `.repodeploy/files.json` (a release; not a bundle or a check). */
  record?: boolean;
  previous?: PreviousRelease | undefined;
};

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
 * the app tree. With `options.previous`, files unchanged since that release are copied from it
 * (lib/deploy/previous-files.ts); with `options.record`, the rest ends by recording the write.
 */
export async function writeTreesInTwo(
  releaseDir: string,
  app: AppTree,
  vendor: VendorCheckout | undefined,
  reporter: Reporter,
  first: ReadonlySet<string>,
  options: WriteOptions = {},
): Promise<() => Promise<void>> {
  const label = `app commit ${app.sha}`;
  const previous = options.previous;
  const record = options.record ? {app: [] as FileRecord[], vendor: [] as FileRecord[]} : undefined;
  const appHooks = exportHooks(
    previous && new PreviousFiles(previous.dir, previous.manifest.app),
    record?.app,
  );
  const now = app.tree.filter(entry => first.has(entry.path) || entry.path === VENDOR_DIR);
  const later = app.tree.filter(entry => !first.has(entry.path) && entry.path !== VENDOR_DIR);
  const early = await exportTree(app.store, app.sha, releaseDir, {
    label,
    entries: now,
    ...appHooks,
  });
  if (vendor) {
    const stats = await writeVendorTree(releaseDir, vendor, previous, record?.vendor);
    reporter.info(`  vendor: ${describeFiles(stats)}, ${plural(stats.symlinks, 'symlink')}`);
  }
  return async () => {
    const stats = await exportTree(app.store, app.sha, releaseDir, {
      label,
      entries: later,
      midway: () => pausePoint(path.dirname(path.dirname(releaseDir)), 'mid-write'),
      ...appHooks,
    });
    const both = {files: early.files + stats.files, taken: early.taken + stats.taken};
    reporter.info(
      `  app: ${describeFiles(both)}, ${plural(early.symlinks + stats.symlinks, 'symlink')}`,
    );
    if (record) {
      await writeFilesManifest(releaseDir, {
        format: 1,
        app: {sha: app.sha, files: record.app},
        vendor: vendor ? {sha: vendor.pin.sha, files: record.vendor} : null,
      });
    }
  };
}

/** The vendor tree under `vendor/`, with the files unchanged since `previous` taken from it. */
function writeVendorTree(
  releaseDir: string,
  vendor: VendorCheckout,
  previous: PreviousRelease | undefined,
  records: FileRecord[] | undefined,
): Promise<ExportStats> {
  const previousVendor = previous?.manifest.vendor;
  const from = previous && previousVendor ? {dir: previous.dir, tree: previousVendor} : undefined;
  return exportTree(vendor.store, vendor.pin.sha, path.join(releaseDir, VENDOR_DIR), {
    label: `vendor commit ${vendor.pin.sha}`,
    entries: vendor.tree,
    ...exportHooks(from && new PreviousFiles(path.join(from.dir, VENDOR_DIR), from.tree), records),
  });
}

/** `take` and `written` for exportTree: from the previous release's files, into `records`. */
function exportHooks(
  previous: PreviousFiles | undefined,
  records: FileRecord[] | undefined,
): Pick<ExportOptions, 'take' | 'written'> {
  return {
    ...(previous ? {take: (entry, target) => previous.take(entry, target)} : {}),
    ...(records ? {written: (entry, stat) => records.push(fileRecord(entry, stat))} : {}),
  };
}

function describeFiles(stats: Pick<ExportStats, 'files' | 'taken'>): string {
  const files = plural(stats.files, 'file');
  return stats.taken > 0 ? `${files} (${stats.taken} from the previous release)` : files;
}
