import path from 'node:path';
import YAML from 'yaml';
import {ConfigError} from '../support/errors.js';
import {readRegularFile} from './vendor-manifest.js';

/**
 * The settings of an app's `.yarnrc.yml` that decide what a Yarn 2+ install lays out, and so are
 * honoured at vendor-sync and deploy time. Everything else (registries, auth, `yarnPath`,
 * `plugins`, cache and global folders, network and telemetry switches, scripts) is repodeploy's
 * to set: dropped, and named in the install log.
 */
export const KEPT_YARNRC_KEYS = [
  'nodeLinker',
  'nmMode',
  'nmHoistingLimits',
  'nmSelfReferences',
  'pnpMode',
  'pnpShebang',
  'pnpEnableEsmLoader',
  'pnpEnableInlining',
  'pnpFallbackMode',
  'pnpIgnorePatterns',
  'packageExtensions',
  'enableTransparentWorkspaces',
  'compressionLevel',
  'defaultProtocol',
] as const;

export type AppYarnrc = {
  /** The kept settings, as the app wrote them. */
  kept: Record<string, unknown>;
  /** The app's other settings, by name: not used. */
  dropped: string[];
  nodeLinker: string;
};

/** `<dir>/.yarnrc.yml` of the app (a regular file, if any), split into kept and dropped keys. */
export async function readAppYarnrc(appDir: string, directory: string): Promise<AppYarnrc> {
  const rel = path.posix.join(directory, '.yarnrc.yml');
  const text = await readRegularFile(path.join(appDir, rel), rel);
  let data: unknown = {};
  if (text !== undefined) {
    try {
      data = YAML.parse(text, {uniqueKeys: true}) ?? {};
    } catch (error) {
      throw new ConfigError(`${rel} does not parse as YAML: ${(error as Error).message}`);
    }
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new ConfigError(`${rel} is not a map of Yarn settings.`);
  }
  const kept: Record<string, unknown> = {};
  const dropped: string[] = [];
  for (const [key, value] of Object.entries(data)) {
    if ((KEPT_YARNRC_KEYS as readonly string[]).includes(key)) kept[key] = value;
    else dropped.push(key);
  }
  const linker = kept.nodeLinker ?? 'pnp';
  if (linker !== 'pnp' && linker !== 'node-modules' && linker !== 'pnpm') {
    throw new ConfigError(
      `${rel} sets nodeLinker to ${JSON.stringify(linker)}: Yarn knows "pnp", "node-modules" and "pnpm".`,
    );
  }
  return {kept, dropped, nodeLinker: linker};
}
