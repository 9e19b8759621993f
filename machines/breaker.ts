import { and, assign, enqueueActions, setup, type AnyActorRef } from 'xstate';
import type { Outcome } from './outcome.js';

/**
 * The circuit breaker of one destination origin. Deliveries ask it for a permit before every
 * attempt (ACQUIRE), give the permit back with the attempt's outcome (RELEASE), or withdraw
 * (CANCEL). It grants permits FIFO while the origin is healthy, none while it is open or paused,
 * one probe while half-open, and ramps concurrency back up one success at a time after recovery.
 *
 * Refs are compared by identity, never by `id`: root actors of different systems share ids.
 */

export interface BreakerInput {
  origin: string;
  /** consecutive retryable outcomes that open the breaker */
  failureThreshold: number;
  /** first wait in `open` before a probe; doubles after each failed probe */
  resetTimeoutMs: number;
  /** cap of the reset timeout, and of a Retry-After pause */
  maxResetTimeoutMs: number;
  /** most permits held at once while closed */
  maxConcurrency: number;
}

export type BreakerStateName = 'closed' | 'open' | 'halfOpen' | 'paused';

export interface BreakerContext {
  origin: string;
  failureThreshold: number;
  maxConcurrency: number;
  initialResetTimeoutMs: number;
  maxResetTimeoutMs: number;
  /** current wait in `open` before the next probe */
  resetTimeoutMs: number;
  /** length of the current (or last) Retry-After pause */
  pauseMs: number;
  /** permits that may be held at once while closed (ramps 1..maxConcurrency after recovery) */
  allowed: number;
  /** permits held now (= holders.length) */
  inFlight: number;
  /** askers queued for a permit (= queue.length) */
  waiting: number;
  holders: AnyActorRef[];
  queue: AnyActorRef[];
  /** the holder of the half-open probe permit, until it reports */
  probe: AnyActorRef | null;
  consecutiveFailures: number;
  /** mirrors the state value; lets entry actions report where the breaker came from */
  phase: BreakerStateName;
}

export type BreakerEvent =
  | { type: 'ACQUIRE'; ref: AnyActorRef }
  | { type: 'CANCEL'; ref: AnyActorRef }
  | { type: 'RELEASE'; ref: AnyActorRef; outcome: Outcome };

/** Sent to a delivery actor when it may make one attempt. */
export type PermitEvent = { type: 'PERMIT' };

export type BreakerEmitted = {
  type: 'stateChanged';
  origin: string;
  from: BreakerStateName;
  to: BreakerStateName;
};

type ReleaseEvent = Extract<BreakerEvent, { type: 'RELEASE' }>;

function isKnown(context: BreakerContext, ref: AnyActorRef): boolean {
  return context.holders.includes(ref) || context.queue.includes(ref);
}

function permitsAvailable(context: BreakerContext): number {
  switch (context.phase) {
    case 'closed':
      return Math.max(0, context.allowed - context.inFlight);
    case 'halfOpen':
      return context.probe === null ? 1 : 0;
    default:
      return 0;
  }
}

/** The context after `ref` gives back its permit or leaves the queue; unknown refs change nothing. */
function withoutRef(context: BreakerContext, ref: AnyActorRef): Partial<BreakerContext> {
  const holders = context.holders.filter((held) => held !== ref);
  const queue = context.queue.filter((queued) => queued !== ref);
  return {
    holders,
    queue,
    inFlight: holders.length,
    waiting: queue.length,
    probe: context.probe === ref ? null : context.probe,
  };
}

function isRetryAfterPause(outcome: Outcome): boolean {
  return (
    outcome.kind === 'retryable' &&
    (outcome.status === 429 || outcome.status === 503) &&
    outcome.retryAfterMs !== undefined &&
    outcome.retryAfterMs > 0
  );
}

function releaseOf(event: BreakerEvent): ReleaseEvent | undefined {
  return event.type === 'RELEASE' ? event : undefined;
}

function retryAfterOf(event: BreakerEvent): number {
  const outcome = releaseOf(event)?.outcome;
  return outcome?.kind === 'retryable' ? (outcome.retryAfterMs ?? 0) : 0;
}

export const breakerMachine = setup({
  types: {
    input: {} as BreakerInput,
    context: {} as BreakerContext,
    events: {} as BreakerEvent,
    emitted: {} as BreakerEmitted,
  },
  guards: {
    /** a RELEASE from a ref holding no permit (a duplicate, or after CANCEL): ignored */
    isStranger: ({ context, event }) => !context.holders.includes(event.ref),
    isRetryAfter: ({ event }) => {
      const release = releaseOf(event);
      return release !== undefined && isRetryAfterPause(release.outcome);
    },
    isRetryable: ({ event }) => releaseOf(event)?.outcome.kind === 'retryable',
    isSuccess: ({ event }) => releaseOf(event)?.outcome.kind === 'success',
    reachesThreshold: ({ context, event }) =>
      releaseOf(event)?.outcome.kind === 'retryable' &&
      context.consecutiveFailures + 1 >= context.failureThreshold,
    isProbe: ({ context, event }) => event.type === 'RELEASE' && context.probe === event.ref,
  },
  actions: {
    enqueue: assign(({ context, event }) => {
      if (event.type !== 'ACQUIRE' || isKnown(context, event.ref)) return {};
      const queue = [...context.queue, event.ref];
      return { queue, waiting: queue.length };
    }),
    free: assign(({ context, event }) => withoutRef(context, event.ref)),
    grant: enqueueActions(({ context, enqueue }) => {
      const granted = context.queue.slice(0, permitsAvailable(context));
      if (granted.length === 0) return;
      const queue = context.queue.slice(granted.length);
      const holders = [...context.holders, ...granted];
      enqueue.assign({
        queue,
        holders,
        waiting: queue.length,
        inFlight: holders.length,
        probe: context.phase === 'halfOpen' ? (granted[0] ?? null) : context.probe,
      });
      for (const ref of granted) enqueue.sendTo(ref, { type: 'PERMIT' } satisfies PermitEvent);
    }),
    countOutcome: assign(({ context, event }) => {
      const kind = releaseOf(event)?.outcome.kind;
      if (kind === 'retryable') return { consecutiveFailures: context.consecutiveFailures + 1 };
      if (kind === 'success') return { consecutiveFailures: 0 };
      // permanent / split: the endpoint answered but did not accept; the streak stands.
      return {};
    }),
    rampUp: assign(({ context }) => ({ allowed: Math.min(context.maxConcurrency, context.allowed + 1) })),
    startRecovery: assign(({ context }) => ({
      allowed: 1,
      consecutiveFailures: 0,
      resetTimeoutMs: context.initialResetTimeoutMs,
    })),
    growResetTimeout: assign(({ context }) => ({
      resetTimeoutMs: Math.min(context.resetTimeoutMs * 2, context.maxResetTimeoutMs),
    })),
    startPause: assign(({ context, event }) => ({
      pauseMs: Math.min(retryAfterOf(event), context.maxResetTimeoutMs),
    })),
    enterPhase: enqueueActions(({ context, enqueue }, params: { phase: BreakerStateName }) => {
      if (context.phase === params.phase) return;
      enqueue.emit({ type: 'stateChanged', origin: context.origin, from: context.phase, to: params.phase });
      enqueue.assign({ phase: params.phase });
    }),
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
    maxConcurrency: input.maxConcurrency,
    initialResetTimeoutMs: input.resetTimeoutMs,
    maxResetTimeoutMs: input.maxResetTimeoutMs,
    resetTimeoutMs: input.resetTimeoutMs,
    pauseMs: 0,
    allowed: input.maxConcurrency,
    inFlight: 0,
    waiting: 0,
    holders: [],
    queue: [],
    probe: null,
    consecutiveFailures: 0,
    phase: 'closed',
  }),
  initial: 'closed',
  on: {
    ACQUIRE: { actions: ['enqueue', 'grant'] },
    CANCEL: { actions: ['free', 'grant'] },
  },
  states: {
    closed: {
      entry: [{ type: 'enterPhase', params: { phase: 'closed' } }, 'grant'],
      on: {
        RELEASE: [
          { guard: 'isStranger' },
          { guard: 'isRetryAfter', target: 'paused', actions: ['free', 'countOutcome', 'startPause'] },
          { guard: 'reachesThreshold', target: 'open', actions: ['free', 'countOutcome'] },
          { guard: 'isSuccess', actions: ['free', 'countOutcome', 'rampUp', 'grant'] },
          { actions: ['free', 'countOutcome', 'grant'] },
        ],
      },
    },
    open: {
      entry: { type: 'enterPhase', params: { phase: 'open' } },
      after: { resetTimeout: 'halfOpen' },
      on: {
        RELEASE: [
          { guard: 'isStranger' },
          { guard: 'isRetryAfter', target: 'paused', actions: ['free', 'countOutcome', 'startPause'] },
          // a permit granted before the breaker opened: free it and count it, nothing more
          { actions: ['free', 'countOutcome'] },
        ],
      },
    },
    halfOpen: {
      entry: [{ type: 'enterPhase', params: { phase: 'halfOpen' } }, 'grant'],
      on: {
        RELEASE: [
          { guard: 'isStranger' },
          { guard: 'isRetryAfter', target: 'paused', actions: ['free', 'countOutcome', 'startPause'] },
          {
            guard: and(['isProbe', 'isRetryable']),
            target: 'open',
            actions: ['free', 'countOutcome', 'growResetTimeout'],
          },
          // the probe got an answer (success, permanent or split): the endpoint is reachable
          { guard: 'isProbe', target: 'closed', actions: ['free', 'startRecovery'] },
          { actions: ['free', 'countOutcome', 'grant'] },
        ],
      },
    },
    paused: {
      entry: { type: 'enterPhase', params: { phase: 'paused' } },
      after: { pauseTimeout: 'halfOpen' },
      on: {
        RELEASE: [
          { guard: 'isStranger' },
          // the latest Retry-After wins: restart the pause with it
          {
            guard: 'isRetryAfter',
            target: 'paused',
            reenter: true,
            actions: ['free', 'countOutcome', 'startPause'],
          },
          { actions: ['free', 'countOutcome'] },
        ],
      },
    },
  },
});
