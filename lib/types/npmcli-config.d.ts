// npm's own configuration loader (it has no type declarations of its own): only what
// vendor-sync uses.
declare module '@npmcli/config' {
  type Where = 'default' | 'builtin' | 'cli' | 'env' | 'project' | 'user' | 'global';
  class Config {
    constructor(options: {
      definitions: unknown;
      shorthands: unknown;
      flatten: unknown;
      nerfDarts?: string[];
      npmPath: string;
      env?: NodeJS.ProcessEnv;
      argv?: string[];
      cwd?: string;
      warn?: boolean;
    });
    load(): Promise<void>;
    /** The flattened options npm hands to its fetchers (registry keys verbatim). */
    readonly flat: Record<string, unknown>;
    readonly localPrefix: string;
    readonly data: Map<Where, {data: Record<string, unknown>; source: string | null}>;
    get(key: string, where?: Where): unknown;
    find(key: string): Where | null;
    delete(key: string, where?: Where): void;
  }
  export = Config;
}

declare module '@npmcli/config/lib/definitions/index.js' {
  export const definitions: unknown;
  export const shorthands: unknown;
  export const flatten: unknown;
  export const nerfDarts: string[];
}
