import os from 'node:os';
import type {HttpClient} from 'isomorphic-git';
import {createHttpClient} from '../http/client.js';
import {streamReporter, type Reporter} from './reporter.js';

/** Everything `lib/` needs from the world, passed in so tests can supply their own. */
export type Deps = {
  http: HttpClient;
  env: NodeJS.ProcessEnv;
  clock: () => Date;
  reporter: Reporter;
  identity: {user: string; host: string};
  cwd: string;
};

export function defaultDeps(overrides: Partial<Deps> = {}): Deps {
  // The git client reads its proxy variables from the environment the command was given.
  const env = overrides.env ?? process.env;
  return {
    http: createHttpClient({env}),
    env,
    clock: () => new Date(),
    reporter: streamReporter(process.stderr),
    identity: currentIdentity(),
    cwd: process.cwd(),
    ...overrides,
  };
}

function currentIdentity(): {user: string; host: string} {
  let user: string;
  try {
    user = os.userInfo().username;
  } catch {
    user = process.env.USER ?? `uid ${process.getuid?.() ?? '?'}`;
  }
  return {user, host: os.hostname()};
}
