import { assign, setup } from 'xstate';
import type { Outcome } from './outcome.js';

/**
 * The circuit breaker of one destination origin: it only decides whether the origin may be tried
 * (closed: freely; halfOpen: by one probe; open, and paused by a Retry-After: not at all).
 * It never hands out permits (machines/limiter.ts does) and never reads a clock: its waits are
 * XState delays.
 */

export interface BreakerInput {
  origin: string;
  /** consecutive retryable outcomes that open the breaker */
  failureThreshold: number;
  /** first wait in `open` before a probe; doubles after each failed probe */
  resetTimeoutMs: number;
  /** cap of the reset timeout, and of a Retry-After pause */
  maxResetTimeoutMs: number;
}

export type BreakerStateName = 'closed' | 'open' | 'halfOpen' | 'paused';

export interface BreakerContext {
  origin: string;
  failureThreshold: number;
  initialResetTimeoutMs: number;
  maxResetTimeoutMs: number;
  /** current wait in `open` before the next probe */
  resetTimeoutMs: number;
  /** length of the current (or last) Retry-After pause */
  pauseMs: number;
  consecutiveFailures: number;
}

/**
 * What the breaker hears of one finished attempt. `probe` marks the attempt made while half-open:
 * only its answer decides there. `ANSWERED`: the endpoint answered but did not accept (permanent,
 * split); it proves the origin reachable and leaves the failure streak as it is.
 */
export type BreakerEvent =
  | { type: 'SUCCESS'; probe: boolean }
  | { type: 'ANSWERED'; probe: boolean }
  | { type: 'FAILURE'; probe: boolean }
  | { type: 'THROTTLED'; retryAfterMs: number };

function isRetryAfterPause(outcome: Outcome): boolean {
  return (
    outcome.kind === 'retryable' &&
    (outcome.status === 429 || outcome.status === 503) &&
    outcome.retryAfterMs !== undefined &&
    outcome.retryAfterMs > 0
  );
}

/** The breaker's view of an attempt's outcome. */
export function breakerEventOf(outcome: Outcome, probe: boolean): BreakerEvent {
  if (outcome.kind === 'retryable') {
    return isRetryAfterPause(outcome)
      ? { type: 'THROTTLED', retryAfterMs: outcome.retryAfterMs ?? 0 }
      : { type: 'FAILURE', probe };
  }
  return outcome.kind === 'success' ? { type: 'SUCCESS', probe } : { type: 'ANSWERED', probe };
}

export const breakerMachine = setup({
  types: {
    input: {} as BreakerInput,
    context: {} as BreakerContext,
    events: {} as BreakerEvent,
  },
  guards: {
    isProbe: ({ event }) => 'probe' in event && event.probe,
    reachesThreshold: ({ context }) => context.consecutiveFailures + 1 >= context.failureThreshold,
  },
  actions: {
    countFailure: assign(({ context }) => ({ consecutiveFailures: context.consecutiveFailures + 1 })),
    resetStreak: assign({ consecutiveFailures: 0 }),
    startRecovery: assign(({ context }) => ({
      consecutiveFailures: 0,
      resetTimeoutMs: context.initialResetTimeoutMs,
    })),
    growResetTimeout: assign(({ context }) => ({
      resetTimeoutMs: Math.min(context.resetTimeoutMs * 2, context.maxResetTimeoutMs),
    })),
    startPause: assign(({ context, event }) => ({
      pauseMs: Math.min(event.type === 'THROTTLED' ? event.retryAfterMs : 0, context.maxResetTimeoutMs),
    })),
  },
  delays: {
    resetTimeout: ({ context }) => context.resetTimeoutMs,
    pauseTimeout: ({ context }) => context.pauseMs,
  },
}).createMachine({
  id: 'breaker',
  context: ({ input }) => ({
    origin: input.origin,
    failureThreshold: input.failureThreshold,
    initialResetTimeoutMs: input.resetTimeoutMs,
    maxResetTimeoutMs: input.maxResetTimeoutMs,
    resetTimeoutMs: input.resetTimeoutMs,
    pauseMs: 0,
    consecutiveFailures: 0,
  }),
  initial: 'closed',
  // what every state does; a state's own handler below takes precedence when its guard holds
  on: {
    // the latest Retry-After wins, also while paused: the pause restarts with it
    THROTTLED: { target: '.paused', reenter: true, actions: ['countFailure', 'startPause'] },
    FAILURE: { actions: 'countFailure' },
    SUCCESS: { actions: 'resetStreak' },
  },
  states: {
    closed: {
      on: { FAILURE: { guard: 'reachesThreshold', target: 'open', actions: 'countFailure' } },
    },
    open: {
      after: { resetTimeout: 'halfOpen' },
    },
    halfOpen: {
      on: {
        FAILURE: { guard: 'isProbe', target: 'open', actions: ['countFailure', 'growResetTimeout'] },
        // the probe got an answer: the endpoint is reachable
        SUCCESS: { guard: 'isProbe', target: 'closed', actions: 'startRecovery' },
        ANSWERED: { guard: 'isProbe', target: 'closed', actions: 'startRecovery' },
      },
    },
    paused: {
      after: { pauseTimeout: 'halfOpen' },
    },
  },
});
