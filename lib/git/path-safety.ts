import {IntegrityError} from '../support/errors.js';

/**
 * Code points HFS+ ignores when comparing names, so ".g\u200cit" is ".git" there
 * (the list git itself uses in utf8.c, is_hfs_dotgit).
 */
const HFS_IGNORABLE = /[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/gu;

/**
 * Why a tree entry name must not be written, or undefined when it is safe.
 * Refused: empty, ".", "..", names with "/", "\" or NUL, and every spelling of ".git" that some
 * file system treats as ".git" (case, trailing dots and spaces, NTFS streams, 8.3 short names,
 * HFS+ ignorable code points).
 */
// protection R13-entry-name: tree entry names that could leave the release are refused
export function unsafeEntryName(name: string): string | undefined {
  if (name === '') return 'empty name';
  if (name === '.' || name === '..') return `"${name}" would leave its directory`;
  if (name.includes('/') || name.includes('\\')) return 'name contains a path separator';
  if (name.includes('\0')) return 'name contains NUL';
  let folded = name.replace(HFS_IGNORABLE, '').toLowerCase();
  const colon = folded.indexOf(':');
  if (colon !== -1) folded = folded.slice(0, colon);
  folded = folded.replace(/[. ]+$/, '');
  if (folded === '.git' || folded === 'git~1') return 'name is a spelling of .git';
  if (folded === '' && name !== '') return 'name is only dots and spaces';
  return undefined;
}

/** Throw an {@link IntegrityError} for an unsafe entry name at `dir/name`. */
export function assertSafeEntryName(name: string, dir: string, source: string): void {
  const reason = unsafeEntryName(name);
  if (reason) {
    const shown = JSON.stringify(dir ? `${dir}/${name}` : name);
    throw new IntegrityError(
      `Refused tree entry ${shown} in ${source}: ${reason}.`,
      'The commit contains a path that could write outside the release or into git metadata; ' +
        'remove it from the repository.',
    );
  }
}
