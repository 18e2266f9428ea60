import type {Argv} from 'yargs';
import {promises as fsp} from 'node:fs';
import {ConfigError, UsageError} from '../support/errors.js';
import type {CliContext} from './io.js';

/** `--root`, with DEPLOY_ROOT standing for it. */
export function withRoot<T>(y: Argv<T>) {
  return y.option('root', {
    type: 'string',
    describe: 'Node root holding releases/ and current (default: $DEPLOY_ROOT)',
  });
}

export function withJson<T>(y: Argv<T>) {
  return y.option('json', {
    type: 'boolean',
    default: false,
    describe: 'Print one JSON result object',
  });
}

export function requireRoot(argv: {root?: string | undefined}, ctx: CliContext): string {
  const root = argv.root ?? ctx.env.DEPLOY_ROOT;
  if (!root) {
    throw new UsageError('No node root given.', 'Pass --root <dir> or set DEPLOY_ROOT.');
  }
  return root;
}

/**
 * The node root of a command that reads or changes releases: it must exist. Only a deploy
 * creates a root; a typo given to status or rollback used to read as "no releases", or create it.
 */
export async function requireExistingRoot(
  argv: {root?: string | undefined},
  ctx: CliContext,
): Promise<string> {
  const root = requireRoot(argv, ctx);
  const stat = await fsp.stat(root).catch(() => undefined);
  if (!stat?.isDirectory()) {
    throw new ConfigError(
      `Node root ${root} does not exist.`,
      'Check --root (or DEPLOY_ROOT); the first `deploy --rev ... --repo ...` creates it.',
    );
  }
  return root;
}

/** `--rev`, `--repo` and `--vendor-repo`: a changeset named without a node root (check, bundle). */
export function withChangeset<T>(y: Argv<T>) {
  return y
    .option('rev', {
      type: 'string',
      demandOption: true,
      describe: 'Commit, tag or branch of the app repository',
    })
    .option('repo', {
      type: 'string',
      demandOption: true,
      describe: 'App repository: http(s) URL or local path',
    })
    .option('vendor-repo', {
      type: 'string',
      describe: 'Fetch the pinned vendor commit from here instead',
    });
}

/** `--signing-policy`: the node's (or CI's) own policy file, never one from the changeset. */
export const SIGNING_POLICY_OPTION = {
  'signing-policy': {
    type: 'string',
    describe:
      'Refuse a changeset this signing policy does not cover (docs/signing.md; default: $DEPLOY_SIGNING_POLICY)',
  },
} as const;

/** The signing policy file: `--signing-policy`, else DEPLOY_SIGNING_POLICY, else none. */
export function signingPolicy(
  argv: {'signing-policy'?: string | undefined},
  ctx: CliContext,
): string | undefined {
  const file = argv['signing-policy'] ?? ctx.env.DEPLOY_SIGNING_POLICY;
  return file === '' ? undefined : file;
}
