import type {DeployError} from '../support/errors.js';

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
  const backoff = backoffDelay(attempt, backoffMs);
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

/** The exponential backoff before retry number `attempt` (a network error, a stall). */
export function backoffDelay(attempt: number, backoffMs: number): number {
  return backoffMs * 2 ** (attempt - 1);
}

export type RetryPolicy = {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Longest wait a server may ask for (Retry-After, rate-limit reset) before giving up. */
  maxWaitMs: number;
  /** Injected so tests can observe waits without sleeping for minutes. */
  sleep: (ms: number) => Promise<void>;
  /** How long to wait after `error` on attempt `attempt`, or undefined when retrying cannot help. */
  delay: (error: unknown, attempt: number) => number | undefined;
  /** Who asks for the wait, as the give-up message names it (a redacted URL, "GitHub"). */
  subject: string;
  /** What to do after giving up on a wait too long. */
  hint: string;
  /** The error a wait too long becomes (SourceError for downloads, GithubError for the API). */
  giveUp: new (message: string, hint?: string, options?: ErrorOptions) => DeployError;
};

/**
 * Run `attempt` until it succeeds, retrying the errors `policy.delay` says are worth a retry,
 * after the wait it names. The last error is thrown as it is (the caller words it); a wait longer
 * than `maxWaitMs` gives up at once, in the words of {@link RetryPolicy.giveUp}.
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  attempt: (n: number) => Promise<T>,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      const wait = policy.delay(error, n);
      // protection R32-bounded-retries: retries are bounded
      if (wait === undefined || n >= policy.attempts) throw error;
      if (wait > policy.maxWaitMs) {
        throw new policy.giveUp(
          `${policy.subject}: the server asks to wait ${Math.ceil(wait / 1000)} s before retrying; gave up.`,
          policy.hint,
          {cause: error},
        );
      }
      await policy.sleep(wait);
    }
  }
}
