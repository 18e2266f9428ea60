// cacache's own function for where content with a given integrity lives in a cache (it has no
// type declarations of its own).
declare module 'cacache/lib/content/path.js' {
  function contentPath(cache: string, integrity: string): string;
  export = contentPath;
}
