import test from 'ava';
import {unsafeEntryName} from '../../lib/git/path-safety.js';

const refused = [
  '',
  '.',
  '..',
  '.git',
  '.GIT',
  '.Git',
  '.git.',
  '.git..',
  '.git ',
  '.git. .',
  'git~1',
  'GIT~1',
  '.g\u200cit',
  '\ufeff.git',
  '.git::$INDEX_ALLOCATION',
  '.git:stream',
  'a/b',
  '/abs',
  'a\\b',
  '..\\x',
  'nul\0byte',
  '...',
];
const allowed = [
  '.gitignore',
  '.gitmodules',
  '.github',
  'git',
  'git~2',
  'a.git',
  '.gitx',
  'README.md',
  'ünïcödé',
  '-rf',
  'a:b',
];

for (const name of refused) {
  test(`refuses tree entry name ${JSON.stringify(name)} [R13]`, t => {
    t.truthy(unsafeEntryName(name));
  });
}

test('allows ordinary names', t => {
  for (const name of allowed) t.is(unsafeEntryName(name), undefined, name);
});
