import path from 'node:path';
import yargs, {type CommandModule, type Options} from 'yargs';
import {PassThrough} from 'node:stream';
import {
  cliReporter,
  defaultContext,
  liveTerminal,
  writeJson,
  type CliContext,
} from '../lib/cli/io.js';
import {runCli} from '../lib/cli/run.js';
import {withHelp} from '../lib/cli/help.js';
import {readVendorSyncConfig, type VendorSyncConfig} from './config-file.js';
import {ExitCode, SourceError, UsageError} from '../lib/support/errors.js';
import {createHttpClient} from '../lib/http/client.js';
import {currentPlatform, parsePlatform} from '../lib/pins/npm-lockfile.js';
import type {PythonTarget} from './sources/wheel-tags.js';
import {
  githubToken as readGithubToken,
  vendorSyncGitToken,
  vendorSyncNpmToken,
  vendorSyncSigningPassphrase,
} from '../lib/support/credentials.js';
import {loadSshSigner, type SshSigner} from '../lib/signing/ssh-sign.js';
import {Network, proxySettingsFromEnv} from '../lib/http/policy.js';
import {Http, USER_AGENT} from './http.js';
import {loadNpmSettings} from './npm-config.js';
import {outdated, type OutdatedRow} from './outdated.js';
import {detailLines} from './progress.js';
import {githubClient, type GithubClient} from '../lib/http/github.js';
import type {NpmUpstream} from './sources/npm.js';
import {vendorSync, type SyncDeps, type SyncOptions} from './sync.js';
import {openVendorRepo} from './vendor-repo.js';

type Common = {
  vendor: string;
  'npm-registry'?: string;
  'npm-scope-registry'?: string[];
  'pypi-index': string;
  'github-api-url': string;
  json: boolean;
};

/** The options every command shares: the vendor repository and the upstreams. */
const UPSTREAM_OPTIONS = {
  vendor: {
    type: 'string',
    demandOption: true,
    describe: 'Vendor repository: work tree path or http(s) URL',
  },
  'npm-registry': {
    type: 'string',
    describe: 'Fetch npm tarballs from this registry (a mirror) instead of the lockfile URLs',
  },
  'npm-scope-registry': {
    type: 'string',
    array: true,
    describe: 'Registry for one scope: @scope=URL (repeatable)',
  },
  'pypi-index': {
    type: 'string',
    default: 'https://pypi.org/simple/',
    describe: 'PEP 503 simple index URL',
  },
  'github-api-url': {
    type: 'string',
    default: 'https://api.github.com',
    describe: 'GitHub API URL (GitHub Enterprise: https://HOST/api/v3)',
  },
  json: {type: 'boolean', default: false, describe: 'Print one JSON result object'},
} as const satisfies Record<string, Options>;

/**
 * Upstream settings and credentials from the command line, the environment and the npm
 * configuration (the command line wins). `appDir` is the app's work tree, for its .npmrc.
 */
async function upstreams(argv: Common, ctx: CliContext, appDir: string | undefined) {
  const githubToken = readGithubToken(ctx.env);
  const npmToken = vendorSyncNpmToken(ctx.env);
  const npmrc = await loadNpmSettings({env: ctx.env, appDir});
  if (npmrc.ignored.length > 0) {
    ctx.stderr.write(
      `vendor-sync: the app's .npmrc may only name registries; ignored: ${npmrc.ignored.join(', ')}\n`,
    );
  }
  const scopeRegistries = (argv['npm-scope-registry'] ?? []).map(scopeRegistry);
  const scopes = new Map([...npmrc.upstream.scopes, ...scopeRegistries]);
  const tokens = new Map<string, string>();
  if (npmToken) {
    for (const url of [argv['npm-registry'], ...scopeRegistries.map(([, url]) => url)])
      if (url) tokens.set(new URL(url).origin, npmToken);
  }
  const npm: NpmUpstream = {registry: argv['npm-registry'] ?? npmrc.upstream.registry, scopes};
  const network = new Network(proxySettingsFromEnv(ctx.env), npmrc.rule ? [npmrc.rule] : []);
  let client: GithubClient | undefined;
  const github = () =>
    (client ??= githubClient({
      apiUrl: argv['github-api-url'],
      token: githubToken,
      fetch: network.fetch,
      userAgent: USER_AGENT,
    }));
  return {
    npm,
    npmDefaultRegistry: argv['npm-registry'] ?? npmrc.defaultRegistry,
    github,
    githubToken,
    pypiIndex: argv['pypi-index'],
    http: new Http({tokens, credentials: npmrc.credentials, network}),
    gitHttp: createHttpClient({env: ctx.env}),
  };
}

type Upstreams = Awaited<ReturnType<typeof upstreams>>;

/** `--npm-scope-registry @scope=URL` as a scope and its registry. */
function scopeRegistry(spec: string): [string, string] {
  const [scope, url] = spec.split(/=(.*)/s);
  if (!scope?.startsWith('@') || !url)
    throw new UsageError(`--npm-scope-registry "${spec}" is not @scope=URL.`);
  return [scope, url];
}

/** The app's work tree when `--app` is a path (not a URL). */
function appWorkTree(app: string, cwd: string): string | undefined {
  return /^https?:\/\//i.test(app) ? undefined : path.resolve(cwd, app);
}

type SyncArgs = Common & {
  app: string;
  rev?: string;
  keep: boolean;
  'dry-run': boolean;
  push: boolean;
  'update-pin': boolean;
  pr: boolean;
  'github-repo'?: string;
  branch: string;
  base: string;
  platform?: string[];
  'python-version'?: string;
  concurrency: number;
  'signing-key'?: string;
};

/** The options of the sync command (the default one), after {@link UPSTREAM_OPTIONS}. */
const SYNC_OPTIONS = {
  app: {
    type: 'string',
    demandOption: true,
    describe: 'App repository: work tree path or http(s) URL',
  },
  rev: {
    type: 'string',
    describe: 'App changeset to read (default: the work tree as it is, or HEAD of a URL)',
  },
  keep: {type: 'boolean', default: false, describe: 'Keep artifacts nothing needs any more'},
  'dry-run': {type: 'boolean', default: false, describe: 'Print the plan; change nothing'},
  push: {type: 'boolean', default: false, describe: 'Push the vendor commit to its remote'},
  'update-pin': {
    type: 'boolean',
    default: false,
    describe: "Write the new vendor commit into the app work tree's pin",
  },
  pr: {
    type: 'boolean',
    default: false,
    describe: 'Push a branch and open (or update) a pull request on GitHub',
  },
  'github-repo': {
    type: 'string',
    describe: 'owner/name of the vendor repository on GitHub (for --pr)',
  },
  branch: {type: 'string', default: 'vendor-sync/update', describe: 'Branch for --pr'},
  base: {type: 'string', default: 'main', describe: 'Base branch for --pr'},
  platform: {
    type: 'string',
    array: true,
    describe:
      'Platforms of the nodes, e.g. linux-x64 (default: this one): for optional npm packages, and with --python-version for wheels',
  },
  'python-version': {
    type: 'string',
    describe:
      "The nodes' Python, e.g. 3.11: vendor only the PyPI wheels they install on --platform (the sdist only when none fits)",
  },
  concurrency: {type: 'number', default: 8, describe: 'Downloads at once (1-16)'},
  'signing-key': {
    type: 'string',
    describe:
      'Sign the vendor commit with this OpenSSH private key (default: $VENDOR_SYNC_SIGNING_KEY)',
  },
} as const satisfies Record<string, Options>;

function syncCommand(ctx: CliContext, config: VendorSyncConfig): CommandModule<object, SyncArgs> {
  return {
    command: '$0',
    describe:
      'Vendor every artifact the app needs at a changeset; commit, push, open a pull request',
    builder: y =>
      withHelp(y.options(UPSTREAM_OPTIONS).options(SYNC_OPTIONS).config(config), {
        usage: 'vendor-sync --app <path|url> --vendor <path|url> [options]',
        examples: [
          ['vendor-sync --app . --vendor ../vendor', 'Vendor what the app here needs, and commit'],
          [
            'vendor-sync --app . --vendor ../vendor --update-pin',
            "Also write the new vendor commit into the app's deploy.json",
          ],
          [
            'vendor-sync --app . --vendor https://git.example/vendor.git --pr --github-repo org/vendor',
            'Push a branch and open a pull request',
          ],
        ],
        doc: 'docs/vendor-sync.md',
      }),
    handler: argv => runSync(ctx, argv),
  };
}

/** `vendor-sync --app A --vendor V`: the sync, and its one-line (or JSON) result. */
async function runSync(ctx: CliContext, argv: SyncArgs): Promise<void> {
  if (argv.pr && !argv['github-repo']) throw new UsageError('--pr needs --github-repo owner/name.');
  if (!(argv.concurrency >= 1 && argv.concurrency <= 16))
    throw new UsageError('--concurrency must be 1 to 16.');
  // Before any download: a key that cannot be read fails the run at once.
  const signer = await signingKey(argv['signing-key'], ctx);
  const up = await upstreams(argv, ctx, appWorkTree(argv.app, ctx.cwd));
  const deps = syncDeps(ctx, up, signer);
  deps.upstreams.pypiTarget = pythonTarget(argv);
  const result = await vendorSync(syncOptions(argv), deps);
  if (argv.json) writeJson(ctx.stdout, {ok: true, command: 'vendor-sync', ...result});
  else if (result.dryRun)
    ctx.stdout.write(
      `dry run: ${result.downloads} to download, ${result.changes.length} changes; nothing written\n`,
    );
  else
    ctx.stdout.write(
      `${result.vendorCommit ? `vendor at ${result.vendorCommit}` : 'vendor repository is empty'}\n`,
    );
}

/** The nodes a Python app is vendored for, when --python-version names them (else every file). */
function pythonTarget(argv: SyncArgs): PythonTarget | undefined {
  const version = argv['python-version'];
  if (version === undefined) return undefined;
  if (!/^3\.\d{1,2}$/.test(version)) {
    throw new UsageError(
      `--python-version must be a Python version such as 3.11, not "${version}".`,
      'Give the major.minor version of the Python on the nodes (python3 --version).',
    );
  }
  return {platforms: argv.platform ?? [`${process.platform}-${process.arch}`], version};
}

function syncOptions(argv: SyncArgs): SyncOptions {
  return {
    app: argv.app,
    rev: argv.rev,
    vendor: argv.vendor,
    keepUnused: argv.keep,
    dryRun: argv['dry-run'],
    push: argv.push,
    updatePin: argv['update-pin'],
    pr: argv.pr
      ? {repo: argv['github-repo'] ?? '', branch: argv.branch, base: argv.base}
      : undefined,
    platforms: argv.platform?.map(parsePlatform) ?? [currentPlatform()],
    concurrency: argv.concurrency,
  };
}

function syncDeps(ctx: CliContext, up: Upstreams, signer: SyncDeps['signer']): SyncDeps {
  const reporter = cliReporter(ctx);
  return {
    http: up.http,
    gitHttp: up.gitHttp,
    gitCredentials: vendorSyncGitToken(ctx.env),
    upstreams: {
      npm: up.npm,
      pypiIndex: up.pypiIndex,
      github: up.github,
      githubToken: up.githubToken,
    },
    reporter,
    // A bar on a terminal; elsewhere one line per artifact, with --verbose only.
    progressStream: ctx.quiet
      ? new PassThrough()
      : liveTerminal(ctx)
        ? ctx.stderr
        : detailLines(reporter),
    cwd: ctx.cwd,
    clock: () => new Date(),
    author: {
      name: ctx.env.VENDOR_SYNC_AUTHOR_NAME ?? 'repodeploy vendor-sync',
      email: ctx.env.VENDOR_SYNC_AUTHOR_EMAIL ?? 'vendor-sync@repodeploy.invalid',
    },
    signer,
  };
}

/** The signer of `--signing-key` (or VENDOR_SYNC_SIGNING_KEY), with its passphrase if any. */
async function signingKey(
  option: string | undefined,
  ctx: CliContext,
): Promise<SshSigner | undefined> {
  const file = option ?? ctx.env.VENDOR_SYNC_SIGNING_KEY;
  if (!file) return undefined;
  const passphrase = vendorSyncSigningPassphrase(ctx.env);
  return loadSshSigner(path.resolve(ctx.cwd, file), passphrase ? {passphrase} : {});
}

type OutdatedArgs = Common & {'python-version'?: string};

function outdatedCommand(
  ctx: CliContext,
  config: VendorSyncConfig,
): CommandModule<object, OutdatedArgs> {
  return {
    command: 'outdated',
    describe: 'For each vendored artifact, the pinned version and the newest upstream release',
    builder: y =>
      withHelp(
        y.options(UPSTREAM_OPTIONS).config(config).option('python-version', {
          type: 'string',
          describe: 'The Python the app runs on (e.g. 3.11): skip PyPI releases that exclude it',
        }),
        {
          usage: 'vendor-sync outdated --vendor <path|url> [options]',
          examples: [
            [
              'vendor-sync outdated --vendor ../vendor',
              'A table; exit 1 when something is outdated',
            ],
            ['vendor-sync outdated --vendor ../vendor --json', 'The same as JSON'],
            [
              'vendor-sync outdated --vendor ../vendor --python-version 3.11',
              'Skip PyPI releases that exclude Python 3.11',
            ],
          ],
          doc: 'docs/vendor-sync.md',
        },
      ),
    handler: async argv => {
      const python = argv['python-version'];
      if (python !== undefined && !/^\d+(\.\d+){0,2}$/.test(python))
        throw new UsageError(`--python-version "${python}" is not a Python version such as 3.11.`);
      const up = await upstreams(argv, ctx, undefined);
      const repo = await openVendorRepo({
        vendor: argv.vendor,
        cwd: ctx.cwd,
        http: up.gitHttp,
        credentials: vendorSyncGitToken(ctx.env),
      });
      try {
        const rows = await outdated({
          vendorDir: repo.dir,
          http: up.http,
          npm: up.npm,
          npmDefaultRegistry: up.npmDefaultRegistry,
          pypiIndex: up.pypiIndex,
          pythonVersion: python,
          github: up.github,
        });
        writeOutdated(ctx, rows, argv.json);
      } finally {
        await repo.cleanup();
      }
    },
  };
}

/**
 * The report, every row included. Rows that could not be looked up are marked `?` and their
 * reasons go to stderr; the exit is then 5 (ESOURCE), so a script can tell a complete report
 * from one with gaps.
 */
function writeOutdated(ctx: CliContext, rows: OutdatedRow[], json: boolean): void {
  const unknown = rows.filter(r => r.unknown !== null);
  const error =
    unknown.length === 0
      ? undefined
      : new SourceError(
          `${unknown.length} of ${rows.length} artifacts could not be looked up upstream: ${unknown.map(r => r.name).join(', ')}.`,
          'Check the upstream options (--npm-registry, --pypi-index, --github-api-url) and the names in the vendor manifest.',
        );
  if (json) {
    writeJson(ctx.stdout, {
      ok: error === undefined,
      command: 'outdated',
      artifacts: rows,
      ...(error
        ? {
            error: {
              code: error.code,
              exitCode: error.exitCode,
              message: error.message,
              hint: error.hint ?? null,
            },
          }
        : {}),
    });
  } else ctx.stdout.write(outdatedTable(rows));
  // As `npm outdated`: a script can tell "something to update" from "all current".
  if (rows.some(r => r.outdated)) ctx.exitCode = ExitCode.failure;
  if (!error) return;
  for (const r of unknown)
    ctx.stderr.write(`warning: ${r.ecosystem} ${r.name}: unknown: ${r.unknown ?? ''}\n`);
  ctx.stderr.write(`error: ${error.message}\nhint: ${error.hint ?? ''}\n`);
  ctx.exitCode = error.exitCode;
}

/** The human report: columns as wide as their widest cell, and a legend for the markers. */
function outdatedTable(rows: OutdatedRow[]): string {
  const cells = [
    ['', 'ecosystem', 'name', 'vendored', 'latest'],
    ...rows.map(r => [
      r.unknown !== null ? '?' : r.outdated ? '!' : ' ',
      r.ecosystem,
      r.name,
      r.current,
      r.latest ?? 'unknown',
    ]),
  ];
  const widths = [0, 1, 2, 3].map(i => Math.max(...cells.map(c => (c[i] ?? '').length)));
  const lines = cells.map(c =>
    c.map((cell, i) => (i < widths.length ? cell.padEnd(widths[i] ?? 0) : cell)).join(' '),
  );
  const outdatedCount = rows.filter(r => r.outdated).length;
  lines.push(
    `${outdatedCount} of ${rows.length} outdated. !: a newer upstream release; ?: not looked up (see the warnings)`,
  );
  return `${lines.join('\n')}\n`;
}

/** The `vendor-sync` command. Returns the exit code; `bin/vendor-sync.js` sets it. */
export async function main(args: string[], ctx: CliContext = defaultContext()): Promise<number> {
  // Read here, thrown inside runCli (by build): a bad file is reported as any config error.
  const config = await readVendorSyncConfig(args, ctx.env, ctx.cwd).catch(
    (error: unknown) => error,
  );
  const spec = {bin: 'vendor-sync', commands: ['outdated', 'completion'], envPrefix: 'VENDOR_SYNC'};
  return runCli(args, ctx, spec, () => {
    if (config instanceof Error) throw config;
    const {app, ...upstream} = config as VendorSyncConfig;
    return yargs(args)
      .scriptName('vendor-sync')
      .command(syncCommand(ctx, {...upstream, ...(app === undefined ? {} : {app})}))
      .command(outdatedCommand(ctx, upstream));
  });
}
