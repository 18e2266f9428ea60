import test from 'ava';
import {z} from 'zod';
import {parseDeployConfig} from '../../lib/pins/deploy-config.js';
import {configIssuesError, describeIssue, describeValue} from '../../lib/support/config-issues.js';
import {ConfigError} from '../../lib/support/errors.js';

const schema = z.strictObject({
  vendor: z.strictObject({url: z.string().min(1), rev: z.string()}),
  keep: z.number().int().min(1).optional(),
  mode: z.enum(['a', 'b']).optional(),
  list: z.array(z.string()).min(1).optional(),
});

function problems(data: unknown): string[] {
  const result = schema.safeParse(data);
  if (result.success) throw new Error('expected issues');
  return result.error.issues.map(issue =>
    describeIssue(issue, data, {'vendor.rev': 'a commit id'}),
  );
}

test('a missing key is named with what it must be and "it is missing"', t => {
  t.deepEqual(problems({vendor: {url: 'u'}}), [
    '"vendor.rev" must be a string (a commit id); it is missing',
  ]);
});

test('a value of the wrong type says what was found', t => {
  t.deepEqual(problems({vendor: {url: 5, rev: 'r'}}), [
    '"vendor.url" must be a string; it is the number 5',
  ]);
  t.deepEqual(problems({vendor: 'x'}), [
    '"vendor" must be an object ({...}); it is the string "x"',
  ]);
});

test("bounds, choices, lists and unknown keys in plain words, never Zod's", t => {
  const found = problems({vendor: {url: '', rev: 'r', extra: 1}, keep: 0, mode: 'c', list: []});
  t.deepEqual(found, [
    '"vendor.url" must not be empty; it is an empty string',
    'unknown key "vendor.extra"',
    '"keep" must be at least 1; it is the number 0',
    '"mode" must be "a" or "b"; it is the string "c"',
    '"list" must not be empty; it is an empty list',
  ]);
  for (const line of found) t.notRegex(line, /expected|received|Invalid input|Too small/);
});

test('the error names the file, every problem, and the doc in its hint', t => {
  const data = {vendor: {url: 'u'}};
  const result = schema.safeParse(data);
  t.false(result.success);
  const error = configIssuesError(
    {where: 'deploy.json', doc: 'docs/deploy-json.md', fix: 'Fix it.'},
    result.error?.issues ?? [],
    data,
  );
  t.true(error instanceof ConfigError);
  t.is(error.message, 'deploy.json is invalid: "vendor.rev" must be a string; it is missing.');
  t.is(error.hint, 'Fix it. See docs/deploy-json.md for the keys and their types.');
});

test('deploy.json: a wrong vendor.rev reads as ours', t => {
  t.throws(
    () => parseDeployConfig('{"vendor": {"url": "u", "rev": 5}}', 'deploy.json at abc1234'),
    {
      instanceOf: ConfigError,
      message:
        'deploy.json at abc1234 is invalid: "vendor.rev" must be a string (a commit id); it is the number 5.',
    },
  );
});

test('deploy.json: a shorthand is judged as expanded, and list entries are named by index', t => {
  const message = (text: string) =>
    t.throws(() => parseDeployConfig(text, 'deploy.json'), {instanceOf: ConfigError}).message;
  t.is(
    message('{"install": "bundler"}'),
    'deploy.json is invalid: "install.type" must be "npm", "pnpm", "yarn", "pip", "uv", "poetry" or "command"; it is the string "bundler".',
  );
  t.regex(message('{"install": {"command": []}}'), /"install\.command" must not be empty/);
  t.regex(message('{"shared": ["ok", 7]}'), /"shared\[1\]" must be a string; it is the number 7/);
});

test('describeValue says what a value is', t => {
  t.is(describeValue(null), 'null');
  t.is(describeValue(true), 'true');
  t.is(describeValue({}), 'an object');
  t.is(describeValue(['x']), 'a list');
});
