import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {z} from 'zod';
import {configIssuesError} from '../lib/support/config-issues.js';
import {ConfigError} from '../lib/support/errors.js';

/** The file in the app's work tree that saves repeating --vendor (and the upstreams) every run. */
export const VENDOR_SYNC_CONFIG = 'vendor-sync.json';

const schema = z.strictObject({
  app: z.string().min(1).optional(),
  vendor: z.string().min(1).optional(),
  'npm-registry': z.url({protocol: /^https?$/}).optional(),
  'npm-scope-registry': z.array(z.string().min(1)).optional(),
  'pypi-index': z.url({protocol: /^https?$/}).optional(),
});

export type VendorSyncConfig = z.infer<typeof schema>;

const KEYS: Record<string, string> = {
  app: 'the app repository: a path from this file, or a URL',
  vendor: 'the vendor repository: a path from this file, or a URL',
  'npm-registry': 'an http(s) registry URL',
  'npm-scope-registry': 'a list of "@scope=URL"',
  'pypi-index': 'an http(s) simple index URL',
};

/**
 * vendor-sync.json of the app, if there is one: in the `--app` directory when that is given as a
 * path (on the command line or in VENDOR_SYNC_APP), else in the working directory. Paths in it are
 * relative to the file, and `app` defaults to the file's directory. Flags and the environment win
 * over it (yargs applies a config object only to options not set otherwise).
 */
export async function readVendorSyncConfig(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<VendorSyncConfig> {
  const app = appArgument(args) ?? env.VENDOR_SYNC_APP;
  const dir = app && !isUrl(app) ? path.resolve(cwd, app) : cwd;
  const file = path.join(dir, VENDOR_SYNC_CONFIG);
  const text = await fsp.readFile(file, 'utf8').catch((error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new ConfigError(`${file} cannot be read: ${String(error)}.`, undefined, {cause: error});
  });
  if (text === undefined) return {};
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${file} is not valid JSON.`, 'See docs/vendor-sync.md.', {cause: error});
  }
  const parsed = schema.safeParse(data, {reportInput: true});
  if (!parsed.success)
    throw configIssuesError(
      {where: file, doc: 'docs/vendor-sync.md', keys: KEYS},
      parsed.error.issues,
      data,
    );
  const fromFile = (p: string) => (isUrl(p) ? p : path.resolve(dir, p));
  return {
    ...parsed.data,
    app: parsed.data.app === undefined ? dir : fromFile(parsed.data.app),
    ...(parsed.data.vendor === undefined ? {} : {vendor: fromFile(parsed.data.vendor)}),
  };
}

/** The value of `--app X` or `--app=X`, read before yargs parses the whole line. */
function appArgument(args: readonly string[]): string | undefined {
  const i = args.indexOf('--app');
  if (i >= 0) return args[i + 1];
  return args.find(a => a.startsWith('--app='))?.slice('--app='.length);
}

function isUrl(value: string): boolean {
  return /^https?:\/\//i.test(value);
}
