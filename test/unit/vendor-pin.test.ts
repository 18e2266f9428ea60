import test from 'ava';
import {parseDeployConfig} from '../../lib/pins/deploy-config.js';
import {ConfigError} from '../../lib/support/errors.js';
import {submoduleUrl} from '../../lib/pins/vendor-pin.js';

test('submoduleUrl finds the URL of the submodule at a path', t => {
  const text = [
    '# comment',
    '[submodule "libs"]',
    '\tpath = libs',
    '\turl = https://h/libs.git',
    '[submodule "vendor-repo"]',
    '\tpath = vendor/',
    '\turl = "../vendor.git"',
    '\tbranch = main',
  ].join('\n');
  t.is(submoduleUrl(text, 'vendor'), '../vendor.git');
  t.is(submoduleUrl(text, 'libs'), 'https://h/libs.git');
  t.is(submoduleUrl(text, 'other'), undefined);
});

test('parseDeployConfig accepts a valid pin and names bad keys', t => {
  t.deepEqual(parseDeployConfig('{}', 'x'), {});
  const rev = 'a'.repeat(40);
  t.deepEqual(parseDeployConfig(JSON.stringify({vendor: {url: 'u', rev}}), 'x'), {
    vendor: {url: 'u', rev},
  });
  // Before the first pin there is only the URL (vendor-sync --update-pin writes rev); the deploy
  // refuses such a changeset itself (test/first-pin.test.ts).
  t.deepEqual(parseDeployConfig('{"vendor": {"url": "u"}}', 'deploy.json'), {vendor: {url: 'u'}});
  t.throws(() => parseDeployConfig('{"vendor": {"url": "u", "rev": 7}}', 'deploy.json'), {
    instanceOf: ConfigError,
    message: /"vendor\.rev"/,
  });
  t.throws(
    () => parseDeployConfig('{"vendor": {"url": "u", "rev": "x", "ref": "y"}}', 'deploy.json'),
    {
      instanceOf: ConfigError,
      message: /unknown key "vendor\.ref"/,
    },
  );
  t.throws(() => parseDeployConfig('[]', 'deploy.json'), {instanceOf: ConfigError});
});
