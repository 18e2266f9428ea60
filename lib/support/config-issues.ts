import type {z} from 'zod';
import {ConfigError} from './errors.js';

type Issue = z.core.$ZodIssue;

/** How a config file is named in messages, and what its keys mean in plain words. */
export type ConfigFile = {
  /** The file as the user knows it: `deploy.json at abc1234`, `/srv/app/node.json`. */
  where: string;
  /** The page of docs/ that lists the file's keys, for the hint. */
  doc: string;
  /** What a key holds, by dotted path with `*` for a list index: {'vendor.rev': 'a commit id'}. */
  keys?: Readonly<Record<string, string>>;
  /** What to do besides reading the doc (fix it in the app repository, remove the file ...). */
  fix?: string;
};

/**
 * The error for a config file Zod refused, in our words rather than Zod's ("expected string,
 * received undefined"): each problem names the key path, what it must be and what it is.
 *
 * @example
 * configIssuesError({where: 'deploy.json', doc: 'docs/deploy-json.md'}, result.error.issues, data)
 * // deploy.json is invalid: "vendor.rev" must be a string (a commit id); it is the number 5.
 */
export function configIssuesError(
  file: ConfigFile,
  issues: readonly Issue[],
  data: unknown,
): ConfigError {
  const problems = issues.map(issue => describeIssue(issue, data, file.keys ?? {}));
  const see = `See ${file.doc} for the keys and their types.`;
  return new ConfigError(
    `${file.where} is invalid: ${problems.join('; ')}.`,
    file.fix ? `${file.fix} ${see}` : see,
  );
}

/** One issue as `"key.path" must be ...; it is ...`. */
export function describeIssue(
  issue: Issue,
  data: unknown,
  keys: Readonly<Record<string, string>> = {},
): string {
  if (issue.code === 'unrecognized_keys')
    return issue.keys.map(k => `unknown key "${keyPath([...issue.path, k])}"`).join(', ');
  const key = issue.path.length > 0 ? `"${keyPath(issue.path)}"` : 'the file';
  const meaning = keys[issue.path.map(p => (typeof p === 'number' ? '*' : String(p))).join('.')];
  // What the schema saw (after a shorthand such as "npm" was expanded), when the caller asked
  // Zod for it (reportInput); else the value at the path of the file as written.
  const seen = 'input' in issue ? issue.input : valueAt(data, issue.path);
  // A discriminated union reports the whole object at the discriminator's path.
  const value =
    issue.code === 'invalid_union' && issue.discriminator && isRecord(seen)
      ? seen[issue.discriminator]
      : seen;
  const what = expectation(issue, value);
  const actual = value === undefined ? 'it is missing' : `it is ${describeValue(value)}`;
  return `${key} ${what}${meaning ? ` (${meaning})` : ''}; ${actual}`;
}

/** What the value must be, in plain words. Messages the schema gives itself ("must ...") stay. */
function expectation(issue: Issue, value: unknown): string {
  if (issue.message.startsWith('must ')) return issue.message;
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${typeName(issue.expected)}`;
    case 'too_small':
      return bound(issue.origin, 'at least', issue.minimum, issue.inclusive, value);
    case 'too_big':
      return bound(issue.origin, 'at most', issue.maximum, issue.inclusive, value);
    case 'invalid_value':
      return `must be ${oneOf(issue.values)}`;
    case 'invalid_format':
      return issue.format === 'regex' ? 'has the wrong form' : `must be ${typeName(issue.format)}`;
    case 'invalid_union': {
      // A discriminated union names the values its discriminator takes.
      const options = 'options' in issue ? (issue.options ?? []) : [];
      return options.length > 0
        ? `must be ${oneOf(options)}`
        : 'matches none of the forms this key accepts';
    }
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`;
    default:
      return `is not accepted (${issue.message})`;
  }
}

function bound(
  origin: string,
  words: string,
  limit: number | bigint,
  inclusive: boolean | undefined,
  value: unknown,
): string {
  const listOrText = typeof value === 'string' || Array.isArray(value);
  if (
    (origin === 'string' || origin === 'array') &&
    words === 'at least' &&
    limit === 1 &&
    listOrText
  )
    return 'must not be empty';
  const unit =
    origin === 'string' ? ' characters' : origin === 'array' || origin === 'set' ? ' entries' : '';
  if (inclusive === false) return `must be ${words === 'at least' ? 'more' : 'less'} than ${limit}`;
  return `must ${unit ? 'have' : 'be'} ${words} ${limit}${unit}`;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list ([...])',
  object: 'an object ({...})',
  record: 'an object ({...})',
  null: 'null',
  url: 'a URL',
  nonoptional: 'given',
};

function typeName(expected: string): string {
  return TYPE_NAMES[expected] ?? `a ${expected}`;
}

/** The value found, as a user would say it: the number 5, the string "x", a list, null. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  switch (typeof value) {
    case 'string': {
      const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
      return value === '' ? 'an empty string' : `the string ${JSON.stringify(shown)}`;
    }
    case 'number':
      return `the number ${value}`;
    case 'boolean':
      return String(value);
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

/** `"a", "b" or "c"`. */
function oneOf(values: readonly unknown[]): string {
  const quoted = values.map(v => JSON.stringify(v));
  return quoted.length > 1
    ? `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1) ?? ''}`
    : (quoted[0] ?? 'nothing');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `shared[0].path`, as the other deploy.json messages name a key. */
function keyPath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i > 0 ? '.' : ''}${String(p)}`))
    .join('');
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let current = data;
  for (const part of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[part];
  }
  return current;
}
