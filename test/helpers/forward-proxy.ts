import http from 'node:http';
import type {AddressInfo} from 'node:net';
import type {ExecutionContext} from 'ava';
import {createProxy} from 'proxy';
import {listenLocal} from './http.js';

/** A real forward proxy (the `proxy` package) on 127.0.0.1 that records what it was asked. */
export type ForwardProxy = {
  url: string;
  /** `host:port` of every CONNECT tunnel (https). */
  connects: string[];
  /** The absolute URI of every plain request (http). */
  requests: string[];
  /** Everything it was asked, both kinds. */
  count(): number;
};

/** Targets other than this machine are refused (407): test traffic stays on 127.0.0.1. */
export async function startForwardProxy(t: ExecutionContext): Promise<ForwardProxy> {
  const connects: string[] = [];
  const requests: string[] = [];
  const server = createProxy(http.createServer());
  server.authenticate = req => {
    const target = req.method === 'CONNECT' ? `//${req.url ?? ''}` : (req.url ?? '');
    if (req.method === 'CONNECT') connects.push(req.url ?? '');
    else requests.push(req.url ?? '');
    return new URL(target, 'http://invalid').hostname === '127.0.0.1';
  };
  const url = await listenLocal(t, server);
  return {url, connects, requests, count: () => connects.length + requests.length};
}

/** The URL of a port nothing listens on (a proxy that is down). */
export async function deadProxyUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const {port} = server.address() as AddressInfo;
  await new Promise<void>(resolve =>
    server.close(() => {
      resolve();
    }),
  );
  return `http://127.0.0.1:${port}`;
}
