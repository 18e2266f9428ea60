import path from 'node:path';
import {verifyAssets} from '../install/assets.js';
import {
  createInstaller,
  type InstallContext,
  type Installer,
  type VerifiedArtifact,
} from '../install/index.js';
import {installLog, VENDOR_DIR} from '../node/layout.js';
import {readVendorManifest} from '../pins/vendor-manifest.js';
import type {AppSettings} from '../pins/vendor-pin.js';
import {plural} from '../support/format.js';
import type {Reporter} from '../support/reporter.js';
import type {ReleaseWriter} from './writer.js';

/** An installer still running after this long is killed and the run fails. */
export const INSTALL_TIMEOUT_MS = 30 * 60 * 1000;

export type VerifiedRelease = {
  installer: Installer | undefined;
  ctx: InstallContext;
  verified: VerifiedArtifact[];
  assets: number;
};

export type VerifyReleaseOptions = {
  releaseDir: string;
  settings: AppSettings;
  /** Whether the release has a vendor tree (the app pins a vendor commit). */
  hasVendor: boolean;
  /** The environment the installer starts from (lib/install/run.ts keeps only what it needs). */
  env: NodeJS.ProcessEnv;
  reporter: Reporter;
  /** Where installers keep scratch (an npm cache, a wheelhouse): the node's .scratch, or a temp dir. */
  scratchDir?: string | undefined;
};

/**
 * Check every artifact the install will use (and every declared release asset) against the
 * hashes pinned in git, before any installer runs.
 */
export async function verifyRelease(options: VerifyReleaseOptions): Promise<VerifiedRelease> {
  const {releaseDir, settings, reporter} = options;
  const install = settings.config.install;
  const assets = settings.config.assets ?? [];
  const vendorDir = options.hasVendor ? path.join(releaseDir, VENDOR_DIR) : undefined;
  const manifest =
    vendorDir && (assets.length > 0 || (install && install.type !== 'command'))
      ? await readVendorManifest(vendorDir)
      : undefined;
  if (assets.length > 0) {
    await reporter.phase(
      'verify assets',
      () => verifyAssets(assets, vendorDir, manifest),
      () => `${plural(assets.length, 'release asset')} match the hashes pinned by the app`,
    );
  }
  const ctx: InstallContext = {
    releaseDir,
    vendorDir,
    manifest,
    logFile: installLog(releaseDir),
    env: options.env,
    reporter,
    timeoutMs: INSTALL_TIMEOUT_MS,
    scratchDir: options.scratchDir,
  };
  if (!install) return {installer: undefined, ctx, verified: [], assets: assets.length};
  const installer = createInstaller(install);
  const verified = await reporter.phase(
    'verify artifacts',
    () => installer.verify(ctx),
    found =>
      installer.kind === 'command'
        ? 'none to check: the install is a command of the app'
        : `${plural(found.length, `${installer.kind} artifact`)} match the hashes pinned by the app`,
  );
  return {installer, ctx, verified, assets: assets.length};
}

/**
 * Run the installer of a verified release, if it has one. A release `writer` still writing is
 * finished while the installer runs when the installer can start early (Installer.early), else
 * first. `note` ends the install's line (why the previous release's install was not reused).
 */
export async function installRelease(
  release: VerifiedRelease,
  reporter: Reporter,
  writer?: ReleaseWriter,
  note?: string,
): Promise<void> {
  const {installer} = release;
  let alongside: (() => Promise<void>) | undefined;
  if (writer && !writer.complete) {
    const blocker = installer?.early ? await installer.early.blocker(release.ctx) : '';
    if (blocker === undefined) alongside = () => writer.finish();
    else {
      if (blocker) reporter.detail(`writing the rest first: ${blocker}`);
      await writer.finish();
    }
  }
  if (!installer) return;
  await reporter.phase(
    'install',
    () => {
      reporter.detail(`run ${installer.describe}; its output goes to ${release.ctx.logFile}`);
      return installer.install(release.ctx, release.verified, alongside);
    },
    () =>
      `${installer.describe}${alongside ? ' (the rest of the release written meanwhile)' : ''}${note ? `; ${note}` : ''}`,
  );
}
