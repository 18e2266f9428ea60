import test from 'ava';
import type {PypiFile} from '../../vendor-sync/sources/pypi.js';
import {filesForTarget, wheelFits, wheelTags} from '../../vendor-sync/sources/wheel-tags.js';

const linux311 = {platforms: ['linux-x64'], version: '3.11'};

test('a wheel name splits into its tag sets; a build tag is skipped, an sdist has none', t => {
  t.deepEqual(wheelTags('six-1.17.0-py2.py3-none-any.whl'), {
    python: ['py2', 'py3'],
    abi: ['none'],
    platform: ['any'],
  });
  t.deepEqual(wheelTags('x-1.0-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl'), {
    python: ['cp311'],
    abi: ['cp311'],
    platform: ['manylinux_2_17_x86_64', 'manylinux2014_x86_64'],
  });
  t.is(wheelTags('x-1.0.tar.gz'), undefined);
});

test('pure wheels fit every node; py3X only up to the node minor version', t => {
  t.true(wheelFits('a-1-py3-none-any.whl', linux311));
  t.true(wheelFits('a-1-py2.py3-none-any.whl', {platforms: ['win32-x64'], version: '3.8'}));
  t.true(wheelFits('a-1-py310-none-any.whl', linux311));
  t.false(wheelFits('a-1-py312-none-any.whl', linux311));
  t.false(wheelFits('a-1-py2-none-any.whl', linux311));
});

test('CPython wheels: the own ABI only for that version, abi3 for it and later ones', t => {
  t.true(wheelFits('a-1-cp311-cp311-manylinux_2_17_x86_64.whl', linux311));
  t.false(wheelFits('a-1-cp312-cp312-manylinux_2_17_x86_64.whl', linux311));
  t.false(wheelFits('a-1-cp310-cp310-manylinux_2_17_x86_64.whl', linux311));
  t.true(wheelFits('a-1-cp38-abi3-manylinux2014_x86_64.whl', linux311));
  t.false(wheelFits('a-1-cp312-abi3-manylinux2014_x86_64.whl', linux311));
  t.false(wheelFits('a-1-pp310-pypy310_pp73-manylinux2014_x86_64.whl', linux311));
});

test('platform tags: glibc or musl, CPU, macOS universal2, Windows', t => {
  const wheel = (plat: string) => `a-1-cp311-cp311-${plat}.whl`;
  t.true(wheelFits(wheel('manylinux1_x86_64'), linux311));
  t.true(wheelFits(wheel('linux_x86_64'), linux311));
  t.false(wheelFits(wheel('musllinux_1_1_x86_64'), linux311));
  t.false(wheelFits(wheel('manylinux2014_aarch64'), linux311));
  const musl = {platforms: ['linux-x64-musl'], version: '3.11'};
  t.true(wheelFits(wheel('musllinux_1_2_x86_64'), musl));
  t.false(wheelFits(wheel('manylinux2014_x86_64'), musl));
  t.true(wheelFits(wheel('manylinux2014_aarch64'), {platforms: ['linux-arm64'], version: '3.11'}));
  t.true(wheelFits(wheel('manylinux2014_aarch64'), {platforms: ['linux'], version: '3.11'}));
  const mac = {platforms: ['darwin-arm64'], version: '3.11'};
  t.true(wheelFits(wheel('macosx_11_0_arm64'), mac));
  t.true(wheelFits(wheel('macosx_10_9_universal2'), mac));
  t.false(wheelFits(wheel('macosx_10_9_x86_64'), mac));
  t.true(wheelFits(wheel('win_amd64'), {platforms: ['win32-x64'], version: '3.11'}));
  t.false(wheelFits(wheel('win32'), {platforms: ['win32-x64'], version: '3.11'}));
});

function file(filename: string): PypiFile {
  return {
    filename,
    url: `https://files.example/${filename}`,
    version: '1.0',
    sha256: '0'.repeat(64),
    hashes: {},
    requiresPython: undefined,
    yanked: false,
  };
}

test('the files kept: wheels that fit each platform; the sdist only for a platform no wheel fits', t => {
  const files = [
    'a-1.0-cp311-cp311-manylinux_2_17_x86_64.whl',
    'a-1.0-cp311-cp311-musllinux_1_1_x86_64.whl',
    'a-1.0-cp311-cp311-win_amd64.whl',
    'a-1.0-cp312-cp312-manylinux_2_17_x86_64.whl',
    'a-1.0.tar.gz',
  ].map(file);
  const names = (platforms: string[], version = '3.11') =>
    filesForTarget(files, {platforms, version}).map(f => f.filename);
  t.deepEqual(names(['linux-x64']), ['a-1.0-cp311-cp311-manylinux_2_17_x86_64.whl']);
  t.deepEqual(names(['linux-x64', 'linux-x64-musl']), [
    'a-1.0-cp311-cp311-manylinux_2_17_x86_64.whl',
    'a-1.0-cp311-cp311-musllinux_1_1_x86_64.whl',
  ]);
  t.deepEqual(names(['linux-x64', 'linux-arm64']), [
    'a-1.0-cp311-cp311-manylinux_2_17_x86_64.whl',
    'a-1.0.tar.gz',
  ]);
  t.deepEqual(names(['linux-x64'], '3.13'), ['a-1.0.tar.gz']);
  t.deepEqual(
    filesForTarget(files.slice(0, 1), {platforms: ['darwin-arm64'], version: '3.11'}),
    [],
  );
});
