import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test from 'ava';
import {IntegrityError} from '../lib/support/errors.js';
import {PACK_LIMITS} from '../lib/git/pack/format.js';
import {readLock} from '../lib/node/lock.js';
import {makeWorld, runDeploy, writeSampleApp} from './helpers/world.js';

test('[R17] a huge blob from the server is refused before it is stored or inflated whole', async t => {
  const world = await makeWorld(t);
  await writeSampleApp(world.app, {});
  await world.app.write({'data/zeros.bin': {content: Buffer.alloc(24 * 1024 * 1024)}});
  await world.app.commit('a 24 MiB blob that compresses to almost nothing');
  await world.publish();
  const saved = PACK_LIMITS.maxObjectBytes;
  t.teardown(() => (PACK_LIMITS.maxObjectBytes = saved));
  PACK_LIMITS.maxObjectBytes = 8 * 1024 * 1024;
  const error = await t.throwsAsync(
    runDeploy({root: world.root, rev: 'main', repo: world.appUrl}),
    {instanceOf: IntegrityError},
  );
  t.regex(error.message, /declares 25165824 bytes, more than the 8388608 allowed/);
  const packs = await fsp
    .readdir(path.join(world.root, 'repos/app.git/objects/pack'))
    .catch(() => []);
  t.deepEqual(packs, [], 'nothing stored');
  await t.throwsAsync(fsp.access(path.join(world.root, 'releases')));
  t.is((await readLock(world.root)).state, 'free');
});

test('[R17] a pack whose objects inflate to more than one fetch may hold is refused, nothing stored', async t => {
  const world = await makeWorld(t);
  await writeSampleApp(world.app, {});
  // Sixteen 1 MiB blobs of zeros but one byte: a pack of a few KiB that inflates to 16 MiB.
  for (let i = 0; i < 16; i++) {
    const content = Buffer.alloc(1024 * 1024);
    content[i] = 1;
    await world.app.write({[`data/${i}.bin`]: {content}});
  }
  await world.app.commit('blobs that compress to almost nothing');
  await world.publish();
  const saved = PACK_LIMITS.maxFetchInflatedBytes;
  t.teardown(() => (PACK_LIMITS.maxFetchInflatedBytes = saved));
  PACK_LIMITS.maxFetchInflatedBytes = 8 * 1024 * 1024;
  const error = await t.throwsAsync(
    runDeploy({root: world.root, rev: 'main', repo: world.appUrl}),
    {instanceOf: IntegrityError},
  );
  t.regex(error.message, /inflate to more than the 8388608 bytes one fetch may hold/);
  const packs = await fsp.readdir(path.join(world.root, 'repos/app.git/objects/pack'));
  t.deepEqual(packs, [], 'nothing stored, no incoming file left');
  await t.throwsAsync(fsp.access(path.join(world.root, 'releases')));
});
