import {createWriteStream, promises as fsp} from 'node:fs';
import path from 'node:path';
import {Readable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import {checkingStream, downloadMismatch, isMismatch} from '../lib/pins/integrity.js';
import {HttpGet} from '../lib/http/get.js';
import {tempSibling} from '../lib/support/fs.js';
import {redact} from '../lib/support/redact.js';

import type {HttpOptions} from '../lib/http/get.js';

export type {HttpOptions};

/** How vendor-sync names itself to registries, indexes and the GitHub API. */
export const USER_AGENT = 'repodeploy-vendor-sync';

/**
 * HTTP for vendor-sync: lib/http's GET with retries, and a download that lands only verified
 * bytes in the vendor tree.
 */
export class Http extends HttpGet {
  constructor(options: HttpOptions = {}) {
    super({userAgent: USER_AGENT, ...options});
  }

  /**
   * Download `url` to `dest` through a temp file, checking the bytes against `integrity` before
   * the rename: a file at `dest` is always complete and verified.
   */
  async download(
    url: string,
    dest: string,
    integrity: string,
    headers: Record<string, string> = {},
  ): Promise<number> {
    return this.retrying(url, headers, async body => {
      await fsp.mkdir(path.dirname(dest), {recursive: true});
      const tmp = tempSibling(dest, 'download');
      let size = 0;
      async function* counted() {
        for await (const chunk of body) {
          size += chunk.length;
          yield chunk;
        }
      }
      try {
        await pipeline(Readable.from(counted()), checkingStream(integrity), createWriteStream(tmp));
      } catch (error) {
        await fsp.rm(tmp, {force: true});
        if (isMismatch(error)) throw downloadMismatch(redact(url), integrity, error);
        throw error;
      }
      await fsp.rename(tmp, dest);
      return size;
    });
  }
}
