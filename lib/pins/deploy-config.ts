import {visit} from 'jsonc-parser';
import {z} from 'zod';
import {configIssuesError} from '../support/config-issues.js';
import {ConfigError} from '../support/errors.js';
import {detectInstall} from './detect-install.js';

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

/** pnpm (pnpm-lock.yaml), with the fields and defaults of npm; the pnpm release is the app's packageManager. */
const pnpmInstall = npmInstall.extend({type: z.literal('pnpm')});
/** Yarn (classic v1 or Berry, told by yarn.lock): the same fields as npm. */
const yarnInstall = npmInstall.extend({
  type: z.literal('yarn'),
  // Yarn 1 writes its own public registry into yarn.lock: the same packages and bytes as npm's.
  registries: z
    .array(z.url())
    .min(1)
    .default(['https://registry.npmjs.org/', 'https://registry.yarnpkg.com/']),
});

const pipInstall = z.strictObject({
  type: z.literal('pip'),
  /** The requirements file: every line `name==version --hash=sha256:...`. */
  requirements: releasePath.default('requirements.txt'),
  /** The interpreter that creates the virtualenv. */
  python: z.string().min(1).default('python3'),
  /** Where the virtualenv goes, inside the release. */
  venv: releasePath.default('venv'),
  /**
   * Copy the virtualenv from the previous release instead of installing when every input of
   * the install is the same (docs/deploy-json.md).
   */
  reuse: z.boolean().default(true),
});

/** A Python app pinned by a lock (uv.lock, poetry.lock), installed by pip as a pip app is. */
function pythonLockInstall<T extends 'uv' | 'poetry'>(type: T, lockfile: string) {
  return z.strictObject({
    type: z.literal(type),
    /** The lock: packages, versions and the hash of every file (docs/deploy-json.md). */
    lockfile: releasePath.default(lockfile),
    python: z.string().min(1).default('python3'),
    venv: releasePath.default('venv'),
    reuse: z.boolean().default(true),
    /** Install the dev groups (and, for uv, the project's extras) too. */
    dev: z.boolean().default(false),
    /** Package indexes the lock's packages may come from (simple API URLs). */
    indexes: z.array(z.url()).min(1).default(['https://pypi.org/simple']),
  });
}

const uvInstall = pythonLockInstall('uv', 'uv.lock');
const poetryInstall = pythonLockInstall('poetry', 'poetry.lock');

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
  // protection R21-asset-name: asset names are plain file names
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
  /** How the release is installed from the vendor tree: "npm", "pip", "uv", "poetry", or an object. */
  install: z
    .preprocess(
      // "npm" / "pnpm" / "yarn" / "pip" / "uv" / "poetry" are shorthands, and {"command": [...]} needs no "type".
      value =>
        typeof value === 'string'
          ? {type: value}
          : isObject(value) && !('type' in value) && 'command' in value
            ? {type: 'command', ...value}
            : value,
      z.discriminatedUnion('type', [
        npmInstall,
        pnpmInstall,
        yarnInstall,
        pipInstall,
        uvInstall,
        poetryInstall,
        commandInstall,
      ]),
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
export type PnpmInstallSettings = z.output<typeof pnpmInstall>;
export type YarnInstallSettings = z.output<typeof yarnInstall>;
export type PipInstallSettings = z.output<typeof pipInstall>;
export type PythonLockInstallSettings = z.output<typeof uvInstall> | z.output<typeof poetryInstall>;
export type CommandInstallSettings = z.output<typeof commandInstall>;

/** The install settings with the shorthands expanded and defaults filled in. */
export type InstallSettings = NonNullable<DeployConfig['install']>;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export const DEPLOY_JSON = 'deploy.json';

/** What the keys of deploy.json hold, for messages about a wrong one. */
const DEPLOY_JSON_KEYS: Record<string, string> = {
  vendor: 'the vendor repository and its pinned commit',
  'vendor.url': 'the vendor repository URL',
  'vendor.rev': 'a commit id',
  install: 'an install kind ("npm", "pnpm", "yarn", "pip", "uv", "poetry") or an object',
  assets: 'a list of GitHub release assets',
  shared: 'a list of paths in the release',
  hooks: 'commands by hook name',
  healthcheck: 'a command or a URL',
};

/**
 * Parse and validate the text of `deploy.json`. Every problem names its key. A leading UTF-8 BOM
 * (which some Windows editors write) is ignored, as npm ignores it in package.json; a key that
 * appears twice in one object is refused rather than silently last-wins.
 *
 * @example
 * parseDeployConfig('{"vendor": {"url": "../vendor.git", "rev": "0123...cdef"}}', 'deploy.json at abc1234')
 */
export function parseDeployConfig(
  text: string,
  where: string,
  rootFiles?: ReadonlySet<string>,
): DeployConfig {
  const json = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const parsed = parseJsonStrict(json, where, {
    fix: 'Fix the file in the app repository and deploy a changeset that has the fix.',
    keepOne: 'keep one of them in the app repository and deploy a changeset that has the fix.',
  });
  const data = withInstallKind(parsed, where, rootFiles);
  const result = deployConfigSchema.safeParse(data, {reportInput: true});
  if (!result.success) {
    throw configIssuesError(
      {where, doc: 'docs/deploy-json.md', keys: DEPLOY_JSON_KEYS},
      result.error.issues,
      data,
    );
  }
  const overlap = sharedOverlap(result.data);
  if (overlap) {
    throw new ConfigError(
      `${where} is invalid: ${overlap}.`,
      'A shared entry is linked to <root>/shared/ in every release: it may not hold another shared entry or what the install writes. See docs/deploy-json.md.',
    );
  }
  return result.data;
}

/**
 * deploy.json's data with `install` as it applies: "none" means no install; absent (or an object
 * with no "type"), the kind the app's root files call for (lib/pins/detect-install.ts), when the
 * caller knows them.
 */
function withInstallKind(
  data: unknown,
  where: string,
  rootFiles: ReadonlySet<string> | undefined,
): unknown {
  if (!isObject(data)) return data;
  if (data.install === 'none') {
    return Object.fromEntries(Object.entries(data).filter(([key]) => key !== 'install'));
  }
  const {install} = data;
  // An object without "type" (and not a command) takes its kind from the tree too: settings such
  // as "registries" or "dev" without repeating what the lockfile already says.
  const open = isObject(install) && !('type' in install) && !('command' in install);
  if ((install !== undefined && !open) || rootFiles === undefined) return data;
  const detected = detectInstall(rootFiles, where);
  if (!detected) return data;
  return {...data, install: open ? {type: detected.type, ...install} : detected.type};
}

/** A path as its components, without "./" and a trailing "/". */
function components(p: string): string[] {
  return p.split('/').filter(part => part !== '' && part !== '.');
}

/** Whether `inner` is `outer` or lies inside it, component by component. */
function within(inner: string[], outer: string[]): boolean {
  return outer.length <= inner.length && outer.every((part, i) => inner[i] === part);
}

/**
 * Why the shared entries overlap each other or what the installer writes, or undefined. A shared
 * entry becomes a link into <root>/shared/: one inside another would be removed through the first
 * one's link (deleting the node's shared data), and an install into a shared path would rewrite
 * what the live release uses.
 */
function sharedOverlap(config: DeployConfig): string | undefined {
  const shared = (config.shared ?? []).map(p => ({p, parts: components(p)}));
  for (const [i, a] of shared.entries()) {
    for (const b of shared.slice(i + 1)) {
      if (within(a.parts, b.parts) || within(b.parts, a.parts)) {
        return `"shared" entries "${a.p}" and "${b.p}" overlap (one is inside the other)`;
      }
    }
  }
  const install = config.install;
  const outputs =
    install?.type === 'npm' || install?.type === 'pnpm' || install?.type === 'yarn'
      ? [[...components(install.directory), 'node_modules']]
      : install?.type === 'pip' || install?.type === 'uv' || install?.type === 'poetry'
        ? [components(install.venv)]
        : [];
  for (const out of outputs) {
    for (const {p, parts} of shared) {
      if (within(parts, out) || within(out, parts)) {
        return `"shared" entry "${p}" overlaps ${out.join('/')}, which the install writes`;
      }
    }
  }
  return undefined;
}

/**
 * JSON that must mean one thing: not valid JSON, or a key twice in one object (JSON.parse keeps
 * the last one silently), is a ConfigError naming `where`; `hints` say how to fix each.
 */
export function parseJsonStrict(
  json: string,
  where: string,
  hints: {fix: string; keepOne: string},
): unknown {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (error) {
    throw new ConfigError(`${where} is not valid JSON: ${(error as Error).message}`, hints.fix, {
      cause: error,
    });
  }
  const twice = duplicateKeys(json);
  if (twice.length > 0) {
    throw new ConfigError(
      `${where} is invalid: ${twice.map(key => `"${key}" appears twice`).join('; ')}.`,
      `JSON.parse would keep only the last one: ${hints.keepOne}`,
    );
  }
  return data;
}

/**
 * The key paths (`install.type`, `assets.0.name`) that appear more than once in the same object.
 * JSON.parse has already accepted the text; jsonc-parser's visitor only walks it to see the keys.
 */
export function duplicateKeys(json: string): string[] {
  // One frame per open object or array: the keys seen so far, or the next array index.
  const frames: Array<{keys: Set<string>} | {index: number}> = [];
  const path: string[] = [];
  const found = new Set<string>();
  /** A value starts in the innermost container: in an array it takes the next index. */
  const enterValue = () => {
    const top = frames.at(-1);
    if (top && 'index' in top) path.push(String(top.index++));
  };
  const leaveValue = () => {
    const top = frames.at(-1);
    if (top) path.pop();
  };
  visit(json, {
    onObjectBegin: () => {
      enterValue();
      frames.push({keys: new Set()});
    },
    onArrayBegin: () => {
      enterValue();
      frames.push({index: 0});
    },
    onObjectEnd: () => {
      frames.pop();
      leaveValue();
    },
    onArrayEnd: () => {
      frames.pop();
      leaveValue();
    },
    onObjectProperty: key => {
      const top = frames.at(-1);
      if (top && 'keys' in top) {
        if (top.keys.has(key)) found.add([...path, key].join('.'));
        top.keys.add(key);
      }
      path.push(key);
    },
    onLiteralValue: () => {
      enterValue();
      leaveValue();
    },
  });
  return [...found];
}
