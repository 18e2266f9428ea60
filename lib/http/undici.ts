type Undici = typeof import('undici');

/**
 * undici, loaded on the first request. It is the largest module of either command (over a
 * megabyte of source): `deploy status`, `rollback`, and a vendor-sync with nothing to download
 * make no request and should not pay for compiling it at every start. It is CommonJS: its
 * `module.exports` is the namespace's default (a bundle's chunk exports only that).
 */
export async function undici(): Promise<Undici> {
  const loaded = (await import('undici')) as Undici & {default?: Undici};
  return loaded.default ?? loaded;
}
