import {IntegrityProblems} from '../install/types.js';
import {pinFromPipHash} from './integrity.js';

/**
 * A requirements file read line by line exactly as pip reads it (pip/_internal/req/req_file.py:
 * `preprocess`, `join_lines`, `ignore_comments`, `break_args_options`, then optparse over
 * `SUPPORTED_OPTIONS`), so that the check and pip never see different files. Where pip's reading
 * depends on more than the text (environment variables, other files, a non-UTF-8 encoding,
 * abbreviated options), the line is refused instead of guessed at.
 */

/** One line of a hashed requirements file. */
export type PipRequirement = {
  name: string;
  version: string;
  /** Every `--hash` of the line, as one SRI string. */
  integrity: string;
  marker: string | undefined;
  line: number;
};

/** Python's whitespace (`str.isspace()`, and `\s` in a str pattern): wider than ASCII's. */
const PY_SPACE =
  '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
/** Where `str.splitlines()` breaks a line: not only at \n. */
// eslint-disable-next-line no-control-regex -- Python breaks lines at these control characters too
const PY_LINE_BREAK = /\r\n|[\n\v\f\r\x1c-\x1e\x85\u2028\u2029]/;
/** pip's COMMENT_RE, `(^|\s+)#.*$`, with Python's \s. */
const COMMENT = new RegExp(`(^|[${PY_SPACE}]+)#.*$`, 's');
/** COMMENT_RE.match(line): a line that is a comment from its start. */
const COMMENT_LINE = new RegExp(`^[${PY_SPACE}]*#`);
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');
/** pip replaces `${NAME}` with the variable from its own environment. */
const ENV_VAR = /\$\{[A-Z0-9_]+\}/;
/** PEP 263 coding declaration, as pip's auto_decode looks for it in the first two lines. */
const CODING = /coding[:=][ \t\n\r\f\v]*([-\w.]+)/;
const UTF8_NAMES = new Set(['utf-8', 'utf8', 'u8', 'utf', 'ascii', 'us-ascii']);

const NAME = '[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?';
/** PEP 440 versions, as `==` and `===` pins accept them. */
const VERSION =
  'v?(?:\\d+!)?\\d+(?:\\.\\d+)*(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?\\d*)?' +
  '(?:-\\d+|[-_.]?(?:post|rev|r)[-_.]?\\d*)?(?:[-_.]?dev[-_.]?\\d*)?(?:\\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?';
const PINNED = new RegExp(
  `^(${NAME}) *(\\[ *(?:${NAME}(?: *, *${NAME})*)? *\\])? *===? *(${VERSION}) *$`,
  'i',
);
/**
 * pip takes a requirement ending like an archive (`x==1+local.zip`) for a file in its working
 * directory (`_get_url_from_path`), not for a name and version.
 */
const ARCHIVE_END = /\.(zip|whl|tbz|txz|tlz|tgz|tar|bz2|xz|lz|lzma|gz)$/i;
type OptionRule = {names: string[]; takesValue: boolean; allowed: boolean; why: string};

/**
 * Every option pip accepts in a requirements file (SUPPORTED_OPTIONS and SUPPORTED_OPTIONS_REQ),
 * and whether this check lets it through. The table in docs/deploy-json.md says the same.
 */
export const PIP_FILE_OPTIONS: OptionRule[] = [
  {names: ['--hash'], takesValue: true, allowed: true, why: 'pins the file pip may install'},
  {names: ['--require-hashes'], takesValue: false, allowed: true, why: 'pip runs with it anyway'},
  {names: ['--no-index'], takesValue: false, allowed: true, why: 'pip runs with it anyway'},
  {names: ['--only-binary'], takesValue: true, allowed: true, why: 'only narrows pip to wheels'},
  {names: ['--prefer-binary'], takesValue: false, allowed: true, why: 'chooses among hashed files'},
  {names: ['--pre'], takesValue: false, allowed: true, why: 'every requirement is pinned anyway'},
  {
    names: ['-i', '--index-url'],
    takesValue: true,
    allowed: false,
    why: 'it names another package index',
  },
  {
    names: ['--extra-index-url'],
    takesValue: true,
    allowed: false,
    why: 'it names another package index',
  },
  {
    names: ['-f', '--find-links'],
    takesValue: true,
    allowed: false,
    why: 'pip looks for files there even with --no-index',
  },
  {
    names: ['--trusted-host'],
    takesValue: true,
    allowed: false,
    why: 'it names a host for pip to reach',
  },
  {
    names: ['-r', '--requirement'],
    takesValue: true,
    allowed: false,
    why: 'pip would read another file: keep every requirement in this one (pip-compile writes one file)',
  },
  {
    names: ['-c', '--constraint'],
    takesValue: true,
    allowed: false,
    why: 'pip would read another file: pin the versions in this one instead',
  },
  {
    names: ['-e', '--editable'],
    takesValue: true,
    allowed: false,
    why: 'it installs from a path or a VCS URL, not from a vendored file',
  },
  {
    names: ['--no-binary'],
    takesValue: true,
    allowed: false,
    why: 'pip would build from source, running build code and fetching build requirements this file does not pin',
  },
  {
    names: ['--global-option'],
    takesValue: true,
    allowed: false,
    why: 'it only applies to a source build (setup.py)',
  },
  {
    names: ['--config-settings'],
    takesValue: true,
    allowed: false,
    why: 'it only applies to a source build (build backend)',
  },
  {
    names: ['--use-feature'],
    takesValue: true,
    allowed: false,
    why: 'it changes how pip resolves and fetches',
  },
];

/**
 * Parse a requirements file in which every requirement is pinned with `==` and hashed with
 * `--hash=ALG:HEX`, reading it as pip does. Anything that could make pip look elsewhere, read
 * another file or pick another version is refused with its line number.
 */
export function parseRequirements(text: string, fileName: string): PipRequirement[] {
  const problems = new IntegrityProblems('pypi');
  const out: PipRequirement[] = [];
  const body = decodedText(text, fileName, problems);
  if (body !== undefined) {
    for (const [lineNo, line] of logicalLines(body)) {
      const where = `${fileName}:${lineNo}`;
      const result = readLine(line);
      if (typeof result === 'string') problems.add(where, `${where}: ${result}`, 'lockfile');
      else if (result) out.push({...result, line: lineNo});
    }
  }
  problems.throwIfAny(false);
  return out;
}

/**
 * The text pip decodes (pip's auto_decode): a UTF-8 byte order mark is dropped; another byte
 * order mark, bytes that are not UTF-8 or a coding declaration naming another encoding would make
 * pip read other characters than we do, so the file is refused. Without a declaration pip uses
 * the locale's encoding: the installer runs it in UTF-8 mode (PYTHONUTF8=1).
 */
function decodedText(
  text: string,
  fileName: string,
  problems: IntegrityProblems,
): string | undefined {
  const refuse = (why: string) => {
    problems.add(fileName, `${fileName}: ${why}`, 'lockfile');
    return undefined;
  };
  if (text.includes('\ufffd')) {
    refuse('is not UTF-8 text (or has a byte order mark other than UTF-8): save it as UTF-8');
    return;
  }
  // After a byte order mark pip reads no coding declaration.
  if (text.startsWith('\ufeff')) return text.slice(1);
  for (const line of text.split('\n').slice(0, 2)) {
    const coding = line.startsWith('#') ? CODING.exec(line) : null;
    const name = coding?.[1]?.toLowerCase().replace(/_/g, '-');
    if (name !== undefined && !UTF8_NAMES.has(name)) {
      refuse(
        `declares the encoding "${coding?.[1] ?? ''}", and pip would decode it so: save it as UTF-8 and remove that declaration`,
      );
      return;
    }
  }
  return text;
}

/**
 * pip's preprocess(): split as `str.splitlines()` does, join a line ending in `\` with the next
 * unless it is a comment line (pip does not join those), strip comments and blank lines. A joined
 * line keeps the number of its first line.
 */
export function logicalLines(text: string): Array<[number, string]> {
  const joined: Array<[number, string]> = [];
  let pending: string[] = [];
  let first = 0;
  text.split(PY_LINE_BREAK).forEach((physical, index) => {
    const isComment = COMMENT_LINE.test(physical);
    // protection R36-comment-continuation: a comment ending in \ is not joined, as in pip
    if (!physical.endsWith('\\') || isComment) {
      // pip prefixes a comment line with a space, so it is stripped even when joined.
      const line = isComment ? ` ${physical}` : physical;
      if (pending.length > 0) {
        joined.push([first, [...pending, line].join('')]);
        pending = [];
      } else joined.push([index + 1, line]);
    } else {
      if (pending.length === 0) first = index + 1;
      // Python's line.strip("\\"): backslashes go from both ends.
      pending.push(physical.replace(/^\\+|\\+$/g, ''));
    }
  });
  if (pending.length > 0) joined.push([first, pending.join('')]);
  const lines: Array<[number, string]> = [];
  for (const [lineNo, line] of joined) {
    const stripped = line.replace(COMMENT, '').replace(PY_STRIP, '');
    if (stripped !== '') lines.push([lineNo, stripped]);
  }
  return lines;
}

type LineReading = Omit<PipRequirement, 'line'> | undefined | string;

/** One logical line: a requirement, nothing (an allowed option line), or why it is refused. */
function readLine(line: string): LineReading {
  if (ENV_VAR.test(line)) {
    return `"${ENV_VAR.exec(line)?.[0] ?? ''}": pip replaces it with an environment variable of the node: write the value`;
  }
  if (/[^\t\x20-\x7e]/.test(line)) {
    return 'has a character other than printable ASCII outside a comment: pip may split or read it differently';
  }
  // pip's break_args_options: the requirement runs to the first space-separated word starting with -.
  const tokens = line.split(' ');
  const cut = tokens.findIndex(token => token.startsWith('-'));
  const args = (cut === -1 ? tokens : tokens.slice(0, cut)).join(' ');
  const options = cut === -1 ? '' : tokens.slice(cut).join(' ');
  const parsed = readOptions(options);
  if (typeof parsed === 'string') return parsed;
  if (args === '') {
    return parsed.length > 0
      ? `--hash with no requirement on its line (pip ignores it): put it on the requirement's line, continued with \\`
      : undefined;
  }
  return readRequirement(args, parsed);
}

/** The options part of a line, as optparse reads it: the hashes, or why it is refused. */
function readOptions(options: string): string[] | string {
  if (options === '') return [];
  // pip splits this part with shlex: quotes and backslashes would change the words.
  if (/['"\\]/.test(options))
    return `quotes or backslashes in options ("${options}") are not allowed`;
  const words = options.split(/[ \t]+/).filter(Boolean);
  const hashes: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i] ?? '';
    if (!word.startsWith('-')) {
      return `"${word}" follows the options of its line, where pip ignores it: put each requirement on its own line`;
    }
    const eq = word.indexOf('=');
    const name = word.startsWith('--') && eq !== -1 ? word.slice(0, eq) : word;
    const rule = PIP_FILE_OPTIONS.find(r => r.names.includes(name));
    if (!rule) return unknownOption(word);
    if (!rule.allowed) return `option ${spelled(name, rule)} is not allowed: ${rule.why}`;
    if (!rule.takesValue) {
      if (eq !== -1) return `option ${name} takes no value`;
      continue;
    }
    // optparse takes the next word as the value, whatever it looks like.
    const value = eq !== -1 ? word.slice(eq + 1) : words[++i];
    if (value === undefined || value === '') return `option ${name} needs a value`;
    if (name !== '--hash') continue;
    const hash = pinFromPipHash(value);
    if (!hash) return `bad hash "${value}": write --hash=sha256:<64 lowercase hex digits>`;
    hashes.push(hash);
  }
  return hashes;
}

/**
 * An option word this check does not let through. optparse also accepts an unambiguous prefix of
 * a long option (`--find` is `--find-links`) and short options run together (`-fURL`): say which.
 */
function unknownOption(word: string): string {
  const name = word.split('=')[0] ?? word;
  const longs = PIP_FILE_OPTIONS.flatMap(r => r.names.filter(n => n.startsWith('--')));
  const short = PIP_FILE_OPTIONS.find(r => r.names.includes(word.slice(0, 2)));
  const meant = name.startsWith('--')
    ? longs.filter(n => name.length > 2 && n.startsWith(name))
    : short
      ? [short.names.join(', ')]
      : [];
  const reads = meant.length > 0 ? ` (pip reads it as ${meant.join(' or ')})` : '';
  return `option ${name} is not allowed${reads}: write options in full, and only those docs/deploy-json.md allows`;
}

/** An option as the line wrote it, with its long name when it was written short. */
function spelled(name: string, rule: OptionRule): string {
  const long = rule.names.find(n => n.startsWith('--'));
  return name.startsWith('--') || !long ? name : `${name} (${long})`;
}

/** The requirement part of a line: `name[extras]==version ; marker`. */
function readRequirement(args: string, hashes: string[]): LineReading {
  const semicolon = args.indexOf(';');
  const spec = (semicolon === -1 ? args : args.slice(0, semicolon)).trim();
  const marker = semicolon === -1 ? undefined : args.slice(semicolon + 1).trim() || undefined;
  if (spec.includes('\t')) {
    return `a tab in "${spec}": pip splits a line at spaces only and would read all of it as the requirement: use spaces`;
  }
  const match = PINNED.exec(spec);
  if (!match?.[1] || !match[3] || ARCHIVE_END.test(spec)) {
    return /[/:@]|^\./.test(spec) || ARCHIVE_END.test(spec)
      ? `"${spec}" is a URL or a path: only name==version requirements are installed from the vendor repo`
      : `"${spec}" is not pinned to one version with ==`;
  }
  // protection R24-hashed: a requirement without a hash is refused
  if (hashes.length === 0) return `${match[1]}==${match[3]} has no --hash`;
  return {name: match[1], version: match[3], integrity: hashes.join(' '), marker};
}
