import {z} from 'zod';
import {ConfigError} from './errors.js';

/** A path inside the release: relative, no `..`, no leading `/`. */
const releasePath = z
  .string()
  .min(1)
  .refine(p => !p.startsWith('/') && !p.split(/[\\/]/).includes('..'), {
    error: 'must be a relative path inside the release (no "..", no leading "/")',
  });

const npmInstall = z.strictObject({
  type: z.literal('npm'),
  /** Directory holding package.json and package-lock.json. */
  directory: releasePath.default('.'),
  /** Run lifecycle scripts (install, postinstall, ...) as `npm ci` does. */
  scripts: z.boolean().default(true),
  /** Install devDependencies too. */
  dev: z.boolean().default(false),
  /** Registries a lockfile `resolved` URL may point at (prefix match). */
  registries: z.array(z.url()).min(1).default(['https://registry.npmjs.org/']),
  /**
   * Copy node_modules from the previous release instead of running npm ci when every input of
   * the install is the same (docs/deploy-json.md).
   */
  reuse: z.boolean().default(true),
});

const pipInstall = z.strictObject({
  type: z.literal('pip'),
  /** The requirements file: every line `name==version --hash=sha256:...`. */
  requirements: releasePath.default('requirements.txt'),
  /** The interpreter that creates the virtualenv. */
  python: z.string().min(1).default('python3'),
  /** Where the virtualenv goes, inside the release. */
  venv: releasePath.default('venv'),
});

const commandInstall = z.strictObject({
  type: z.literal('command'),
  /** argv of the command, run in the release directory without a shell. */
  command: z.array(z.string().min(1)).min(1),
  /** Extra environment variables for the command. */
  env: z.record(z.string(), z.string()).default({}),
});

/** A GitHub release asset the app needs (a prebuilt tool), vendored under github/. */
const githubAsset = z.strictObject({
  repo: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, {error: 'must be "owner/name"'})
    .refine(repo => repo.split('/').every(part => part !== '.' && part !== '..'), {
      error: 'must be "owner/name"',
    }),
  tag: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._+/-]*$/, {error: 'must be a release tag name'})
    .refine(tag => !tag.split('/').includes('..') && !tag.includes('//'), {
      error: 'must be a release tag name',
    }),
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+-]*$/, {
    error: 'must be a plain file name (letters, digits, . _ + -)',
  }),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, {error: 'must be 64 lower-case hex digits'}),
});

export type GithubAsset = z.infer<typeof githubAsset>;

const argv = z.array(z.string().min(1)).min(1);

/** A command run at one point of a deploy, in the release directory, without a shell. */
const hooks = z.strictObject({
  before_install: argv.optional(),
  after_install: argv.optional(),
  before_switch: argv.optional(),
  after_switch: argv.optional(),
});

export type HookName = keyof z.infer<typeof hooks>;

/** What proves the new release works, after the switch: a command or an HTTP URL. */
const healthcheck = z.union([
  z.strictObject({
    command: argv,
    /** Seconds the command may run. */
    timeout: z.number().positive().max(3600).default(30),
  }),
  z.strictObject({
    url: z.url({protocol: /^https?$/}),
    /** The status the URL must answer with. */
    status: z.number().int().min(100).max(599).default(200),
    /** Seconds to keep trying (the app may still be starting). */
    timeout: z.number().positive().max(3600).default(30),
  }),
]);

export type Healthcheck = z.infer<typeof healthcheck>;

/** `deploy.json` at the app repository root. `docs/deploy-json.md` documents every key. */
export const deployConfigSchema = z.strictObject({
  /**
   * The vendor repository this changeset needs, pinned to one commit. Before the first pin there
   * is only the URL: `vendor-sync --update-pin` writes `rev`, and no deploy takes such a changeset.
   */
  vendor: z
    .strictObject({
      url: z.string().min(1),
      rev: z.string().optional(),
    })
    .optional(),
  /** How the release is installed from the vendor tree: "npm", "pip", or an object. */
  install: z
    .preprocess(
      // "npm" / "pip" are shorthands, and {"command": [...]} needs no "type".
      value =>
        typeof value === 'string'
          ? {type: value}
          : isObject(value) && !('type' in value) && 'command' in value
            ? {type: 'command', ...value}
            : value,
      z.discriminatedUnion('type', [npmInstall, pipInstall, commandInstall]),
    )
    .optional(),
  /** GitHub release assets the app needs, each pinned by sha256. */
  assets: z.array(githubAsset).optional(),
  /** Files (and, with a trailing "/", directories) kept in <root>/shared/ and linked into each release. */
  shared: z.array(releasePath).optional(),
  /** Commands at before_install, after_install, before_switch, after_switch. */
  hooks: hooks.optional(),
  healthcheck: healthcheck.optional(),
});

export type DeployConfig = z.infer<typeof deployConfigSchema>;
export type NpmInstallSettings = z.output<typeof npmInstall>;
export type PipInstallSettings = z.output<typeof pipInstall>;
export type CommandInstallSettings = z.output<typeof commandInstall>;

/** The install settings with the shorthands expanded and defaults filled in. */
export type InstallSettings = NonNullable<DeployConfig['install']>;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

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
