import {promises as fsp} from 'node:fs';
import {writeFileAtomic} from '../fsutil.js';
import {checkPack} from './pack-check.js';

/**
 * The file system handed to isomorphic-git. Every file it writes (pack, pack index, ref, config)
 * goes through temp file + fsync + rename, so a run killed mid-write never leaves a truncated
 * pack index or ref behind for the next run to trip over.
 */
export const gitFs = {
  readFile: fsp.readFile,
  async writeFile(
    file: string,
    data: string | Uint8Array,
    options?: BufferEncoding | {mode?: number},
  ): Promise<void> {
    const mode = typeof options === 'object' && options.mode !== undefined ? options.mode : 0o644;
    // A pack from the network is checked before it is stored, and so before anything inflates it whole.
    if (/[/\\]objects[/\\]pack[/\\]pack-[0-9a-f]+\.pack$/.test(file) && typeof data !== 'string') {
      checkPack(data, 'the git server');
    }
    await writeFileAtomic(file, data, mode);
  },
  mkdir: fsp.mkdir,
  rmdir: fsp.rmdir,
  rm: fsp.rm,
  unlink: fsp.unlink,
  stat: fsp.stat,
  lstat: fsp.lstat,
  readdir: fsp.readdir,
  readlink: fsp.readlink,
  symlink: fsp.symlink,
};
