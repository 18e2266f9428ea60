import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {IntegrityError, UsageError} from '../support/errors.js';
import {isSha256Hex} from '../pins/integrity.js';

/**
 * What a node accepts a bundle against. The checksums inside a bundle only show that it is whole:
 * whoever re-packs one recomputes them. The node therefore pins the sha256 of the whole file,
 * taken from somewhere other than the bundle: the command line, or a checksum file it names.
 */
export type BundlePin = {sha256: string; from: string};

/** How the operator pins a bundle: exactly one of the three, on the command line. */
export type BundlePinOptions = {
  /** `--sha256 <hex>`: the sha256 of the whole bundle file. */
  sha256?: string | undefined;
  /** `--sha256-file F.sha256`: a `sha256sum` file, as `deploy bundle` writes beside the bundle. */
  sha256File?: string | undefined;
  /** `--insecure-unpinned-bundle`: accept a bundle on its own inner checksums alone. */
  unpinned?: boolean | undefined;
};

/** `deploy bundle --out F` writes the detached checksum of F to `F.sha256`. */
export const DETACHED_SUFFIX = '.sha256';

/** A checksum file is a few lines; anything bigger is not one. */
const MAX_SUMS_BYTES = 64 * 1024;

/**
 * The pin for deploying `bundle`, or null when the operator chose `--insecure-unpinned-bundle`.
 * Refuses a deploy with no pin, or with more than one way of giving it.
 */
export async function resolveBundlePin(
  options: BundlePinOptions,
  bundle: string,
  cwd: string,
): Promise<BundlePin | null> {
  const given = [
    options.sha256 !== undefined && '--sha256',
    options.sha256File !== undefined && '--sha256-file',
    options.unpinned === true && '--insecure-unpinned-bundle',
  ].filter(Boolean);
  if (given.length > 1)
    throw new UsageError(`Give only one of ${given.join(', ')}.`, 'See deploy --help.');
  if (options.sha256 !== undefined) {
    if (!isSha256Hex(options.sha256))
      throw new UsageError(`--sha256 must be 64 hex digits, not "${options.sha256}".`);
    return {sha256: options.sha256.toLowerCase(), from: '--sha256'};
  }
  if (options.sha256File !== undefined)
    return readChecksumFile(path.resolve(cwd, options.sha256File), bundle);
  // protection R43-pin-required: a bundle given with no pin is refused unless asked for
  if (options.unpinned) return null;
  const name = path.basename(bundle);
  throw new UsageError(
    `Refused to deploy ${bundle} unpinned: the checksums inside a bundle prove only that it is whole, not that it is the one that was published.`,
    `Pin it with --sha256-file ${name}${DETACHED_SUFFIX} (written by \`deploy bundle\` beside it; copy it from where the bundle was published, not from beside the copy) or --sha256 <hex>; --insecure-unpinned-bundle accepts it without a pin.`,
  );
}

/**
 * Read the sha256 for `bundle` from a `sha256sum` file (`<hex>  <name>`, `<hex> *<name>`, or the
 * `--tag` form `SHA256 (<name>) = <hex>`). The line naming the bundle's file name is used; a file
 * with a single line is used whatever it names, since a copy of the bundle may have been renamed
 * (the hash, not the name, is what is checked).
 */
export async function readChecksumFile(file: string, bundle: string): Promise<BundlePin> {
  let text: string;
  try {
    const stat = await fsp.stat(file);
    if (stat.size > MAX_SUMS_BYTES) throw new UsageError(`${file} is not a checksum file.`);
    text = await fsp.readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(
      `Cannot read the checksum file ${file}: ${(error as Error).message}.`,
      'Copy it from where the bundle was published (`deploy bundle` writes it beside the bundle).',
      {cause: error},
    );
  }
  const lines = parseChecksumLines(text, file);
  const name = path.basename(bundle);
  const named = lines.filter(line => path.basename(line.name) === name);
  const chosen = named.length > 0 ? named : lines.length === 1 ? lines : [];
  const first = chosen[0];
  if (!first || chosen.some(line => line.sha256 !== first.sha256)) {
    throw new IntegrityError(
      `${file} has ${chosen.length > 1 ? 'different sha256 lines' : 'no sha256 line'} for ${name}.`,
      'Use the checksum file published with this bundle.',
    );
  }
  return {sha256: first.sha256, from: file};
}

function parseChecksumLines(text: string, file: string): Array<{sha256: string; name: string}> {
  const lines: Array<{sha256: string; name: string}> = [];
  for (const line of text.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const plain = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    const tagged = /^SHA256 \((.+)\) = ([0-9a-fA-F]{64})$/.exec(line);
    const sha256 = plain?.[1] ?? tagged?.[2];
    const name = plain?.[2] ?? tagged?.[1];
    if (!sha256 || !name) {
      throw new IntegrityError(
        `${file} is not a sha256sum file: "${line.slice(0, 80)}".`,
        'Use the checksum file `deploy bundle` wrote, or `sha256sum <bundle>` output.',
      );
    }
    lines.push({sha256: sha256.toLowerCase(), name});
  }
  return lines;
}
