import {execFile} from 'node:child_process';
import {constants, promises as fsp} from 'node:fs';
import path from 'node:path';
import {DEFAULT_PATH} from '../node/run-logged.js';

/**
 * The installers' second wall: npm and pip run where no network can be reached, whatever a
 * lockfile or requirements file manages to say past the check. Where the node can make a network
 * namespace (`unshare -n`: root, util-linux present, namespaces allowed), the installer runs in a
 * fresh one, whose only interface is a loopback that is down: no address, not even the node's own
 * 127.0.0.1, is reachable. Elsewhere only settings stand in the way: every HTTP proxy variable
 * points at a closed port (and each installer sets its own no-index options).
 */
export type NetworkWall = {
  kind: 'namespace' | 'settings';
  /** The line the install log gets, saying which wall the installer ran behind. */
  describe: string;
  /** Variables every walled installer gets, on top of its own. */
  env: Record<string, string>;
  /** The argv that runs `command` behind the wall: unshare execs it, so its pid is the installer's. */
  wrap(command: string, args: string[]): [string, string[]];
};

/** A closed port on the loopback: a proxied request fails at once. */
const DEAD_PROXY = 'http://127.0.0.1:9';

// protection R36-dead-proxy: the installer's proxies lead nowhere
const PROXY_ENV = proxyEnv(DEAD_PROXY);

/** Every proxy variable HTTP clients read (curl, Python's requests and urllib, npm), both cases. */
function proxyEnv(proxy: string): Record<string, string> {
  return Object.fromEntries(
    ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY'].flatMap(name => [
      [name, proxy],
      [name.toLowerCase(), proxy],
    ]),
  );
}

/** One probe per unshare binary for the life of the process. */
const probes = new Map<string, Promise<NetworkWall>>();

/** The wall installers run behind on this node (unshare looked up on the node's PATH). */
export async function networkWall(env: NodeJS.ProcessEnv): Promise<NetworkWall> {
  const searchPath = env.PATH ?? DEFAULT_PATH;
  const unshare = await findOnPath('unshare', searchPath);
  const key = unshare ?? '';
  let probe = probes.get(key);
  if (!probe) {
    probe = unshare
      ? probeNamespace(unshare, searchPath)
      : Promise.resolve(settingsWall('unshare is not on PATH'));
    probes.set(key, probe);
  }
  return probe;
}

async function probeNamespace(unshare: string, searchPath: string): Promise<NetworkWall> {
  const failure = await new Promise<string | undefined>(resolve => {
    execFile(
      unshare,
      ['-n', '--', 'true'],
      {env: {PATH: searchPath}, timeout: 10_000},
      (error, _stdout, stderr) => {
        resolve(error ? (stderr.trim() || error.message).split('\n')[0] : undefined);
      },
    );
  });
  if (failure !== undefined) return settingsWall(`${unshare} -n does not work here: ${failure}`);
  return {
    kind: 'namespace',
    describe: `network: none (the installer runs in a new network namespace, ${unshare} -n: no interface but a loopback that is down)`,
    env: PROXY_ENV,
    // protection R36-namespace: the installer runs in a network namespace of its own
    wrap: (command, args) => [unshare, ['-n', '--', command, ...args]],
  };
}

function settingsWall(why: string): NetworkWall {
  return {
    kind: 'settings',
    describe: `network: blocked by settings only (no network namespace: ${why}); HTTP(S)_PROXY and ALL_PROXY point at a closed port, and the installer's own index settings are off`,
    env: PROXY_ENV,
    wrap: (command, args) => [command, args],
  };
}

async function findOnPath(name: string, searchPath: string): Promise<string | undefined> {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      await fsp.access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here: try the next directory.
    }
  }
  return undefined;
}
