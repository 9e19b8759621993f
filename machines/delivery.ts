import { assign, emit, fromCallback, fromPromise, sendTo, setup, type AnyActorRef } from 'xstate';
import type { LimiterEvent } from './limiter.js';
import type { Outcome } from './outcome.js';
import { retryDelayMs, type RetryPolicy } from './retry-policy.js';

export type { RetryPolicy } from './retry-policy.js';

/**
 * The delivery of one spooled batch: wait for a permit from the origin's limiter, send, release
 * the permit with the outcome, then finish or back off and wait again. It never touches the spool
 * or the network itself (the wiring provides `send`) and draws no random number: the jitter of
 * its backoff comes from the provided `drawJitter` action (`withJitter`).
 *
 * XState 5.33 runs no exit actions when an actor is stopped; it only stops the actor's children.
 * So the permit (or the place in the limiter's queue) is given back by the cleanup of an invoked
 * callback actor (`permitLease`), which runs on stop as well as when a final state is reached.
 * In the latter case the limiter treats the CANCEL of a ref it does not know as a no-op.
 */

export interface DeliveryInput {
  batchId: string;
  /** attempts already made by earlier runs (from the spool) */
  attempts: number;
  /** the limiterMachine actor of the destination origin */
  limiter: AnyActorRef;
  policy: RetryPolicy;
}

export type DeliveryResult = 'delivered' | 'parked' | 'split' | 'deadLettered';

export interface AttemptRecord {
  attempt: number;
  outcome: Outcome;
}

export interface DeliveryContext {
  batchId: string;
  /** attempts made so far, earlier runs included */
  attempts: number;
  limiter: AnyActorRef;
  policy: RetryPolicy;
  /** the jitter draw in [0, 1] for the next retry delay (0.5: none) */
  jitterDraw: number;
  /** the last HISTORY_LIMIT attempts, oldest first */
  history: AttemptRecord[];
  lastOutcome: Outcome | undefined;
  /** wait before the next attempt, set on entering backoff */
  nextDelayMs: number | undefined;
  result: DeliveryResult | undefined;
}

export interface DeliveryOutput {
  batchId: string;
  result: DeliveryResult;
  attempts: number;
  lastOutcome?: Outcome;
  history: AttemptRecord[];
}

export type DeliveryEvent = { type: 'PERMIT' };

export type DeliveryEmitted =
  /** an attempt starts (ledger status `sending`) */
  | { type: 'sending'; batchId: string; attempt: number }
  /** an attempt finished; nextDelayMs is set when another attempt follows */
  | { type: 'attempt'; batchId: string; attempt: number; outcome: Outcome; nextDelayMs?: number };

export interface SendInput {
  batchId: string;
  /** 1-based, earlier runs included */
  attempt: number;
}

export const HISTORY_LIMIT = 20;

/** A rejected send actor is a bug in the transport, not an HTTP failure: retry it all the same. */
function internalFailure(error: unknown): Outcome {
  const message = error instanceof Error ? error.message : String(error);
  return { kind: 'retryable', reason: `internal: ${message}` };
}

function appendBounded(history: AttemptRecord[], record: AttemptRecord): AttemptRecord[] {
  return [...history, record].slice(-HISTORY_LIMIT);
}

function toOutput(context: DeliveryContext): DeliveryOutput {
  return {
    batchId: context.batchId,
    result: context.result ?? 'parked',
    attempts: context.attempts,
    ...(context.lastOutcome ? { lastOutcome: context.lastOutcome } : {}),
    history: context.history,
  };
}

export const deliveryMachine = setup({
  types: {
    input: {} as DeliveryInput,
    context: {} as DeliveryContext,
    events: {} as DeliveryEvent,
    emitted: {} as DeliveryEmitted,
    output: {} as DeliveryOutput,
  },
  actors: {
    /** placeholder: the wiring code provides the HTTP transport with `.provide({ actors: { send } })` */
    send: fromPromise<Outcome, SendInput>(async () => {
      throw new Error('send actor not provided');
    }),
    /** holds no state; its cleanup gives the permit or queue place back when the delivery stops */
    permitLease: fromCallback<DeliveryEvent, { limiter: AnyActorRef; ref: AnyActorRef }>(({ input }) => {
      return () => input.limiter.send({ type: 'CANCEL', ref: input.ref } satisfies LimiterEvent);
    }),
  },
  actions: {
    acquire: sendTo(
      ({ context }) => context.limiter,
      ({ self }) => ({ type: 'ACQUIRE', ref: self }) satisfies LimiterEvent,
    ),
    release: sendTo(
      ({ context }) => context.limiter,
      ({ self }, params: { outcome: Outcome }) =>
        ({ type: 'RELEASE', ref: self, outcome: params.outcome }) satisfies LimiterEvent,
    ),
    /** placeholder: no jitter; `withJitter` provides a random draw */
    drawJitter: assign({ jitterDraw: 0.5 }),
    recordAttempt: assign(({ context }, params: { outcome: Outcome }) => {
      const attempt = context.attempts + 1;
      return {
        attempts: attempt,
        lastOutcome: params.outcome,
        history: appendBounded(context.history, { attempt, outcome: params.outcome }),
        nextDelayMs: undefined,
      };
    }),
    scheduleRetry: assign(({ context }) => ({
      nextDelayMs: retryDelayMs(
        context.policy,
        context.attempts,
        context.lastOutcome,
        () => context.jitterDraw,
      ),
    })),
    emitSending: emit(({ context }) => ({
      type: 'sending' as const,
      batchId: context.batchId,
      attempt: context.attempts + 1,
    })),
    emitAttempt: emit(({ context }) => ({
      type: 'attempt' as const,
      batchId: context.batchId,
      attempt: context.attempts,
      // lastOutcome is always set once an attempt has been recorded
      outcome: context.lastOutcome as Outcome,
      ...(context.nextDelayMs !== undefined ? { nextDelayMs: context.nextDelayMs } : {}),
    })),
    settle: assign((_, params: { result: DeliveryResult }) => ({ result: params.result })),
  },
  guards: {
    budgetSpent: ({ context }) => context.attempts >= context.policy.maxAttempts,
    lastOutcomeIs: ({ context }, params: { kind: Outcome['kind'] }) =>
      context.lastOutcome?.kind === params.kind,
  },
  delays: {
    retryDelay: ({ context }) => context.nextDelayMs ?? 0,
  },
}).createMachine({
  id: 'delivery',
  context: ({ input }) => ({
    batchId: input.batchId,
    attempts: input.attempts,
    limiter: input.limiter,
    policy: input.policy,
    jitterDraw: 0.5,
    history: [],
    lastOutcome: undefined,
    nextDelayMs: undefined,
    result: undefined,
  }),
  invoke: {
    id: 'lease',
    src: 'permitLease',
    input: ({ context, self }) => ({ limiter: context.limiter, ref: self }),
  },
  initial: 'start',
  output: ({ context }) => toOutput(context),
  states: {
    /** transient: a batch whose budget earlier runs used up is parked without an attempt */
    start: {
      always: [{ guard: 'budgetSpent', target: 'parked' }, { target: 'waiting' }],
    },
    waiting: {
      entry: 'acquire',
      on: { PERMIT: 'sending' },
    },
    sending: {
      entry: 'emitSending',
      invoke: {
        id: 'send',
        src: 'send',
        input: ({ context }) => ({ batchId: context.batchId, attempt: context.attempts + 1 }),
        onDone: {
          target: 'settling',
          actions: [
            { type: 'release', params: ({ event }) => ({ outcome: event.output }) },
            { type: 'recordAttempt', params: ({ event }) => ({ outcome: event.output }) },
          ],
        },
        onError: {
          target: 'settling',
          actions: [
            { type: 'release', params: ({ event }) => ({ outcome: internalFailure(event.error) }) },
            { type: 'recordAttempt', params: ({ event }) => ({ outcome: internalFailure(event.error) }) },
          ],
        },
      },
    },
    /** transient: routes on the outcome just recorded in context */
    settling: {
      always: [
        {
          guard: { type: 'lastOutcomeIs', params: { kind: 'success' } },
          target: 'delivered',
          actions: 'emitAttempt',
        },
        {
          guard: { type: 'lastOutcomeIs', params: { kind: 'split' } },
          target: 'split',
          actions: 'emitAttempt',
        },
        {
          guard: { type: 'lastOutcomeIs', params: { kind: 'permanent' } },
          target: 'deadLettered',
          actions: 'emitAttempt',
        },
        { guard: 'budgetSpent', target: 'parked', actions: 'emitAttempt' },
        { target: 'backoff', actions: ['drawJitter', 'scheduleRetry', 'emitAttempt'] },
      ],
    },
    backoff: {
      after: { retryDelay: 'waiting' },
    },
    delivered: { type: 'final', entry: { type: 'settle', params: { result: 'delivered' } } },
    split: { type: 'final', entry: { type: 'settle', params: { result: 'split' } } },
    deadLettered: { type: 'final', entry: { type: 'settle', params: { result: 'deadLettered' } } },
    parked: { type: 'final', entry: { type: 'settle', params: { result: 'parked' } } },
  },
});

/** The machine with `random` (returning [0, 1], like Math.random) as the jitter source of its backoff. */
export function withJitter(random: () => number) {
  return deliveryMachine.provide({
    actions: { drawJitter: assign(() => ({ jitterDraw: random() })) },
  });
}
