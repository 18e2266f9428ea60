import {execFile} from 'node:child_process';
import {promisify} from 'node:util';

const exec = promisify(execFile);

/**
 * A tarball entry for Python's tarfile, which stores whatever it is given: `type` is a tarfile
 * type constant name (REGTYPE, SYMTYPE, LNKTYPE, CHRTYPE, DIRTYPE), `size` a declared size that
 * may differ from the content actually written.
 */
export type Entry = {name: string; type?: string; link?: string; text?: string; size?: number};

/** Write a .tgz with Python's tarfile (GNU format, so any name length is stored as given). */
export async function hostileTarball(file: string, entries: Entry[], zeros = 0): Promise<void> {
  const script = `
import io, json, sys, tarfile
entries = json.loads(sys.argv[2]); zeros = int(sys.argv[3])
with tarfile.open(sys.argv[1], 'w:gz', format=tarfile.GNU_FORMAT) as tar:
    for e in entries:
        info = tarfile.TarInfo(e['name'])
        info.type = getattr(tarfile, e.get('type', 'REGTYPE'))
        info.linkname = e.get('link', '')
        data = e.get('text', '').encode()
        info.size = e.get('size', len(data))
        if info.type == tarfile.REGTYPE and info.size == len(data):
            tar.addfile(info, io.BytesIO(data))
        else:
            tar.addfile(info)
    if zeros:
        info = tarfile.TarInfo('package/zeros.bin'); info.size = zeros
        class Zeros(io.RawIOBase):
            def __init__(self): self.left = zeros
            def readable(self): return True
            def readinto(self, b):
                n = min(len(b), self.left); b[:n] = bytes(n); self.left -= n; return n
        tar.addfile(info, io.BufferedReader(Zeros(), 1 << 20))
`;
  await exec('python3', ['-c', script, file, JSON.stringify(entries), String(zeros)], {
    maxBuffer: 1 << 20,
  });
}
