import {createHash} from 'node:crypto';
import zlib from 'node:zlib';
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import {IntegrityError} from '../../lib/support/errors.js';
import {checkPack} from '../../lib/git/pack/check.js';
import {IncomingPack} from '../../lib/git/pack/incoming.js';
import {PACK_LIMITS} from '../../lib/git/pack/format.js';

/** A pack object header: type in bits 4-6 of the first byte, the size as a little-endian varint. */
function header(type: number, size: number): Buffer {
  const bytes = [];
  let c = (type << 4) | (size & 15);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes.push(c | 0x80);
    c = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  bytes.push(c);
  return Buffer.from(bytes);
}

function varint(n: number): Buffer {
  const bytes = [];
  do {
    let c = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) c |= 0x80;
    bytes.push(c);
  } while (n > 0);
  return Buffer.from(bytes);
}

function pack(objects: Buffer[]): Buffer {
  const head = Buffer.alloc(12);
  head.write('PACK', 0, 'latin1');
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(objects.length, 8);
  const body = Buffer.concat([head, ...objects]);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}

const blob = (content: Buffer, declared = content.length) =>
  Buffer.concat([header(3, declared), zlib.deflateSync(content)]);

test('[R17] a well-formed pack passes', t => {
  t.notThrows(() => {
    checkPack(pack([blob(Buffer.from('hello\n')), blob(Buffer.alloc(1000))]), 'test');
  });
});

test('[R17] a delta that declares a huge result is refused without building it', t => {
  const delta = Buffer.concat([varint(10), varint(2 ** 40), Buffer.from([0x01, 0x41])]);
  const refDelta = Buffer.concat([
    header(7, delta.length),
    Buffer.alloc(20, 0xab),
    zlib.deflateSync(delta),
  ]);
  t.throws(
    () => {
      checkPack(pack([refDelta]), 'test');
    },
    {
      instanceOf: IntegrityError,
      message: /would make an object of 1099511627776 bytes/,
    },
  );
});

test('[R17] a compression bomb stops at the cap: declared too big, or inflating past what it declares', t => {
  const saved = PACK_LIMITS.maxObjectBytes;
  t.teardown(() => (PACK_LIMITS.maxObjectBytes = saved));
  PACK_LIMITS.maxObjectBytes = 1024 * 1024;
  const bomb = Buffer.alloc(64 * 1024 * 1024);
  t.throws(
    () => {
      checkPack(pack([blob(bomb)]), 'test');
    },
    {
      message: /declares 67108864 bytes, more than the 1048576 allowed/,
    },
  );
  t.throws(
    () => {
      checkPack(pack([blob(bomb, 100)]), 'test');
    },
    {
      message: /does not inflate to its declared 100 bytes/,
    },
  );
});

test('[R30] a pack with a bad trailer, or cut short, is refused', t => {
  const good = pack([blob(Buffer.from('x'))]);
  const damaged = Buffer.from(good);
  damaged[damaged.length - 1] = (damaged[damaged.length - 1] ?? 0) ^ 1;
  t.throws(
    () => {
      checkPack(damaged, 'test');
    },
    {message: /checksum does not match/},
  );
  t.throws(
    () => {
      checkPack(good.subarray(0, 20), 'test');
    },
    {message: /not a git pack/},
  );
});

test('[R30] a received pack whose trailer does not match is refused before it is indexed', async t => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'repodeploy-incoming-'));
  t.teardown(() => fsp.rm(dir, {recursive: true, force: true}));
  const good = pack([blob(Buffer.from('hello\n')), blob(Buffer.alloc(1000))]);
  const receive = async (bytes: Buffer) => {
    const incoming = await IncomingPack.create(dir);
    // In uneven pieces, as a server's side-band packets come.
    for (let at = 0; at < bytes.length; at += 7) incoming.write(bytes.subarray(at, at + 7));
    try {
      return incoming.finish('test');
    } finally {
      await incoming.discard();
    }
  };
  t.true(await receive(good));
  // What a terminal's live line shows while the pack arrives.
  const watched = await IncomingPack.create(dir);
  t.is(watched.describe(), '0 B received');
  watched.write(good.subarray(0, 10));
  t.is(watched.describe(), '10 B received', 'the count is not known before 12 bytes');
  watched.write(good.subarray(10));
  t.is(watched.describe(), `2 objects, ${good.length} B received`);
  await watched.discard();
  const damaged = Buffer.from(good);
  damaged[damaged.length - 5] = (damaged[damaged.length - 5] ?? 0) ^ 1;
  await t.throwsAsync(receive(damaged), {
    instanceOf: IntegrityError,
    message: /checksum does not match/,
  });
  t.false(await receive(Buffer.alloc(0)), 'no pack sent');
  t.deepEqual(await fsp.readdir(dir), [], 'nothing left behind');
});
