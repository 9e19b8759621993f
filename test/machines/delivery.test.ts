import { describe, expect, it } from 'vitest';
import {
  createActor,
  fromPromise,
  fromTransition,
  getInitialMicrosteps,
  getMicrosteps,
  setup,
  SimulatedClock,
  type SnapshotFrom,
} from 'xstate';
import { adjacencyMapToArray, getAdjacencyMap, getShortestPaths, getSimplePaths } from 'xstate/graph';
import type { BreakerInput } from '../../machines/breaker.js';
import type { LimiterEvent } from '../../machines/limiter.js';
import {
  deliveryMachine,
  HISTORY_LIMIT,
  type DeliveryEmitted,
  type DeliveryEvent,
  type DeliveryInput,
  type RetryPolicy,
  type SendInput,
  withJitter,
} from '../../machines/delivery.js';
import type { Outcome } from '../../machines/outcome.js';
import { baseDelayMs, jitteredDelayMs, retryDelayMs } from '../../machines/retry-policy.js';
import { Gate } from '../../src/delivery/gate.js';

const OK: Outcome = { kind: 'success', status: 200 };
const FAIL: Outcome = { kind: 'retryable', status: 500, reason: 'http_500' };
const BAD: Outcome = { kind: 'permanent', status: 422, reason: 'http_422', bodyExcerpt: 'nope' };
const TOO_BIG: Outcome = { kind: 'split', status: 413 };
const retryAfter = (ms: number, status = 503): Outcome => ({
  kind: 'retryable',
  status,
  reason: `http_${status}`,
  retryAfterMs: ms,
});

/** the default retry policy: 1 s, x2, 5 min, 10 attempts; 20 % jitter */
const POLICY: RetryPolicy = {
  maxAttempts: 10,
  initialDelayMs: 1_000,
  multiplier: 2,
  maxDelayMs: 300_000,
  jitter: 0.2,
};

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Records what a delivery sends to its limiter; grants nothing by itself. */
const recorderLogic = fromTransition((events: LimiterEvent[], event: LimiterEvent) => [...events, event], []);

/** A send actor that answers with `results` in order (the last one repeats); an Error rejects. */
function scripted(results: Array<Outcome | Error>) {
  const calls: SendInput[] = [];
  const send = fromPromise<Outcome, SendInput>(async ({ input }) => {
    calls.push(input);
    const next = results[Math.min(calls.length, results.length) - 1]!;
    if (next instanceof Error) throw next;
    return next;
  });
  return { send, calls };
}

function startDelivery(
  results: Array<Outcome | Error>,
  overrides: Partial<Omit<DeliveryInput, 'limiter' | 'policy'>> & {
    policy?: Partial<RetryPolicy>;
    random?: () => number;
  } = {},
) {
  const clock = new SimulatedClock();
  const limiter = createActor(recorderLogic).start();
  const { send, calls } = scripted(results);
  const { random = () => 0.5, ...rest } = overrides;
  const input: DeliveryInput = {
    batchId: 'b-1',
    attempts: 0,
    ...rest,
    limiter,
    policy: { ...POLICY, ...overrides.policy },
  };
  const actor = createActor(withJitter(random).provide({ actors: { send } }), { input, clock });
  const emitted: DeliveryEmitted[] = [];
  actor.on('*', (event) => emitted.push(event));
  actor.start();
  const toLimiter = () => limiter.getSnapshot().context;
  const kinds = () => toLimiter().map((e) => e.type);
  /** grant the permit the delivery waits for, and let the send actor answer */
  const attempt = async () => {
    expect(actor.getSnapshot().value).toBe('waiting');
    actor.send({ type: 'PERMIT' });
    await flush();
  };
  const state = () => actor.getSnapshot().value;
  const ctx = () => actor.getSnapshot().context;
  return { actor, clock, limiter, calls, emitted, toLimiter, kinds, attempt, state, ctx };
}

describe('retry policy (pure)', () => {
  const schedule = (random: () => number) =>
    Array.from({ length: 10 }, (_, i) => jitteredDelayMs(POLICY, i + 1, random));

  it('grows by the multiplier from the initial delay and is capped at the max delay', () => {
    expect(Array.from({ length: 10 }, (_, i) => baseDelayMs(POLICY, i + 1))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000,
    ]);
    expect(baseDelayMs(POLICY, 5_000)).toBe(300_000);
    expect(baseDelayMs({ ...POLICY, initialDelayMs: 0 }, 5_000)).toBe(0);
  });

  it('random = 0.5 gives the base delay', () => {
    expect(schedule(() => 0.5)).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000,
    ]);
  });

  it('random = 0 gives base * (1 - jitter)', () => {
    expect(schedule(() => 0)).toEqual([
      800, 1_600, 3_200, 6_400, 12_800, 25_600, 51_200, 102_400, 204_800, 240_000,
    ]);
  });

  it('random = 1 gives base * (1 + jitter), capped at the max delay', () => {
    expect(schedule(() => 1)).toEqual([
      1_200, 2_400, 4_800, 9_600, 19_200, 38_400, 76_800, 153_600, 300_000, 300_000,
    ]);
  });

  it('any random stays within [base * 0.8, min(max, base * 1.2)]', () => {
    for (let n = 1; n <= 10; n++) {
      for (const r of [0, 0.1, 0.33, 0.5, 0.77, 0.999, 1]) {
        const delay = jitteredDelayMs(POLICY, n, () => r);
        const base = baseDelayMs(POLICY, n);
        expect(delay).toBeGreaterThanOrEqual(Math.floor(base * 0.8));
        expect(delay).toBeLessThanOrEqual(Math.min(POLICY.maxDelayMs, Math.ceil(base * 1.2)));
      }
    }
  });

  it('a longer Retry-After wins over the backoff, capped at the max delay; a shorter one loses', () => {
    const mid = () => 0.5;
    expect(retryDelayMs(POLICY, 1, retryAfter(30_000), mid)).toBe(30_000);
    expect(retryDelayMs(POLICY, 1, retryAfter(36_000_000), mid)).toBe(300_000);
    expect(retryDelayMs(POLICY, 4, retryAfter(100), mid)).toBe(8_000);
    expect(retryDelayMs(POLICY, 1, retryAfter(0), mid)).toBe(1_000);
    expect(retryDelayMs(POLICY, 1, FAIL, mid)).toBe(1_000);
  });
});

describe('delivery: one attempt', () => {
  it('asks the breaker for a permit, sends on PERMIT, releases with the outcome, and is delivered', async () => {
    const d = startDelivery([OK]);
    expect(d.state()).toBe('waiting');
    expect(d.toLimiter()).toEqual([{ type: 'ACQUIRE', ref: d.actor }]);
    expect(d.calls).toEqual([]);

    d.actor.send({ type: 'PERMIT' });
    expect(d.state()).toBe('sending');
    expect(d.calls).toEqual([{ batchId: 'b-1', attempt: 1 }]);
    await flush();

    expect(d.state()).toBe('delivered');
    expect(d.actor.getSnapshot().status).toBe('done');
    expect(d.toLimiter()[1]).toEqual({ type: 'RELEASE', ref: d.actor, outcome: OK });
    // the lease cleanup's CANCEL follows the RELEASE; the breaker ignores it (it no longer knows the ref)
    expect(d.kinds()).toEqual(['ACQUIRE', 'RELEASE', 'CANCEL']);
    expect(d.emitted).toEqual([
      { type: 'sending', batchId: 'b-1', attempt: 1 },
      { type: 'attempt', batchId: 'b-1', attempt: 1, outcome: OK },
    ]);
    expect(d.actor.getSnapshot().output).toEqual({
      batchId: 'b-1',
      result: 'delivered',
      attempts: 1,
      lastOutcome: OK,
      history: [{ attempt: 1, outcome: OK }],
    });
  });

  it('permanent -> deadLettered', async () => {
    const d = startDelivery([BAD]);
    await d.attempt();
    expect(d.state()).toBe('deadLettered');
    expect(d.actor.getSnapshot().output).toMatchObject({
      result: 'deadLettered',
      attempts: 1,
      lastOutcome: BAD,
    });
  });

  it('split -> split', async () => {
    const d = startDelivery([TOO_BIG]);
    await d.attempt();
    expect(d.state()).toBe('split');
    expect(d.actor.getSnapshot().output).toMatchObject({
      result: 'split',
      attempts: 1,
      lastOutcome: TOO_BIG,
    });
  });

  it('the placeholder send actor rejects: an unprovided transport is a retryable internal failure', async () => {
    const limiter = createActor(recorderLogic).start();
    const actor = createActor(deliveryMachine, {
      input: { batchId: 'b', attempts: 0, limiter, policy: POLICY },
      clock: new SimulatedClock(),
    }).start();
    actor.send({ type: 'PERMIT' });
    await flush();
    expect(actor.getSnapshot().value).toBe('backoff');
    expect(actor.getSnapshot().context.lastOutcome).toEqual({
      kind: 'retryable',
      reason: 'internal: send actor not provided',
    });
    actor.stop();
  });
});

describe('delivery: retries', () => {
  it('500, 500, 200: backs off 1 s then 2 s, asking for a new permit each time', async () => {
    const d = startDelivery([FAIL, FAIL, OK]);
    await d.attempt();
    expect(d.state()).toBe('backoff');
    expect(d.ctx().nextDelayMs).toBe(1_000);
    expect(d.kinds()).toEqual(['ACQUIRE', 'RELEASE']);
    d.clock.increment(999);
    expect(d.state()).toBe('backoff');
    d.clock.increment(1);
    expect(d.state()).toBe('waiting');
    expect(d.kinds()).toEqual(['ACQUIRE', 'RELEASE', 'ACQUIRE']);

    await d.attempt();
    expect(d.ctx()).toMatchObject({ attempts: 2, nextDelayMs: 2_000 });
    d.clock.increment(2_000);
    await d.attempt();

    expect(d.state()).toBe('delivered');
    expect(d.calls.map((c) => c.attempt)).toEqual([1, 2, 3]);
    expect(d.emitted.filter((e) => e.type === 'attempt')).toEqual([
      { type: 'attempt', batchId: 'b-1', attempt: 1, outcome: FAIL, nextDelayMs: 1_000 },
      { type: 'attempt', batchId: 'b-1', attempt: 2, outcome: FAIL, nextDelayMs: 2_000 },
      { type: 'attempt', batchId: 'b-1', attempt: 3, outcome: OK },
    ]);
    expect(d.actor.getSnapshot().output).toMatchObject({
      result: 'delivered',
      attempts: 3,
      history: [
        { attempt: 1, outcome: FAIL },
        { attempt: 2, outcome: FAIL },
        { attempt: 3, outcome: OK },
      ],
    });
  });

  it('continues the count of earlier runs: attempt numbers and backoff follow the spooled attempts', async () => {
    const d = startDelivery([FAIL], { attempts: 3 });
    await d.attempt();
    expect(d.calls).toEqual([{ batchId: 'b-1', attempt: 4 }]);
    expect(d.ctx()).toMatchObject({ attempts: 4, nextDelayMs: 8_000 });
  });

  it('the backoff of attempts 1..10 follows the jittered schedule, within bounds', async () => {
    for (const [random, factor] of [
      [() => 0, 0.8],
      [() => 0.5, 1],
      [() => 1, 1.2],
    ] as const) {
      const d = startDelivery([FAIL], { random, policy: { maxAttempts: 11 } });
      const delays: number[] = [];
      for (let n = 1; n <= 10; n++) {
        await d.attempt();
        delays.push(d.ctx().nextDelayMs!);
        d.clock.increment(d.ctx().nextDelayMs!);
      }
      expect(delays).toEqual(
        Array.from({ length: 10 }, (_, i) =>
          Math.min(300_000, Math.round(baseDelayMs(POLICY, i + 1) * factor)),
        ),
      );
    }
  });

  it('a Retry-After longer than the backoff is honoured, and capped at the max delay', async () => {
    const d = startDelivery([retryAfter(30_000), retryAfter(36_000_000, 429), retryAfter(10), OK]);
    await d.attempt();
    expect(d.ctx().nextDelayMs).toBe(30_000);
    d.clock.increment(29_999);
    expect(d.state()).toBe('backoff');
    d.clock.increment(1);
    await d.attempt();
    expect(d.ctx().nextDelayMs).toBe(300_000);
    d.clock.increment(300_000);
    await d.attempt();
    expect(d.ctx().nextDelayMs).toBe(4_000); // the backoff of attempt 3 beats a 10 ms Retry-After
  });

  it('a rejected send (a bug, not an HTTP failure) is retryable with reason internal: <message>', async () => {
    const d = startDelivery([new Error('boom'), OK]);
    await d.attempt();
    const internal = { kind: 'retryable', reason: 'internal: boom' };
    expect(d.state()).toBe('backoff');
    expect(d.toLimiter()[1]).toEqual({ type: 'RELEASE', ref: d.actor, outcome: internal });
    d.clock.increment(d.ctx().nextDelayMs!);
    await d.attempt();
    expect(d.state()).toBe('delivered');
  });

  it('exhausting maxAttempts parks the batch', async () => {
    const d = startDelivery([FAIL], { policy: { maxAttempts: 3 } });
    for (let n = 1; n <= 3; n++) {
      await d.attempt();
      if (n < 3) d.clock.increment(d.ctx().nextDelayMs!);
    }
    expect(d.state()).toBe('parked');
    expect(d.emitted.at(-1)).toEqual({ type: 'attempt', batchId: 'b-1', attempt: 3, outcome: FAIL });
    expect(d.actor.getSnapshot().output).toMatchObject({ result: 'parked', attempts: 3, lastOutcome: FAIL });
    expect(d.kinds().filter((k) => k === 'ACQUIRE')).toHaveLength(3);
  });

  it('its context is plain data (no random source, no item count): a backoff snapshot round-trips as JSON', async () => {
    const d = startDelivery([FAIL], { random: () => 1 });
    await d.attempt();
    expect(d.state()).toBe('backoff');
    const { limiter, ...plain } = d.ctx();
    expect(limiter).toBe(d.limiter);
    expect(Object.keys(plain).sort()).toEqual([
      'attempts',
      'batchId',
      'history',
      'jitterDraw',
      'lastOutcome',
      'nextDelayMs',
      'policy',
      'result',
    ]);
    expect(plain.jitterDraw).toBe(1);
    expect(JSON.parse(JSON.stringify(plain))).toEqual(plain);
    expect(() => JSON.stringify(d.actor.getPersistedSnapshot())).not.toThrow();
  });

  it('a batch whose earlier runs spent the budget is parked without an attempt', () => {
    const d = startDelivery([OK], { attempts: 10 });
    expect(d.state()).toBe('parked');
    expect(d.calls).toEqual([]);
    expect(d.kinds()).not.toContain('ACQUIRE');
    expect(d.actor.getSnapshot().output).toEqual({
      batchId: 'b-1',
      result: 'parked',
      attempts: 10,
      history: [],
    });
  });

  it(`keeps only the last ${HISTORY_LIMIT} attempts in the history`, async () => {
    const d = startDelivery([FAIL], { policy: { maxAttempts: 25, initialDelayMs: 1, maxDelayMs: 1 } });
    for (let n = 1; n <= 25; n++) {
      await d.attempt();
      d.clock.increment(1);
    }
    expect(d.state()).toBe('parked');
    const history = d.actor.getSnapshot().output!.history;
    expect(history).toHaveLength(HISTORY_LIMIT);
    expect(history.map((h) => h.attempt)).toEqual(Array.from({ length: 20 }, (_, i) => i + 6));
  });
});

describe('delivery: stopping', () => {
  it('xstate 5.33 runs no exit actions when an actor is stopped, but stops its invoked children', async () => {
    const log: string[] = [];
    const probe = setup({
      actors: {
        child: fromPromise(
          ({ signal }) =>
            new Promise<void>(() => signal.addEventListener('abort', () => log.push('child aborted'))),
        ),
      },
    }).createMachine({
      initial: 'a',
      states: { a: { exit: () => log.push('exit a'), invoke: { src: 'child' } } },
      exit: () => log.push('exit root'),
    });
    const actor = createActor(probe).start();
    await flush();
    actor.stop();
    expect(log).toEqual(['child aborted']);
  });

  it('stop while waiting sends CANCEL (the breaker drops it from its queue)', () => {
    const d = startDelivery([OK]);
    d.actor.stop();
    expect(d.toLimiter()).toEqual([
      { type: 'ACQUIRE', ref: d.actor },
      { type: 'CANCEL', ref: d.actor },
    ]);
  });

  it('stop while sending aborts the request and sends CANCEL (frees the permit, no RELEASE)', async () => {
    const limiter = createActor(recorderLogic).start();
    let aborted = false;
    const hang = fromPromise<Outcome, SendInput>(
      ({ signal }) =>
        new Promise<Outcome>((_, reject) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            reject(new Error('aborted'));
          }),
        ),
    );
    const actor = createActor(deliveryMachine.provide({ actors: { send: hang } }), {
      input: { batchId: 'b', attempts: 0, limiter, policy: POLICY },
    }).start();
    actor.send({ type: 'PERMIT' });
    expect(actor.getSnapshot().value).toBe('sending');
    actor.stop();
    await flush();
    expect(aborted).toBe(true);
    expect(limiter.getSnapshot().context.map((e) => e.type)).toEqual(['ACQUIRE', 'CANCEL']);
  });

  it('stop in backoff cancels the retry timer; the CANCEL is a no-op for the breaker', async () => {
    const d = startDelivery([FAIL]);
    await d.attempt();
    d.actor.stop();
    d.clock.increment(60_000);
    expect(d.kinds()).toEqual(['ACQUIRE', 'RELEASE', 'CANCEL']);
    expect(d.calls).toHaveLength(1);
  });
});

/** The gate (breaker and fixed limiter) and some deliveries of the same origin, on one simulated clock. */
function origin(
  { maxConcurrency = 2, ...breakerInput }: Partial<BreakerInput> & { maxConcurrency?: number },
  policy: Partial<RetryPolicy> = {},
) {
  const clock = new SimulatedClock();
  const gate = new Gate({
    breaker: {
      origin: 'https://ingest.example',
      failureThreshold: 3,
      resetTimeoutMs: 10_000,
      maxResetTimeoutMs: 60_000,
      ...breakerInput,
    },
    concurrency: maxConcurrency,
    clock,
  });
  const breaker = gate.breaker;
  const ctx = () => {
    const l = gate.limiter.getSnapshot().context;
    const permits = { allowed: l.limit, inFlight: l.holders.length, waiting: l.queue.length };
    return { ...breaker.getSnapshot().context, ...permits, holders: l.holders };
  };
  /** requests in flight, answered by the test */
  const pending: Array<{ input: SendInput; answer: (outcome: Outcome) => void }> = [];
  let concurrent = 0;
  let maxOverAllowed = 0;
  const send = fromPromise<Outcome, SendInput>(({ input }) => {
    concurrent++;
    const { allowed } = ctx();
    if (breaker.getSnapshot().value === 'closed')
      maxOverAllowed = Math.max(maxOverAllowed, concurrent - allowed);
    return new Promise<Outcome>((resolve) =>
      pending.push({
        input,
        answer: (outcome) => {
          concurrent--;
          resolve(outcome);
        },
      }),
    );
  });
  const logic = deliveryMachine.provide({ actors: { send } });
  const deliveries = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      createActor(logic, {
        input: { batchId: `b-${i}`, attempts: 0, limiter: gate.permits, policy: { ...POLICY, ...policy } },
        clock,
      }).start(),
    );
  /** answer every pending request with `outcome`, oldest first */
  const answerAll = async (outcome: Outcome) => {
    for (const request of pending.splice(0)) request.answer(outcome);
    await flush();
  };
  const answerOne = async (outcome: Outcome) => {
    pending.shift()!.answer(outcome);
    await flush();
  };
  return {
    clock,
    breaker,
    pending,
    deliveries,
    answerAll,
    answerOne,
    ctx,
    overAllowed: () => maxOverAllowed,
  };
}

describe('delivery with a real breaker', () => {
  it('opens after N consecutive failures; while open no attempts are burnt; a probe closes it and concurrency ramps', async () => {
    const o = origin({ failureThreshold: 3, maxConcurrency: 3 });
    const ds = o.deliveries(5);
    expect(o.pending).toHaveLength(3);
    expect(o.ctx().waiting).toBe(2);
    await o.answerAll(FAIL);
    expect(o.breaker.getSnapshot().value).toBe('open');
    // the first two failures freed permits while it was still closed: b-3 and b-4 got them
    expect(o.pending.map((p) => p.input.batchId)).toEqual(['b-3', 'b-4']);
    await o.answerAll(FAIL);
    expect(o.ctx()).toMatchObject({ inFlight: 0, consecutiveFailures: 5 });

    // backoffs (1 s) end long before the reset timeout (10 s): everyone queues, nobody sends
    o.clock.increment(9_999);
    expect(o.pending).toHaveLength(0);
    expect(o.ctx().waiting).toBe(5);
    expect(ds.map((d) => d.getSnapshot().context.attempts)).toEqual([1, 1, 1, 1, 1]);
    expect(ds.every((d) => d.getSnapshot().value === 'waiting')).toBe(true);

    o.clock.increment(1);
    expect(o.breaker.getSnapshot().value).toBe('halfOpen');
    expect(o.pending).toHaveLength(1);
    await o.answerOne(OK);
    expect(o.breaker.getSnapshot().value).toBe('closed');

    const inFlightPerRound: number[] = [];
    while (o.pending.length > 0) {
      inFlightPerRound.push(o.pending.length);
      await o.answerAll(OK);
    }
    expect(inFlightPerRound).toEqual([1, 2, 1]);
    expect(o.ctx().allowed).toBe(3);
    expect(ds.map((d) => d.getSnapshot().value)).toEqual(Array(5).fill('delivered'));
    expect(o.overAllowed()).toBe(0);
  });

  it('a failed probe reopens with a doubled reset timeout; the waiting deliveries still burn nothing', async () => {
    const o = origin({ failureThreshold: 1, resetTimeoutMs: 10_000, maxResetTimeoutMs: 15_000 });
    const ds = o.deliveries(3);
    await o.answerOne(FAIL);
    expect(o.breaker.getSnapshot().value).toBe('open');
    await o.answerOne(FAIL); // a permit granted before it opened
    o.clock.increment(10_000);
    expect(o.pending).toHaveLength(1);
    await o.answerOne(FAIL);
    expect(o.ctx().resetTimeoutMs).toBe(15_000);
    o.clock.increment(14_999);
    expect(o.pending).toHaveLength(0);
    o.clock.increment(1);
    expect(o.pending).toHaveLength(1);
    expect(ds.map((d) => d.getSnapshot().context.attempts).reduce((a, b) => a + b)).toBe(3);
  });

  it('a 503 with Retry-After pauses the whole origin, not only its own request', async () => {
    const o = origin({ maxConcurrency: 2, maxResetTimeoutMs: 60_000 });
    const ds = o.deliveries(3);
    expect(o.pending).toHaveLength(2);
    await o.answerOne(retryAfter(20_000));
    expect(o.breaker.getSnapshot().value).toBe('paused');
    await o.answerOne(OK);
    // b-2 would be granted now if the breaker were closed
    expect(o.pending).toHaveLength(0);
    expect(ds[2]!.getSnapshot().value).toBe('waiting');
    expect(ds[0]!.getSnapshot().context.nextDelayMs).toBe(20_000);
    o.clock.increment(19_999);
    expect(o.pending).toHaveLength(0);
    o.clock.increment(1);
    // half-open: one probe for b-2 (queued first); b-0 asks again when its own backoff ends, now too
    expect(o.breaker.getSnapshot().value).toBe('halfOpen');
    expect(o.pending.map((p) => p.input.batchId)).toEqual(['b-2']);
    await o.answerOne(OK);
    expect(o.pending.map((p) => p.input.batchId)).toEqual(['b-0']);
    await o.answerAll(OK);
    expect(ds.map((d) => d.getSnapshot().value)).toEqual(['delivered', 'delivered', 'delivered']);
  });

  it('stopping deliveries frees their queue places and permits', async () => {
    const o = origin({ maxConcurrency: 1 });
    const [holder, queued, third] = o.deliveries(3);
    expect(o.ctx()).toMatchObject({ inFlight: 1, waiting: 2 });
    queued!.stop();
    expect(o.ctx()).toMatchObject({ inFlight: 1, waiting: 1 });
    holder!.stop();
    expect(o.ctx()).toMatchObject({ inFlight: 1, waiting: 0, consecutiveFailures: 0 });
    expect(o.ctx().holders).toEqual([third]);
    await flush();
    expect(o.pending.at(-1)!.input.batchId).toBe('b-2');
  });

  it('many deliveries against a flaky endpoint never exceed the allowed concurrency', async () => {
    const o = origin({ failureThreshold: 3, maxConcurrency: 4, resetTimeoutMs: 2_000 }, { maxAttempts: 50 });
    const ds = o.deliveries(30);
    let seed = 7;
    const random = () => (seed = (seed * 16807) % 2_147_483_647) / 2_147_483_647;
    for (let round = 0; round < 400 && ds.some((d) => d.getSnapshot().status === 'active'); round++) {
      if (o.pending.length > 0) await o.answerOne(random() < 0.6 ? OK : FAIL);
      else o.clock.increment(1_000);
      const { inFlight, allowed } = o.ctx();
      if (o.breaker.getSnapshot().value === 'closed') expect(inFlight).toBeLessThanOrEqual(allowed);
    }
    expect(ds.map((d) => d.getSnapshot().value)).toEqual(Array(30).fill('delivered'));
    expect(o.overAllowed()).toBe(0);
  });
});

describe('delivery: path coverage (xstate/graph)', () => {
  const limiter = createActor(recorderLogic).start();
  const graphInput: DeliveryInput = {
    batchId: 'g',
    attempts: 0,
    limiter,
    policy: { ...POLICY, maxAttempts: 3 },
  };
  const done = (output: Outcome) => ({ type: 'xstate.done.actor.send', actorId: 'send', output });
  const afterEvents = Object.values(deliveryMachine.root.states).flatMap((node) =>
    node.after.map((t) => ({ type: t.eventType })),
  );
  const events = [
    { type: 'PERMIT' },
    ...[OK, FAIL, BAD, TOO_BIG, retryAfter(30_000)].map(done),
    { type: 'xstate.error.actor.send', actorId: 'send', error: new Error('boom') },
    ...afterEvents,
  ] as unknown as DeliveryEvent[];
  type Snapshot = SnapshotFrom<typeof deliveryMachine>;
  const serializeState = (snapshot: Snapshot) => {
    const c = snapshot.context;
    return JSON.stringify([snapshot.value, c.attempts, c.nextDelayMs ?? null, c.lastOutcome ?? null]);
  };
  const options = { input: graphInput, events, serializeState };
  const shortest = getShortestPaths(deliveryMachine, options);
  const resting = ['waiting', 'sending', 'backoff', 'delivered', 'split', 'deadLettered', 'parked'];

  it('lists the after events itself', () => {
    expect(afterEvents).toEqual([{ type: 'xstate.after.retryDelay.delivery.backoff' }]);
  });

  it('reaches every resting state (start and settling are transient)', () => {
    expect(new Set(shortest.map((p) => p.state.value))).toEqual(new Set(resting));
    expect(Object.keys(deliveryMachine.root.states).sort()).toEqual([...resting, 'settling', 'start'].sort());
  });

  it('simple paths reach every resting state too', () => {
    const small = { ...options, input: { ...graphInput, policy: { ...POLICY, maxAttempts: 2 } } };
    const simple = getSimplePaths(deliveryMachine, small);
    expect(new Set(simple.map((p) => p.state.value))).toEqual(new Set(resting));
  });

  it('takes every transition of the machine, eventless ones included', () => {
    const nodes = [deliveryMachine.root, ...Object.values(deliveryMachine.root.states)];
    const label = (source: string, target: string | undefined, event: string) =>
      `${source} --${event}--> ${target ?? '(self)'}`;
    const all = nodes.flatMap((node) => [
      ...[...node.transitions.values()]
        .flat()
        .map((t) => label(t.source.key, t.target?.[0]?.key, t.eventType)),
      ...(node.always ?? []).map((t) => label(t.source.key, t.target?.[0]?.key, '')),
    ]);
    expect(all).toHaveLength(11);
    const taken = new Set<string>();
    const walk = (values: string[], event: string) => {
      values.slice(1).forEach((to, i) => taken.add(label(values[i]!, to, i === 0 ? event : '')));
    };
    const valuesOf = (steps: Array<[Snapshot, unknown]>) => steps.map(([s]) => String(s.value));
    for (const input of [graphInput, { ...graphInput, attempts: 3 }]) {
      walk(['start', ...valuesOf(getInitialMicrosteps(deliveryMachine, input))], '');
      // getAdjacencyMap's signature cannot take a machine that declares emitted events: cast
      const adjacency = getAdjacencyMap<Snapshot, DeliveryEvent, DeliveryInput>(deliveryMachine as never, {
        ...options,
        input,
      });
      const edges = adjacencyMapToArray(adjacency);
      for (const { state, event } of edges) {
        if (deliveryMachine.getTransitionData(state, event).length === 0) continue;
        walk([String(state.value), ...valuesOf(getMicrosteps(deliveryMachine, state, event))], event.type);
      }
    }
    expect(all.filter((t) => !taken.has(t))).toEqual([]);
  });

  it('replays every shortest path on a real actor, the send stub answering as the path says', async () => {
    for (const path of shortest) {
      const answers = path.steps
        .map((s) => s.event as unknown as { type: string; output?: Outcome; error?: Error })
        .filter((e) => e.type.startsWith('xstate.done.actor') || e.type.startsWith('xstate.error.actor'))
        .map((e) => e.output ?? e.error!);
      const clock = new SimulatedClock();
      const { send } = scripted(answers);
      const actor = createActor(deliveryMachine.provide({ actors: { send } }), {
        input: graphInput,
        clock,
      }).start();
      for (const step of path.steps) {
        const type = step.event.type as string;
        if (type === 'PERMIT') actor.send({ type: 'PERMIT' });
        else if (type.startsWith('xstate.after.')) clock.increment(actor.getSnapshot().context.nextDelayMs!);
        else if (type !== 'xstate.init') await flush();
        expect(serializeState(actor.getSnapshot())).toBe(serializeState(step.state));
      }
      actor.stop();
    }
  });
});
