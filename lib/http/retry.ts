export const realSleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

/**
 * The retry policy for one HTTP status, shared by downloads and GitHub API calls: 5xx back off
 * exponentially; 429, 503 and GitHub's 403 with x-ratelimit-remaining: 0 wait what the server asks
 * (Retry-After in seconds or as a date, else x-ratelimit-reset); anything else is final.
 */
export function retryDelayForStatus(
  status: number,
  header: (name: string) => string | null | undefined,
  attempt: number,
  backoffMs: number,
): number | undefined {
  const backoff = backoffMs * 2 ** (attempt - 1);
  const rateLimited = status === 429 || (status === 403 && header('x-ratelimit-remaining') === '0');
  if (rateLimited || status === 503) {
    const retryAfter = header('retry-after');
    if (retryAfter) {
      const seconds = Number(retryAfter);
      if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
      const date = Date.parse(retryAfter);
      if (!Number.isNaN(date)) return Math.max(0, date - Date.now());
    }
    const reset = header('x-ratelimit-reset');
    if (reset && Number.isFinite(Number(reset)))
      return Math.max(0, Number(reset) * 1000 - Date.now());
    return backoff;
  }
  return status >= 500 ? backoff : undefined;
}
