import type { Outcome } from './outcome.js';

/** How a delivery backs off between attempts. All durations in milliseconds. */
export interface RetryPolicy {
  /** total attempts per batch, counting attempts made by earlier runs */
  maxAttempts: number;
  initialDelayMs: number;
  multiplier: number;
  maxDelayMs: number;
  /** fraction of the delay, e.g. 0.2 spreads a 10 s delay uniformly over [8 s, 12 s] */
  jitter: number;
}

/** Delay before the retry that follows the n-th failed attempt (n >= 1), without jitter. */
export function baseDelayMs(policy: RetryPolicy, failedAttempt: number): number {
  if (policy.initialDelayMs <= 0) return 0;
  const exponent = Math.max(0, failedAttempt - 1);
  // multiplier^exponent may overflow to Infinity; min() then yields maxDelayMs.
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * Math.pow(policy.multiplier, exponent));
}

/**
 * The base delay spread uniformly over [base * (1 - jitter), base * (1 + jitter)], capped at
 * maxDelayMs. `random` returns a number in [0, 1], like Math.random.
 */
export function jitteredDelayMs(policy: RetryPolicy, failedAttempt: number, random: () => number): number {
  const base = baseDelayMs(policy, failedAttempt);
  const jitter = clamp(policy.jitter, 0, 1);
  const factor = 1 - jitter + 2 * jitter * clamp(random(), 0, 1);
  return Math.min(policy.maxDelayMs, Math.round(base * factor));
}

/**
 * Delay before the next attempt after a retryable outcome: the jittered backoff, or the server's
 * Retry-After when that is longer, the latter capped at maxDelayMs.
 */
export function retryDelayMs(
  policy: RetryPolicy,
  failedAttempt: number,
  outcome: Outcome | undefined,
  random: () => number,
): number {
  const backoff = jitteredDelayMs(policy, failedAttempt, random);
  const retryAfterMs = outcome?.kind === 'retryable' ? outcome.retryAfterMs : undefined;
  if (retryAfterMs === undefined || !(retryAfterMs > 0)) return backoff;
  return Math.max(backoff, Math.min(retryAfterMs, policy.maxDelayMs));
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
