import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test from 'ava';
import {ConfigError, UsageError} from '../../lib/support/errors.js';
import {ReleaseStore} from '../../lib/node/release-store.js';
import {tempDir} from '../helpers/tmp.js';
import {releaseMeta} from '../helpers/release-meta.js';

test('release ids sort by time, carry the short sha, and are never reused [R8]', async t => {
  const store = new ReleaseStore(await tempDir(t));
  const when = new Date('2026-11-28T09:30:05.123Z');
  const id = await store.newId(when, '0123456789abcdef0123456789abcdef01234567');
  t.is(id, '20261128T093005Z-0123456');
  await store.create(releaseMeta(id));
  t.is(await store.newId(when, '0123456789abcdef0123456789abcdef01234567'), `${id}-2`);
  await t.throwsAsync(store.newId(when, 'a'.repeat(40), id), {instanceOf: UsageError});
  await t.throwsAsync(store.create(releaseMeta(id)), {instanceOf: UsageError});
  await t.throwsAsync(store.newId(when, 'a'.repeat(40), '../escape'), {instanceOf: UsageError});
  t.is(await store.newId(when, 'a'.repeat(40), 'fleet-42'), 'fleet-42');
});

test('switchTo replaces current atomically, survives stale temp links, and refuses a non-link current [R3] [R4]', async t => {
  const root = await tempDir(t);
  const store = new ReleaseStore(root);
  await store.create(releaseMeta('r1'));
  await store.create(releaseMeta('r2'));
  await store.switchTo('r1');
  t.is(await store.current(), 'r1');

  // A killed run's temp link, even one pointing at a directory, changes nothing.
  await fsp.symlink('releases/r1', path.join(root, '.current.switch-999-deadbeef'));
  await store.switchTo('r2');
  t.is(await store.current(), 'r2');
  t.deepEqual(
    await fsp.readdir(path.join(root, 'releases', 'r1')),
    ['.repodeploy'],
    'no link made inside a release',
  );
  await store.removeStaleSwitchLinks();
  t.false((await fsp.readdir(root)).some(n => n.startsWith('.current.')));

  await fsp.unlink(path.join(root, 'current'));
  await fsp.writeFile(path.join(root, 'current'), 'a file');
  await t.throwsAsync(store.switchTo('r1'), {
    instanceOf: ConfigError,
    message: /is a file, not a symlink/,
  });
  t.is(await fsp.readFile(path.join(root, 'current'), 'utf8'), 'a file');

  await fsp.rm(path.join(root, 'current'));
  await fsp.symlink('/etc', path.join(root, 'current'));
  await t.throwsAsync(store.current(), {instanceOf: ConfigError, message: /outside/});
});

test('list reads states and skips what is not a release', async t => {
  const root = await tempDir(t);
  const store = new ReleaseStore(root);
  await store.create(releaseMeta('a'));
  await store.setState('a', 'ready');
  await fsp.mkdir(path.join(root, 'releases', 'no-meta'));
  await fsp.writeFile(path.join(root, 'releases', 'stray-file'), '');
  const list = await store.list();
  t.deepEqual(
    list.map(r => [r.id, r.meta?.state]),
    [
      ['no-meta', undefined],
      ['a', 'ready'],
    ],
  );
});
