/**
 * Keeps secrets out of everything that is printed or recorded.
 * URLs lose their user-info; any registered secret value is replaced wherever it appears.
 */

const secrets = new Set<string>();

/** Register a value (a token read from the environment) that must never be printed. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) secrets.add(value);
}

/** Remove credentials from a string: `user:pass@` in URLs and every registered secret. */
export function redact(text: string): string {
  let out = text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1***@');
  for (const secret of secrets) out = out.split(secret).join('***');
  return out;
}
