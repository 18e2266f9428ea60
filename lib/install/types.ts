import {IntegrityError} from '../support/errors.js';
import type {TreeFile} from '../git/export.js';
import type {Reporter} from '../support/reporter.js';
import type {VendorManifest} from '../pins/vendor-manifest.js';
import type {ReuseSpec} from './reuse.js';

export type InstallContext = {
  /** The release being built. */
  releaseDir: string;
  /** Its vendor tree, when the app pins one. */
  vendorDir: string | undefined;
  manifest: VendorManifest | undefined;
  /** Where installer output goes. */
  logFile: string;
  /** The node's environment; installers take only PATH and locale from it. */
  env: NodeJS.ProcessEnv;
  reporter: Reporter;
  timeoutMs: number;
  /** Where installers make their scratch directories (default: the system's temp dir). */
  scratchDir?: string | undefined;
};

/** An artifact checked against the hash the app pins, ready for the installer. */
export type VerifiedArtifact = {
  name: string;
  version: string;
  integrity: string;
  file: string;
  /** How errors name it: name@version (path in the vendor tree). */
  label?: string;
};

/** One kind of installer: npm, pip or a command. */
export interface Installer {
  readonly kind: 'npm' | 'pnpm' | 'yarn' | 'pip' | 'uv' | 'poetry' | 'command';
  readonly describe: string;
  /**
   * Check every artifact the install will use against the hash pinned in git (lockfile,
   * requirements, manifest) before anything runs. Throws an IntegrityError listing every problem.
   */
  verify(ctx: InstallContext): Promise<VerifiedArtifact[]>;
  /**
   * Install. `alongside` (only for installers with {@link Installer.early}) is work to do while
   * the installer's own process runs: writing the rest of the release. If it fails, the
   * installer's process is stopped and its error is the install's.
   */
  install(
    ctx: InstallContext,
    verified: VerifiedArtifact[],
    alongside?: () => Promise<void>,
  ): Promise<void>;
  /**
   * For an installer that can start before the whole release is written: `inputs` names the
   * app entries it reads (written first, with the vendor tree), or is undefined when it needs the
   * whole tree; `blocker`, asked once those are written, says why it must wait for the rest after
   * all, or is undefined when it need not.
   */
  early?: {
    inputs(tree: TreeFile[]): Set<string> | undefined;
    blocker(ctx: InstallContext): Promise<string | undefined>;
  };
  /**
   * For installers whose outputs a later release may copy instead of installing again
   * (lib/install/reuse.ts): a key over every input of the install, and the directories it
   * produces (with how to make a copy right for its new place); or why this install cannot be
   * reused.
   */
  reuse?(ctx: InstallContext, verified: VerifiedArtifact[]): Promise<ReuseSpec | {reason: string}>;
}

type ProblemKind = 'missing' | 'tampered' | 'lockfile' | 'hostile';

/** Problems found while verifying, reported together so one run shows all of them. */
export class IntegrityProblems {
  private readonly items: Array<{name: string; message: string; kind: ProblemKind}> = [];

  /** `lockfileHint` says how to fix a lockfile other than package-lock.json or requirements. */
  constructor(
    private readonly ecosystem: 'npm' | 'pypi' | 'github',
    private readonly lockfileHint?: string,
  ) {}

  add(name: string, message: string, kind: ProblemKind): void {
    this.items.push({name, message, kind});
  }

  get names(): string[] {
    return this.items.map(i => i.name);
  }

  throwIfAny(noVendorRepo: boolean): void {
    if (this.items.length === 0) return;
    const shown = this.items.slice(0, 20).map(i => `  - ${i.message}`);
    if (this.items.length > 20) shown.push(`  - ... and ${this.items.length - 20} more`);
    const kinds = new Set(this.items.map(i => i.kind));
    const hints: string[] = [];
    if (kinds.has('lockfile')) {
      hints.push(
        this.lockfileHint ??
          (this.ecosystem === 'npm'
            ? 'Fix package-lock.json: every entry needs "resolved" on an allowed registry (deploy.json install.registries) and a sha512 "integrity"; regenerate it with `npm install --package-lock-only`.'
            : 'Pin every requirement with == and at least one --hash=sha256:...; `pip-compile --generate-hashes` writes such a file.'),
      );
    }
    if (kinds.has('missing')) {
      hints.push(
        noVendorRepo
          ? 'The app pins no vendor repository: add one (deploy.json "vendor") holding these artifacts.'
          : 'Add the missing artifacts to the vendor repository with vendor-sync, commit, and pin the new vendor commit in the app.',
      );
    }
    if (kinds.has('tampered')) {
      hints.push(
        'A vendored file does not match its pinned hash: restore it from upstream with vendor-sync.',
      );
    }
    if (kinds.has('hostile')) {
      hints.push(
        'A vendored archive holds entries no installer may unpack: remove it from the vendor repository and report it upstream.',
      );
    }
    throw new IntegrityError(
      `${this.items.length} ${this.ecosystem} artifact problem${this.items.length === 1 ? '' : 's'}; nothing was installed:\n${shown.join('\n')}`,
      hints.join(' '),
    );
  }
}
