import { assign, emit, fromCallback, fromPromise, sendTo, setup, type AnyActorRef } from 'xstate';
import type { BreakerEvent } from './breaker.js';
import type { Outcome } from './outcome.js';
import { retryDelayMs, type RetryPolicy } from './retry-policy.js';

export type { RetryPolicy } from './retry-policy.js';

/**
 * The delivery of one spooled batch: wait for a permit from the origin's breaker, send, release
 * the permit with the outcome, then finish or back off and wait again.
 *
 * XState 5.33 runs no exit actions when an actor is stopped; it only stops the actor's children.
 * So the permit (or the place in the breaker's queue) is given back by the cleanup of an invoked
 * callback actor (`breakerLease`), which runs on stop as well as when a final state is reached.
 * In the latter case the breaker treats the CANCEL of a ref it does not know as a no-op.
 */

export interface DeliveryInput {
  batchId: string;
  itemCount: number;
  /** attempts already made by earlier runs (from the spool) */
  attempts: number;
  /** the breakerMachine actor of the destination origin */
  breaker: AnyActorRef;
  policy: RetryPolicy;
  /** returns [0, 1]; jitter source, Math.random by default */
  random?: () => number;
}

export type DeliveryResult = 'delivered' | 'parked' | 'split' | 'deadLettered';

export interface AttemptRecord {
  attempt: number;
  outcome: Outcome;
}

export interface DeliveryContext {
  batchId: string;
  itemCount: number;
  /** attempts made so far, earlier runs included */
  attempts: number;
  breaker: AnyActorRef;
  policy: RetryPolicy;
  random: () => number;
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
    breakerLease: fromCallback<DeliveryEvent, { breaker: AnyActorRef; ref: AnyActorRef }>(({ input }) => {
      return () => input.breaker.send({ type: 'CANCEL', ref: input.ref } satisfies BreakerEvent);
    }),
  },
  actions: {
    acquire: sendTo(
      ({ context }) => context.breaker,
      ({ self }) => ({ type: 'ACQUIRE', ref: self }) satisfies BreakerEvent,
    ),
    release: sendTo(
      ({ context }) => context.breaker,
      ({ self }, params: { outcome: Outcome }) =>
        ({ type: 'RELEASE', ref: self, outcome: params.outcome }) satisfies BreakerEvent,
    ),
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
      nextDelayMs: retryDelayMs(context.policy, context.attempts, context.lastOutcome, context.random),
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
    itemCount: input.itemCount,
    attempts: input.attempts,
    breaker: input.breaker,
    policy: input.policy,
    random: input.random ?? Math.random,
    history: [],
    lastOutcome: undefined,
    nextDelayMs: undefined,
    result: undefined,
  }),
  invoke: {
    id: 'lease',
    src: 'breakerLease',
    input: ({ context, self }) => ({ breaker: context.breaker, ref: self }),
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
        { target: 'backoff', actions: ['scheduleRetry', 'emitAttempt'] },
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
