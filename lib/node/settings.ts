import path from 'node:path';
import {z} from 'zod';
import {configIssuesError} from '../support/config-issues.js';
import {ConfigError} from '../support/errors.js';
import {readJsonIfExists, writeFileAtomic} from '../support/fs.js';
import {NODE_SETTINGS_FILE} from './layout.js';

const schema = z.strictObject({
  format: z.literal(1),
  /** The app repository, remembered from the first deploy's `--repo`. */
  repo: z.string().optional(),
  /** The node's vendor repository override (`--vendor-repo`), e.g. an internal mirror. */
  vendorRepo: z.string().optional(),
  /** Prune keeps this many releases that can be rolled back to (default 5). */
  keepReleases: z.number().int().min(1).optional(),
  /** ... and this many failed or bad releases as evidence (default 2). */
  keepFailed: z.number().int().min(0).optional(),
});

/** `<root>/node.json`: what this node remembers between runs. Never holds credentials. */
export type NodeSettings = z.infer<typeof schema>;

export async function readNodeSettings(root: string): Promise<NodeSettings> {
  const file = path.join(root, NODE_SETTINGS_FILE);
  let data: unknown;
  try {
    data = await readJsonIfExists(file);
  } catch (error) {
    throw new ConfigError(`${file} is not valid JSON.`, 'Fix or remove the file.', {cause: error});
  }
  if (data === undefined) return {format: 1};
  const parsed = schema.safeParse(data, {reportInput: true});
  if (!parsed.success) {
    throw configIssuesError(
      {
        where: file,
        doc: 'docs/node-layout.md',
        fix: 'Fix or remove the file; the next deploy with --repo writes it again.',
      },
      parsed.error.issues,
      data,
    );
  }
  return parsed.data;
}

export async function writeNodeSettings(root: string, settings: NodeSettings): Promise<void> {
  await writeFileAtomic(
    path.join(root, NODE_SETTINGS_FILE),
    `${JSON.stringify(settings, null, 2)}\n`,
  );
}
