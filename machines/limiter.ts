import { assign, enqueueActions, setup, type AnyActorRef } from 'xstate';
import {
  AIMD_DEFAULTS,
  EMPTY_WINDOW,
  nextBaseline,
  nextLimit,
  type AimdSettings,
  type AimdWindow,
  type RttAverage,
} from './aimd.js';
import type { BreakerStateName } from './breaker.js';
import type { Outcome } from './outcome.js';

/**
 * The concurrency limiter of one destination origin: it hands out permits, first come first
 * served, as many as its limit while the circuit is closed (`flowing`), one probe while it is
 * half-open (`probing`), none while it is open or paused, or while the probe's answer is being
 * judged (`held`). It never decides whether the
 * origin may be tried (the breaker does, through CIRCUIT events) and never reads a clock: round
 * trips arrive as RTT events.
 *
 * Fixed mode keeps the limit at its maximum and, after a recovery, ramps it back up one success at
 * a time. Adaptive mode moves it by AIMD (machines/aimd.ts) once per window, a window being as
 * many completed requests as the limit: about one round trip at full concurrency.
 *
 * Refs are compared by identity, never by `id`: root actors of different systems share ids.
 */

export type LimiterMode = 'fixed' | 'adaptive';

export interface LimiterInput {
  mode: LimiterMode;
  /** fixed: the limit; adaptive: its upper bound */
  maxConcurrency: number;
  aimd?: Partial<AimdSettings>;
}

export interface LimiterContext {
  mode: LimiterMode;
  maxConcurrency: number;
  aimd: AimdSettings;
  /** permits that may be held at once while flowing */
  limit: number;
  holders: AnyActorRef[];
  queue: AnyActorRef[];
  /** the holder of the half-open probe permit, until it gives it back */
  probe: AnyActorRef | null;
  window: AimdWindow;
  /** the moving average of the windows' RTTs (adaptive mode), once one window has ended */
  baseline: RttAverage | undefined;
}

export type LimiterEvent =
  | { type: 'ACQUIRE'; ref: AnyActorRef }
  | { type: 'CANCEL'; ref: AnyActorRef }
  | { type: 'RELEASE'; ref: AnyActorRef; outcome: Outcome }
  /** the round trip of a request the destination accepted */
  | { type: 'RTT'; rttMs: number }
  /** the origin's breaker changed state */
  | { type: 'CIRCUIT'; state: BreakerStateName };

/** Sent to a delivery actor when it may make one attempt. */
export type PermitEvent = { type: 'PERMIT' };

function withoutRef(context: LimiterContext, ref: AnyActorRef): Partial<LimiterContext> {
  return {
    holders: context.holders.filter((held) => held !== ref),
    queue: context.queue.filter((queued) => queued !== ref),
    probe: context.probe === ref ? null : context.probe,
  };
}

function afterRelease(context: LimiterContext, ref: AnyActorRef, outcome: Outcome): Partial<LimiterContext> {
  if (context.mode === 'fixed') {
    // the ramp after a recovery starts at 1: the probe's own success does not count
    const ramps = outcome.kind === 'success' && ref !== context.probe;
    return ramps ? { limit: Math.min(context.maxConcurrency, context.limit + 1) } : {};
  }
  const window = {
    ...context.window,
    completed: context.window.completed + 1,
    backPressure: context.window.backPressure || outcome.kind === 'retryable',
  };
  if (window.completed < context.limit) return { window };
  return {
    limit: nextLimit(context.limit, context.maxConcurrency, window, context.baseline, context.aimd),
    baseline: nextBaseline(context.baseline, context.limit, window, context.aimd),
    window: EMPTY_WINDOW,
  };
}

export const limiterMachine = setup({
  types: {
    input: {} as LimiterInput,
    context: {} as LimiterContext,
    events: {} as LimiterEvent,
  },
  guards: {
    isHolder: ({ context, event }) => event.type === 'RELEASE' && context.holders.includes(event.ref),
    isProbe: ({ context, event }) => event.type === 'RELEASE' && context.probe === event.ref,
    hasRoom: ({ context }) => context.queue.length > 0 && context.holders.length < context.limit,
    probeFree: ({ context }) => context.queue.length > 0 && context.probe === null,
    toHalfOpen: ({ event }) => event.type === 'CIRCUIT' && event.state === 'halfOpen',
    toClosed: ({ event }) => event.type === 'CIRCUIT' && event.state === 'closed',
  },
  actions: {
    enqueue: assign(({ context, event }) => {
      if (event.type !== 'ACQUIRE') return {};
      const known = context.holders.includes(event.ref) || context.queue.includes(event.ref);
      return known ? {} : { queue: [...context.queue, event.ref] };
    }),
    free: assign(({ context, event }) => ('ref' in event ? withoutRef(context, event.ref) : {})),
    tune: assign(({ context, event }) =>
      event.type === 'RELEASE' ? afterRelease(context, event.ref, event.outcome) : {},
    ),
    addRtt: assign(({ context, event }) => {
      if (event.type !== 'RTT') return {};
      const w = context.window;
      return { window: { ...w, rttSumMs: w.rttSumMs + event.rttMs, rttCount: w.rttCount + 1 } };
    }),
    grantUpToLimit: enqueueActions(({ context, enqueue }) => {
      const granted = context.queue.slice(0, context.limit - context.holders.length);
      const holders = [...context.holders, ...granted];
      const reachedLimit = context.window.reachedLimit || holders.length >= context.limit;
      enqueue.assign({
        queue: context.queue.slice(granted.length),
        holders,
        window: { ...context.window, reachedLimit },
      });
      for (const ref of granted) enqueue.sendTo(ref, { type: 'PERMIT' } satisfies PermitEvent);
    }),
    grantProbe: enqueueActions(({ context, enqueue }) => {
      const [probe, ...queue] = context.queue;
      if (probe === undefined) return;
      enqueue.assign({ queue, holders: [...context.holders, probe], probe });
      enqueue.sendTo(probe, { type: 'PERMIT' } satisfies PermitEvent);
    }),
    restartRamp: assign({ limit: 1, window: EMPTY_WINDOW }),
  },
}).createMachine({
  id: 'limiter',
  context: ({ input }) => ({
    mode: input.mode,
    maxConcurrency: input.maxConcurrency,
    aimd: { ...AIMD_DEFAULTS, ...input.aimd },
    // adaptive starts low and earns its concurrency, as after a recovery
    limit: input.mode === 'fixed' ? input.maxConcurrency : 1,
    holders: [],
    queue: [],
    probe: null,
    window: EMPTY_WINDOW,
    baseline: undefined,
  }),
  initial: 'flowing',
  on: {
    ACQUIRE: { actions: 'enqueue' },
    CANCEL: { actions: 'free' },
    // a RELEASE from a ref holding no permit (a duplicate, or after CANCEL) is ignored
    RELEASE: { guard: 'isHolder', actions: ['tune', 'free'] },
    RTT: { actions: 'addRtt' },
    CIRCUIT: [
      { guard: 'toHalfOpen', target: '.probing' },
      // closed is only ever reached from half-open: recovered, concurrency comes back gradually
      { guard: 'toClosed', target: '.flowing', actions: 'restartRamp' },
      { target: '.held' },
    ],
  },
  states: {
    flowing: {
      always: { guard: 'hasRoom', actions: 'grantUpToLimit' },
    },
    probing: {
      always: { guard: 'probeFree', actions: 'grantProbe' },
      // the probe's answer decides: no other permit until the breaker says what it decided
      on: { RELEASE: { guard: 'isProbe', target: 'held', actions: ['tune', 'free'] } },
    },
    held: {},
  },
});
