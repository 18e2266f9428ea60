// Yarn 1's own yarn.lock parser (CommonJS, no type declarations of its own): only what
// lib/pins/yarn-lock.ts uses.
declare module '@yarnpkg/lockfile' {
  const lockfile: {
    /** "success", or "merge"/"conflict" for a file with git conflict markers. */
    parse(
      text: string,
      fileLoc?: string,
    ): {type: 'success' | 'merge' | 'conflict'; object: Record<string, unknown>};
  };
  export default lockfile;
}
