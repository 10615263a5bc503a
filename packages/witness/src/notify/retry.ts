// How often and how patiently a channel retries one delivery. Exponential backoff with jitter, so
// that after a receiver's outage the witness does not hammer it in lock-step with other senders.

export interface RetryPolicy {
  /** Delivery attempts in total, the first included (≥ 1). */
  readonly attempts: number;
  /** Wait before the second attempt; doubles for each later one. */
  readonly baseDelayMs: number;
  /** Upper bound of one wait (also of an honoured Retry-After). */
  readonly maxDelayMs: number;
}

/** Five attempts over about 15 s: rides out a receiver restart, then gives up and says so. */
export const defaultRetryPolicy: RetryPolicy = { attempts: 5, baseDelayMs: 1_000, maxDelayMs: 30_000 };

export function retryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  const policy = { ...defaultRetryPolicy, ...overrides };
  if (!(Number.isInteger(policy.attempts) && policy.attempts >= 1)) throw new RangeError(`retry attempts must be an integer ≥ 1, got ${policy.attempts}`);
  if (!(policy.baseDelayMs >= 0 && policy.maxDelayMs >= policy.baseDelayMs)) {
    throw new RangeError(`retry delays must satisfy 0 ≤ baseDelayMs ≤ maxDelayMs, got ${policy.baseDelayMs} and ${policy.maxDelayMs}`);
  }
  return policy;
}

/**
 * The wait after failed attempt number `attempt` (1-based): base·2^(attempt−1), capped, then
 * "equal jitter" — between half and all of it — so retries spread out but never come too early.
 */
export function backoffDelayMs(policy: RetryPolicy, attempt: number, random: () => number): number {
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return exponential / 2 + (exponential / 2) * random();
}
