import test from 'ava';
import {duplicateKeys, parseDeployConfig} from '../../lib/pins/deploy-config.js';
import {ConfigError} from '../../lib/support/errors.js';
import {detectInstall} from '../../lib/pins/detect-install.js';

const rev = 'a'.repeat(40);

test('a key twice in deploy.json is refused, naming its path', t => {
  const text = `{"vendor": {"url": "u", "rev": "${rev}"}, "install": {"type": "npm", "type": "pip"}}`;
  t.throws(() => parseDeployConfig(text, 'deploy.json at abc1234'), {
    instanceOf: ConfigError,
    message: /deploy\.json at abc1234 is invalid: "install\.type" appears twice/,
  });
});

test('a top-level key twice is refused even when both values are valid', t => {
  const pin = `{"url": "u", "rev": "${rev}"}`;
  t.throws(() => parseDeployConfig(`{"vendor": ${pin}, "vendor": ${pin}}`, 'deploy.json'), {
    instanceOf: ConfigError,
    message: /"vendor" appears twice/,
  });
});

test('duplicateKeys names keys inside arrays by index, and each path once', t => {
  const text = JSON.stringify({
    assets: [{repo: 'a/b'}, {repo: 'c/d', name: 'x'}],
    hooks: {after_switch: ['x']},
  }).replace('"name":"x"', '"name":"x","name":"y","name":"z"');
  t.deepEqual(duplicateKeys(text), ['assets.1.name']);
  t.deepEqual(duplicateKeys('{"a": {"b": 1}, "c": [[{"b": 1}], {"b": 2, "d": 3}]}'), []);
  t.deepEqual(duplicateKeys('{"a": [1, {"k": 1, "k": 2}], "b": {"a": 1}, "a": 2}'), ['a.1.k', 'a']);
});

test('the same key in sibling objects is not a duplicate', t => {
  const text = JSON.stringify({
    hooks: {after_switch: ['a'], before_switch: ['b']},
    healthcheck: {command: ['true'], timeout: 3},
  });
  t.deepEqual(parseDeployConfig(text, 'deploy.json').healthcheck, {command: ['true'], timeout: 3});
});

test('a leading UTF-8 BOM is accepted, as npm accepts it in package.json', t => {
  const text = `\uFEFF{"vendor": {"url": "u", "rev": "${rev}"}}`;
  t.deepEqual(parseDeployConfig(text, 'deploy.json'), {vendor: {url: 'u', rev}});
});

test('a BOM anywhere else is still not JSON', t => {
  t.throws(() => parseDeployConfig(`{"vendor": \uFEFF{}}`, 'deploy.json'), {
    instanceOf: ConfigError,
    message: /not valid JSON/,
  });
});

test('shared entries that overlap each other or what the install writes are refused [R34]', t => {
  const refused = (config: object, message: RegExp) =>
    t.throws(() => parseDeployConfig(JSON.stringify(config), 'deploy.json'), {
      instanceOf: ConfigError,
      message,
    });
  // "var/" becomes a link into shared/: "var/uploads/" would then be removed through it.
  refused({shared: ['var/', 'var/uploads/']}, /"var\/" and "var\/uploads\/" overlap/);
  refused({shared: ['./data/x', 'data']}, /"\.\/data\/x" and "data" overlap/);
  refused({install: 'npm', shared: ['node_modules/']}, /overlaps node_modules, which the install/);
  refused(
    {install: {type: 'npm', directory: 'web'}, shared: ['web/node_modules/cache/']},
    /overlaps web\/node_modules/,
  );
  refused({install: 'pip', shared: ['venv/']}, /overlaps venv, which the install writes/);
  refused({install: 'pip', shared: ['.']}, /overlaps venv/);
  t.deepEqual(
    parseDeployConfig(
      JSON.stringify({install: 'npm', shared: ['var/uploads/', 'var/cache/', 'config/app.ini']}),
      'deploy.json',
    ).shared,
    ['var/uploads/', 'var/cache/', 'config/app.ini'],
  );
});

test('deploy.json install forms and their defaults', t => {
  t.like(parseDeployConfig('{"install": "npm"}', 'd').install, {
    type: 'npm',
    scripts: true,
    dev: false,
    directory: '.',
  });
  t.like(parseDeployConfig('{"install": "pip"}', 'd').install, {
    type: 'pip',
    requirements: 'requirements.txt',
    python: 'python3',
    venv: 'venv',
  });
  t.like(parseDeployConfig('{"install": {"command": ["make", "install"]}}', 'd').install, {
    type: 'command',
    command: ['make', 'install'],
  });
  t.throws(() => parseDeployConfig('{"install": {"type": "npm", "scripts": "no"}}', 'd'), {
    message: /"install\.scripts"/,
  });
  t.throws(() => parseDeployConfig('{"install": {"type": "pip", "venv": "../../etc"}}', 'd'), {
    message: /"install\.venv" must be a relative path/,
  });
  t.throws(() => parseDeployConfig('{"install": "bundler"}', 'd'), {message: /"install\.type"/});
  t.deepEqual(parseDeployConfig('{"install": "yarn"}', 'd').install, {
    type: 'yarn',
    directory: '.',
    scripts: true,
    dev: false,
    // Yarn 1 writes its own registry into yarn.lock: allowed beside npm's by default.
    registries: ['https://registry.npmjs.org/', 'https://registry.yarnpkg.com/'],
    reuse: true,
  });
  t.throws(() => parseDeployConfig('{"install": {"type": "npm", "registry": "x"}}', 'd'), {
    message: /unknown key "install\.registry"/,
  });
});

test('without "install", the one lockfile at the root says how to install', t => {
  const files = (...names: string[]) => new Set(names);
  const parse = (text: string, ...names: string[]) =>
    parseDeployConfig(text, 'deploy.json', files(...names)).install;
  t.is(parse('{}', 'package-lock.json', 'README.md')?.type, 'npm');
  t.is(parse('{}', 'requirements.txt')?.type, 'pip');
  t.is(parse('{}'), undefined);
  // deploy.json decides when it says: a kind, or "none" for no install at all.
  t.is(parse('{"install": "pip"}', 'package-lock.json')?.type, 'pip');
  t.is(parse('{"install": "none"}', 'package-lock.json'), undefined);
  t.is(parseDeployConfig('{"install": "none"}', 'deploy.json').install, undefined);
  // Without the root files (a caller that does not know them), nothing is guessed.
  t.is(parseDeployConfig('{}', 'deploy.json').install, undefined);
});

test('two lockfiles at the root are refused, naming both, rather than guessed', t => {
  const error = t.throws(
    () => parseDeployConfig('{}', 'deploy.json', new Set(['package-lock.json', 'yarn.lock'])),
    {instanceOf: ConfigError},
  );
  t.regex(error.message, /package-lock\.json and yarn\.lock/);
  t.regex(error.hint ?? '', /"install": "npm" \(or "yarn"\), or "install": "none"/);
  t.is(detectInstall(new Set(['uv.lock', 'requirements.txt']), 'x')?.type, 'uv');
  t.throws(() => detectInstall(new Set(['uv.lock', 'poetry.lock']), 'x'), {
    message: /uv\.lock and poetry\.lock/,
  });
});

test('install settings without "type" take the kind from the root lockfile', t => {
  const install = parseDeployConfig(
    '{"install": {"dev": true}}',
    'deploy.json',
    new Set(['package-lock.json']),
  ).install;
  t.like(install, {type: 'npm', dev: true, directory: '.'});
  // With no lockfile to tell, the settings alone are refused as before: "type" is missing.
  t.throws(() => parseDeployConfig('{"install": {"dev": true}}', 'deploy.json', new Set()), {
    instanceOf: ConfigError,
  });
});
