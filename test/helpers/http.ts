import type http from 'node:http';
import type {AddressInfo} from 'node:net';
import type {ExecutionContext} from 'ava';

/** Listen on 127.0.0.1, port 0, closed when the test ends; resolves the base URL. */
export async function listenLocal(t: ExecutionContext, server: http.Server): Promise<string> {
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
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Poll `predicate` every 25 ms until it holds; fail the test after `ms`. */
export async function waitFor(
  t: ExecutionContext,
  what: string,
  predicate: () => Promise<boolean>,
  ms = 30_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await predicate()) return;
    await new Promise(resolve => setTimeout(resolve, 25));
  }
  t.fail(`timed out waiting for ${what}`);
}
