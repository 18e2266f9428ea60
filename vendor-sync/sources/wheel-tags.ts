import type {PypiFile} from './pypi.js';

/**
 * The nodes a Python app is vendored for: their platforms, as npm names them (`linux-x64`, with
 * `-musl` for a musl libc such as Alpine's; `linux` for any CPU), and their CPython version.
 */
export type PythonTarget = {platforms: string[]; version: string};

/** A wheel file name's tag sets (PEP 425, PEP 427): `py2.py3-none-any` is three sets. */
export function wheelTags(
  filename: string,
): {python: string[]; abi: string[]; platform: string[]} | undefined {
  if (!filename.endsWith('.whl')) return undefined;
  const parts = filename.slice(0, -4).split('-');
  // name-version[-build]-python-abi-platform
  if (parts.length !== 5 && parts.length !== 6) return undefined;
  const [python = '', abi = '', platform = ''] = parts.slice(-3);
  return {python: python.split('.'), abi: abi.split('.'), platform: platform.split('.')};
}

/** Whether pip on one of the target's nodes would install this wheel (packaging's `sys_tags`). */
export function wheelFits(filename: string, target: PythonTarget): boolean {
  const tags = wheelTags(filename);
  const minor = Number(/^3\.(\d+)$/.exec(target.version)?.[1] ?? NaN);
  if (!tags || Number.isNaN(minor)) return false;
  const platformOk = tags.platform.some(
    p => p === 'any' || target.platforms.some(t => platformFits(p, t)),
  );
  return (
    platformOk && tags.python.some(py => tags.abi.some(abi => interpreterFits(py, abi, minor)))
  );
}

/**
 * A python tag with an ABI tag, for CPython 3.`minor`: `py3`/`py3X` (X <= minor) with `none`;
 * `cp3<minor>` with `none` or its own ABI; `cp3Y` (2 <= Y <= minor) with the stable `abi3`.
 */
function interpreterFits(python: string, abi: string, minor: number): boolean {
  const generic = /^py3(\d*)$/.exec(python);
  const cpython = /^cp3(\d+)$/.exec(python);
  if (abi === 'none') {
    if (generic) return generic[1] === '' || Number(generic[1]) <= minor;
    return cpython !== null && Number(cpython[1]) === minor;
  }
  if (!cpython) return false;
  const version = Number(cpython[1]);
  if (abi === 'abi3') return version >= 2 && version <= minor;
  return version === minor && abi === `cp3${minor}`;
}

const LINUX_ARCH: Record<string, string[]> = {
  x64: ['x86_64'],
  arm64: ['aarch64'],
  ia32: ['i686'],
  arm: ['armv7l'],
  ppc64: ['ppc64le'],
  s390x: ['s390x'],
};
const MAC_ARCH: Record<string, string[]> = {
  x64: ['x86_64', 'intel', 'universal', 'universal2'],
  arm64: ['arm64', 'universal2'],
};
const WINDOWS: Record<string, string[]> = {
  x64: ['win_amd64'],
  ia32: ['win32'],
  arm64: ['win_arm64'],
};

/** A wheel platform tag against a node platform: `linux-x64`, `linux-arm64-musl`, `darwin-arm64`. */
function platformFits(tag: string, node: string): boolean {
  const [os = '', cpu = '*', libc = 'glibc'] = node.split('-');
  const pick = (table: Record<string, string[]>) =>
    cpu === '*' ? Object.values(table).flat() : (table[cpu] ?? []);
  if (os === 'linux') {
    const arch = pick(LINUX_ARCH).find(a => tag.endsWith(`_${a}`));
    if (!arch) return false;
    const prefix = tag.slice(0, -arch.length - 1);
    if (libc === 'musl') return /^musllinux_\d+_\d+$/.test(prefix);
    return /^(manylinux(1|2010|2014|_\d+_\d+)|linux)$/.test(prefix);
  }
  if (os === 'darwin')
    return pick(MAC_ARCH).some(a => new RegExp(`^macosx_\\d+_\\d+_${a}$`).test(tag));
  if (os === 'win32') return pick(WINDOWS).includes(tag);
  return false;
}

/**
 * Of the files of one pinned version, those the target's nodes can install: for each platform,
 * the wheels that fit it, or the sdists when none does (pip would then build one on the node).
 */
export function filesForTarget(files: PypiFile[], target: PythonTarget): PypiFile[] {
  const kept = new Set<PypiFile>();
  for (const platform of target.platforms) {
    const one = {platforms: [platform], version: target.version};
    const wheels = files.filter(f => wheelFits(f.filename, one));
    const chosen = wheels.length > 0 ? wheels : files.filter(f => !f.filename.endsWith('.whl'));
    for (const file of chosen) kept.add(file);
  }
  return files.filter(f => kept.has(f));
}
