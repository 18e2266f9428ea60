import {promises as fsp} from 'node:fs';
import http from 'node:http';
import type {AddressInfo} from 'node:net';
import path from 'node:path';
import * as fse from 'fs-extra/esm';
import {writeFileAtomic} from '../support/fs.js';
import {MAINTENANCE_FILE} from './layout.js';

/**
 * Maintenance mode, the seed's open question ("take the node down, or keep it available?"):
 * a flag file in the root that the web front end tests (examples/nginx), and a small responder
 * that answers 503 with Retry-After and X-Weave-Backoff while the node upgrades.
 */

export type MaintenanceState = {
  on: boolean;
  since: string | null;
  by: string | null;
  reason: string | null;
  file: string;
};

export async function maintenanceStatus(root: string): Promise<MaintenanceState> {
  const file = path.join(root, MAINTENANCE_FILE);
  try {
    const data = JSON.parse(await fsp.readFile(file, 'utf8')) as {
      since?: string;
      by?: string;
      reason?: string;
    };
    return {
      on: true,
      since: data.since ?? null,
      by: data.by ?? null,
      reason: data.reason ?? null,
      file,
    };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      return {on: false, since: null, by: null, reason: null, file};
    // A flag file that is not ours (e.g. made by `touch`) still means "on".
    return {on: true, since: null, by: null, reason: null, file};
  }
}

export async function setMaintenance(
  root: string,
  on: boolean,
  info: {by: string; reason?: string | undefined; now: Date},
): Promise<MaintenanceState> {
  const file = path.join(root, MAINTENANCE_FILE);
  if (on) {
    await fse.ensureDir(root);
    await writeFileAtomic(
      file,
      `${JSON.stringify({since: info.now.toISOString(), by: info.by, reason: info.reason ?? null})}\n`,
    );
  } else {
    await fsp.rm(file, {force: true});
  }
  return maintenanceStatus(root);
}

/**
 * The maintenance responder: every request gets 503 with `Retry-After` and `X-Weave-Backoff`
 * (seconds) and a short JSON body, so clients back off instead of retrying at once.
 */
export async function serveMaintenance(options: {
  port: number;
  host: string;
  backoffSeconds: number;
}): Promise<{url: string; close: () => Promise<void>}> {
  const body = `${JSON.stringify({status: 'maintenance', retry_after: options.backoffSeconds})}\n`;
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(503, {
      'content-type': 'application/json',
      'retry-after': String(options.backoffSeconds),
      'x-weave-backoff': String(options.backoffSeconds),
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, resolve);
  });
  const {port} = server.address() as AddressInfo;
  return {
    url: `http://${options.host}:${port}/`,
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
