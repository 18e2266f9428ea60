import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type {AddressInfo} from 'node:net';
import path from 'node:path';
import {promisify} from 'node:util';
import type {ExecutionContext} from 'ava';

const exec = promisify(execFile);

/** A self-signed certificate for 127.0.0.1 made by openssl: `cert` is also its own CA. */
export async function selfSignedCertificate(
  dir: string,
  name: string,
): Promise<{cert: string; key: string}> {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  await fsp.mkdir(dir, {recursive: true});
  await exec('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  return {cert, key};
}

export type TlsFront = {url: string; paths: string[]};

/**
 * An https server on 127.0.0.1 in front of an http one (as nginx in front of a registry), with
 * the given certificate. Records every path it is asked for.
 */
export async function startTlsFront(
  t: ExecutionContext,
  upstream: string,
  certificate: {cert: string; key: string},
): Promise<TlsFront> {
  const paths: string[] = [];
  const target = new URL(upstream);
  const server = https.createServer(
    {cert: await fsp.readFile(certificate.cert), key: await fsp.readFile(certificate.key)},
    (req, res) => {
      paths.push(req.url ?? '');
      const forward = http.request(
        new URL(req.url ?? '/', target),
        {method: req.method, headers: {...req.headers, host: target.host}},
        answer => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => res.destroy());
      req.pipe(forward);
    },
  );
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>(resolve => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  );
  return {url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/`, paths};
}
