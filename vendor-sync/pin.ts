import {promises as fsp} from 'node:fs';
import path from 'node:path';
import git from 'isomorphic-git';
import {applyEdits, modify} from 'jsonc-parser';
import {DEPLOY_JSON, parseDeployConfig} from '../lib/pins/deploy-config.js';
import {markerFilesIn} from '../lib/pins/detect-install.js';
import {ConfigError, UsageError} from '../lib/support/errors.js';
import {writeFileAtomic} from '../lib/support/fs.js';
import {gitFs} from '../lib/git/isomorphic-hooks.js';
import {VENDOR_DIR} from '../lib/node/layout.js';

/**
 * The text of deploy.json with `vendor.rev` set (added after `vendor.url` on the first pin),
 * everything else as the maintainer wrote it: indentation, key order, other keys.
 */
export function withVendorRev(text: string, vendorSha: string): string {
  const indent = /\n([ \t]+)"/.exec(text)?.[1];
  const edits = modify(text, ['vendor', 'rev'], vendorSha, {
    formattingOptions: {
      insertSpaces: !indent?.startsWith('\t'),
      tabSize: indent && !indent.startsWith('\t') ? indent.length : 2,
      eol: text.includes('\r\n') ? '\r\n' : '\n',
    },
  });
  return applyEdits(text, edits);
}

/**
 * Write `vendorSha` into the app work tree's pin: `deploy.json` `vendor.rev`, or the gitlink of
 * the `vendor` submodule in the index. The maintainer then commits the app and its pin together.
 * Returns which form was updated.
 */
export async function updatePin(
  appDir: string,
  vendorSha: string,
): Promise<'deploy.json' | 'submodule'> {
  const file = path.join(appDir, DEPLOY_JSON);
  const text = await fsp.readFile(file, 'utf8').catch(() => undefined);
  if (text !== undefined) {
    // The root files decide an install given without "type", as everywhere else.
    const config = parseDeployConfig(text, DEPLOY_JSON, await markerFilesIn(appDir));
    if (config.vendor) {
      await writeFileAtomic(file, withVendorRev(text, vendorSha));
      return 'deploy.json';
    }
  }
  const dotgit = await fsp.stat(path.join(appDir, '.git')).catch(() => undefined);
  if (!dotgit)
    throw new UsageError(`--update-pin needs the app as a work tree; ${appDir} is not one.`);
  const gitlink = (await git.listFiles({fs: gitFs, dir: appDir})).includes(VENDOR_DIR);
  if (gitlink) {
    await git.updateIndex({
      fs: gitFs,
      dir: appDir,
      filepath: VENDOR_DIR,
      oid: vendorSha,
      mode: 0o160000,
      add: true,
      force: true,
    });
    return 'submodule';
  }
  throw new ConfigError(
    'The app pins no vendor repository, so there is no pin to update.',
    'Add "vendor": {"url": ..., "rev": ...} to deploy.json, or a submodule at vendor/.',
  );
}
