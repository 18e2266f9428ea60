import {z} from 'zod';
import {ConfigError} from './errors.js';

/** `deploy.json` at the app repository root. `docs/deploy-json.md` documents every key. */
export const deployConfigSchema = z.strictObject({
  /** The vendor repository this changeset needs, pinned to one commit. */
  vendor: z
    .strictObject({
      url: z.string().min(1),
      rev: z.string(),
    })
    .optional(),
});

export type DeployConfig = z.infer<typeof deployConfigSchema>;

export const DEPLOY_JSON = 'deploy.json';

/**
 * Parse and validate the text of `deploy.json`. Every problem names its key.
 *
 * @example
 * parseDeployConfig('{"vendor": {"url": "../vendor.git", "rev": "0123...cdef"}}', 'deploy.json at abc1234')
 */
export function parseDeployConfig(text: string, where: string): DeployConfig {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(
      `${where} is not valid JSON: ${(error as Error).message}`,
      'Fix the file in the app repository and deploy a changeset that has the fix.',
      {cause: error},
    );
  }
  const result = deployConfigSchema.safeParse(data);
  if (!result.success) {
    const problems = result.error.issues.map(issue => {
      const key = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
      if (issue.code === 'unrecognized_keys') {
        const prefix = issue.path.length > 0 ? `${issue.path.join('.')}.` : '';
        return `unknown key ${issue.keys.map(k => `"${prefix}${k}"`).join(', ')}`;
      }
      return `"${key}": ${issue.message}`;
    });
    throw new ConfigError(
      `${where} is invalid: ${problems.join('; ')}.`,
      'See docs/deploy-json.md for the keys and their types.',
    );
  }
  return result.data;
}
