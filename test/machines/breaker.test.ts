import { describe, expect, it } from 'vitest';
import { createActor, fromTransition, SimulatedClock, type AnyActorRef, type SnapshotFrom } from 'xstate';
import { adjacencyMapToArray, getAdjacencyMap, getShortestPaths, getSimplePaths } from 'xstate/graph';
import {
  breakerMachine,
  type BreakerEmitted,
  type BreakerEvent,
  type BreakerInput,
  type BreakerStateName,
} from '../../machines/breaker.js';
import type { Outcome } from '../../machines/outcome.js';

const OK: Outcome = { kind: 'success', status: 200 };
const FAIL: Outcome = { kind: 'retryable', status: 500, reason: 'http_500' };
const REFUSED: Outcome = { kind: 'retryable', reason: 'ECONNREFUSED' };
const BAD: Outcome = { kind: 'permanent', status: 400, reason: 'http_400' };
const TOO_BIG: Outcome = { kind: 'split', status: 413 };
const throttled = (status: 429 | 503, retryAfterMs?: number): Outcome => ({
  kind: 'retryable',
  status,
  reason: `http_${status}`,
  ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
});

const INPUT: BreakerInput = {
  origin: 'https://ingest.example',
  failureThreshold: 3,
  resetTimeoutMs: 1_000,
  maxResetTimeoutMs: 4_000,
  maxConcurrency: 3,
};

/** Stands in for a delivery actor: counts the PERMITs it receives. */
const clientLogic = fromTransition(
  (permits: number, event: { type: string }) => (event.type === 'PERMIT' ? permits + 1 : permits),
  0,
);
type Client = ReturnType<typeof newClient>;
const newClient = () => createActor(clientLogic).start();
const clients = (n: number) => Array.from({ length: n }, newClient);
const permits = (client: Client) => client.getSnapshot().context;

function startBreaker(overrides: Partial<BreakerInput> = {}) {
  const clock = new SimulatedClock();
  const actor = createActor(breakerMachine, { input: { ...INPUT, ...overrides }, clock });
  const changes: Array<[BreakerStateName, BreakerStateName]> = [];
  actor.on('stateChanged', (e: BreakerEmitted) => changes.push([e.from, e.to]));
  actor.start();
  const acquire = (...refs: AnyActorRef[]) => refs.forEach((ref) => actor.send({ type: 'ACQUIRE', ref }));
  const release = (ref: AnyActorRef, outcome: Outcome) => actor.send({ type: 'RELEASE', ref, outcome });
  const cancel = (ref: AnyActorRef) => actor.send({ type: 'CANCEL', ref });
  const state = () => actor.getSnapshot().value;
  const ctx = () => actor.getSnapshot().context;
  return { actor, clock, changes, acquire, release, cancel, state, ctx };
}

/** Opens a fresh breaker: `threshold` holders fail in a row. */
function openBreaker(overrides: Partial<BreakerInput> = {}) {
  const b = startBreaker(overrides);
  const failing = clients(b.ctx().failureThreshold);
  b.acquire(...failing);
  failing.forEach((c) => b.release(c, FAIL));
  expect(b.state()).toBe('open');
  return b;
}

describe('breaker: closed', () => {
  it('starts closed with allowed = maxConcurrency and an empty queue', () => {
    const { state, ctx, changes } = startBreaker();
    expect(state()).toBe('closed');
    expect(ctx()).toMatchObject({
      origin: INPUT.origin,
      allowed: 3,
      inFlight: 0,
      waiting: 0,
      consecutiveFailures: 0,
      resetTimeoutMs: 1_000,
    });
    expect(changes).toEqual([]);
  });

  it('grants at once while inFlight < allowed, then queues FIFO and grants on release', () => {
    const b = startBreaker();
    const [a, c, d, e, f] = clients(5) as [Client, Client, Client, Client, Client];
    b.acquire(a, c, d, e, f);
    expect([a, c, d, e, f].map(permits)).toEqual([1, 1, 1, 0, 0]);
    expect(b.ctx()).toMatchObject({ inFlight: 3, waiting: 2 });
    expect(b.ctx().queue).toEqual([e, f]);

    b.release(c, OK);
    expect([e, f].map(permits)).toEqual([1, 0]);
    b.release(a, BAD);
    expect(permits(f)).toBe(1);
    expect(b.ctx()).toMatchObject({ inFlight: 3, waiting: 0 });
  });

  it('ignores a duplicate ACQUIRE and a RELEASE from a ref holding no permit', () => {
    const b = startBreaker({ maxConcurrency: 1 });
    const [a, c] = clients(2) as [Client, Client];
    b.acquire(a, a, c, c);
    expect(permits(a)).toBe(1);
    expect(b.ctx()).toMatchObject({ inFlight: 1, waiting: 1 });
    b.release(c, FAIL); // c is queued, not holding
    b.release(newClient(), FAIL);
    expect(b.ctx()).toMatchObject({ inFlight: 1, waiting: 1, consecutiveFailures: 0 });
    b.release(a, OK);
    b.release(a, FAIL); // second release of the same permit
    expect(b.ctx()).toMatchObject({ inFlight: 1, waiting: 0, consecutiveFailures: 0 });
  });

  it('opens after failureThreshold consecutive retryable outcomes', () => {
    const b = startBreaker();
    const cs = clients(3);
    b.acquire(...cs);
    b.release(cs[0]!, FAIL);
    b.release(cs[1]!, REFUSED);
    expect(b.state()).toBe('closed');
    expect(b.ctx().consecutiveFailures).toBe(2);
    b.release(cs[2]!, FAIL);
    expect(b.state()).toBe('open');
    expect(b.ctx()).toMatchObject({ consecutiveFailures: 3, inFlight: 0 });
    expect(b.changes).toEqual([['closed', 'open']]);
  });

  it('permanent and split outcomes neither count nor reset the streak; success resets it', () => {
    const b = startBreaker();
    const cs = clients(6);
    b.acquire(...cs);
    b.release(cs[0]!, FAIL);
    b.release(cs[1]!, FAIL);
    b.release(cs[2]!, BAD);
    b.release(cs[3]!, TOO_BIG);
    expect(b.ctx().consecutiveFailures).toBe(2);
    b.release(cs[4]!, OK);
    expect(b.ctx().consecutiveFailures).toBe(0);
    b.release(cs[5]!, FAIL);
    expect(b.state()).toBe('closed');
    expect(b.ctx().consecutiveFailures).toBe(1);
  });

  it('a 429/503 without Retry-After, or a 500 with one, is an ordinary failure', () => {
    const b = startBreaker({ failureThreshold: 10 });
    const cs = clients(3);
    b.acquire(...cs);
    b.release(cs[0]!, throttled(429));
    b.release(cs[1]!, throttled(503, 0));
    b.release(cs[2]!, { kind: 'retryable', status: 500, reason: 'http_500', retryAfterMs: 5_000 });
    expect(b.state()).toBe('closed');
    expect(b.ctx().consecutiveFailures).toBe(3);
  });
});

describe('breaker: open', () => {
  it('grants nothing; askers wait in the queue', () => {
    const b = openBreaker();
    const waiting = clients(4);
    b.acquire(...waiting);
    expect(waiting.map(permits)).toEqual([0, 0, 0, 0]);
    expect(b.ctx()).toMatchObject({ inFlight: 0, waiting: 4 });
    b.clock.increment(999);
    expect(b.state()).toBe('open');
    expect(waiting.map(permits)).toEqual([0, 0, 0, 0]);
  });

  it('frees and counts permits granted before it opened', () => {
    const b = startBreaker({ failureThreshold: 2 });
    const [a, c, d] = clients(3) as [Client, Client, Client];
    b.acquire(a, c, d);
    b.release(a, FAIL);
    b.release(c, FAIL);
    expect(b.state()).toBe('open');
    expect(b.ctx().inFlight).toBe(1);
    b.release(d, FAIL);
    expect(b.state()).toBe('open');
    expect(b.ctx()).toMatchObject({ inFlight: 0, consecutiveFailures: 3 });
  });

  it('goes half-open after the reset timeout and grants exactly one probe', () => {
    const b = openBreaker();
    const waiting = clients(3);
    b.acquire(...waiting);
    b.clock.increment(1_000);
    expect(b.state()).toBe('halfOpen');
    expect(waiting.map(permits)).toEqual([1, 0, 0]);
    expect(b.ctx()).toMatchObject({ inFlight: 1, waiting: 2 });
    expect(b.ctx().probe).toBe(waiting[0]);
    b.acquire(newClient());
    expect(b.ctx()).toMatchObject({ inFlight: 1, waiting: 3 });
    expect(b.changes).toEqual([
      ['closed', 'open'],
      ['open', 'halfOpen'],
    ]);
  });

  it('grants the probe to the first asker when half-open starts with an empty queue', () => {
    const b = openBreaker();
    b.clock.increment(1_000);
    const [probe, other] = clients(2) as [Client, Client];
    b.acquire(probe, other);
    expect([probe, other].map(permits)).toEqual([1, 0]);
  });
});

describe('breaker: half-open', () => {
  it('a successful probe closes it with allowed = 1, and successes ramp allowed 1, 2, 3', () => {
    const b = openBreaker();
    const cs = clients(8);
    b.acquire(...cs);
    b.clock.increment(1_000);
    b.release(cs[0]!, OK);
    expect(b.state()).toBe('closed');
    expect(b.ctx()).toMatchObject({ allowed: 1, inFlight: 1, consecutiveFailures: 0, resetTimeoutMs: 1_000 });
    expect(cs.map(permits)).toEqual([1, 1, 0, 0, 0, 0, 0, 0]);

    const allowedAfterEachSuccess: number[] = [];
    for (let i = 1; i <= 4; i++) {
      const holders = [...b.ctx().holders];
      b.release(holders[0]!, OK);
      allowedAfterEachSuccess.push(b.ctx().allowed);
      expect(b.ctx().inFlight).toBeLessThanOrEqual(b.ctx().allowed);
    }
    expect(allowedAfterEachSuccess).toEqual([2, 3, 3, 3]);
    expect(b.ctx().inFlight).toBe(3);
  });

  it('a failed probe reopens it and doubles the reset timeout up to maxResetTimeoutMs', () => {
    const b = openBreaker();
    const timeouts: number[] = [];
    for (let i = 0; i < 4; i++) {
      const probe = newClient();
      b.acquire(probe);
      b.clock.increment(b.ctx().resetTimeoutMs - 1);
      expect(b.state()).toBe('open');
      b.clock.increment(1);
      expect(b.state()).toBe('halfOpen');
      expect(permits(probe)).toBe(1);
      b.release(probe, FAIL);
      expect(b.state()).toBe('open');
      timeouts.push(b.ctx().resetTimeoutMs);
    }
    expect(timeouts).toEqual([2_000, 4_000, 4_000, 4_000]);

    const probe = newClient();
    b.acquire(probe);
    b.clock.increment(4_000);
    b.release(probe, OK);
    expect(b.state()).toBe('closed');
    expect(b.ctx().resetTimeoutMs).toBe(1_000);
  });

  it('a permanent or split answer to the probe counts as reachable: closed with allowed = 1', () => {
    for (const outcome of [BAD, TOO_BIG]) {
      const b = openBreaker();
      const probe = newClient();
      b.acquire(probe);
      b.clock.increment(1_000);
      b.release(probe, outcome);
      expect(b.state()).toBe('closed');
      expect(b.ctx().allowed).toBe(1);
    }
  });

  it('outcomes of older permits free them but do not decide; the probe does', () => {
    const b = startBreaker({ failureThreshold: 1 });
    const [old, trigger] = clients(2) as [Client, Client];
    b.acquire(old, trigger);
    b.release(trigger, FAIL);
    b.clock.increment(1_000);
    const probe = newClient();
    b.acquire(probe);
    expect(b.ctx()).toMatchObject({ inFlight: 2 });
    b.release(old, OK);
    expect(b.state()).toBe('halfOpen');
    expect(b.ctx().inFlight).toBe(1);
    b.release(probe, OK);
    expect(b.state()).toBe('closed');
  });

  it('CANCEL of the probe lets the next asker probe', () => {
    const b = openBreaker();
    const [first, second] = clients(2) as [Client, Client];
    b.acquire(first, second);
    b.clock.increment(1_000);
    b.cancel(first);
    expect(permits(second)).toBe(1);
    expect(b.ctx().probe).toBe(second);
    expect(b.state()).toBe('halfOpen');
  });
});

describe('breaker: Retry-After pauses the whole origin', () => {
  it.each([429, 503] as const)('%i with Retry-After in closed -> paused, then half-open', (status) => {
    const b = startBreaker({ maxConcurrency: 2 });
    const cs = clients(4);
    b.acquire(...cs);
    b.release(cs[0]!, throttled(status, 2_500));
    expect(b.state()).toBe('paused');
    expect(b.ctx()).toMatchObject({ pauseMs: 2_500, consecutiveFailures: 1, inFlight: 1, waiting: 2 });
    b.release(cs[1]!, OK); // frees, grants nothing while paused
    expect(cs.map(permits)).toEqual([1, 1, 0, 0]);
    b.clock.increment(2_499);
    expect(b.state()).toBe('paused');
    b.clock.increment(1);
    expect(b.state()).toBe('halfOpen');
    expect(cs.map(permits)).toEqual([1, 1, 1, 0]);
    expect(b.changes).toEqual([
      ['closed', 'paused'],
      ['paused', 'halfOpen'],
    ]);
  });

  it('caps the pause at maxResetTimeoutMs', () => {
    const b = startBreaker();
    const c = newClient();
    b.acquire(c);
    b.release(c, throttled(429, 3_600_000));
    expect(b.ctx().pauseMs).toBe(4_000);
    b.clock.increment(4_000);
    expect(b.state()).toBe('halfOpen');
  });

  it('pauses from open and from half-open too', () => {
    const fromOpen = startBreaker({ failureThreshold: 1 });
    const [a, c] = clients(2) as [Client, Client];
    fromOpen.acquire(a, c);
    fromOpen.release(a, FAIL);
    expect(fromOpen.state()).toBe('open');
    fromOpen.release(c, throttled(503, 1_500));
    expect(fromOpen.state()).toBe('paused');

    const fromHalfOpen = openBreaker();
    const probe = newClient();
    fromHalfOpen.acquire(probe);
    fromHalfOpen.clock.increment(1_000);
    fromHalfOpen.release(probe, throttled(429, 1_500));
    expect(fromHalfOpen.state()).toBe('paused');
    fromHalfOpen.clock.increment(1_500);
    expect(fromHalfOpen.state()).toBe('halfOpen');
  });

  it('a newer Retry-After while paused restarts the pause with the new value', () => {
    const b = startBreaker();
    const [a, c] = clients(2) as [Client, Client];
    b.acquire(a, c);
    b.release(a, throttled(429, 1_000));
    b.clock.increment(900);
    b.release(c, throttled(429, 1_000));
    b.clock.increment(500);
    expect(b.state()).toBe('paused');
    b.clock.increment(500);
    expect(b.state()).toBe('halfOpen');
    expect(b.changes).toEqual([
      ['closed', 'paused'],
      ['paused', 'halfOpen'],
    ]);
  });

  it('other outcomes while paused just free their permits', () => {
    const b = startBreaker();
    const [a, c] = clients(2) as [Client, Client];
    b.acquire(a, c);
    b.release(a, throttled(429, 1_000));
    b.release(c, FAIL);
    expect(b.state()).toBe('paused');
    expect(b.ctx()).toMatchObject({ inFlight: 0, consecutiveFailures: 2 });
  });
});

describe('breaker: CANCEL', () => {
  it('removes a queued asker without granting it', () => {
    const b = startBreaker({ maxConcurrency: 1 });
    const [a, c, d] = clients(3) as [Client, Client, Client];
    b.acquire(a, c, d);
    b.cancel(c);
    expect(b.ctx()).toMatchObject({ waiting: 1, inFlight: 1 });
    b.release(a, OK);
    expect([c, d].map(permits)).toEqual([0, 1]);
  });

  it('frees a held permit without counting an outcome, and grants the next asker', () => {
    const b = startBreaker({ maxConcurrency: 1 });
    const [a, c] = clients(2) as [Client, Client];
    b.acquire(a, c);
    b.release(a, FAIL);
    const before = b.ctx().consecutiveFailures;
    b.cancel(c);
    expect(b.ctx()).toMatchObject({ inFlight: 0, consecutiveFailures: before });
    const d = newClient();
    b.acquire(d);
    expect(permits(d)).toBe(1);
  });

  it('is a no-op for a ref it does not know (e.g. a delivery that already released)', () => {
    const b = startBreaker();
    const a = newClient();
    b.acquire(a);
    b.release(a, OK);
    const before = b.ctx();
    b.cancel(a);
    b.cancel(newClient());
    expect(b.ctx()).toEqual(before);
  });
});

describe('breaker: concurrency', () => {
  it('never holds more permits than allowed while closed, under a random mix of events', () => {
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const b = startBreaker({ failureThreshold: 4, maxConcurrency: 3 });
    const pool = clients(8);
    const outcomes = [OK, OK, OK, FAIL, BAD, TOO_BIG, throttled(503, 700)];
    for (let step = 0; step < 2_000; step++) {
      const ref = pool[Math.floor(random() * pool.length)]!;
      const roll = random();
      if (roll < 0.45) b.acquire(ref);
      else if (roll < 0.85) b.release(ref, outcomes[Math.floor(random() * outcomes.length)]!);
      else if (roll < 0.9) b.cancel(ref);
      else b.clock.increment(Math.floor(random() * 1_500));
      const ctx = b.ctx();
      expect(ctx.inFlight).toBe(ctx.holders.length);
      expect(ctx.waiting).toBe(ctx.queue.length);
      expect(new Set([...ctx.holders, ...ctx.queue]).size).toBe(ctx.inFlight + ctx.waiting);
      if (b.state() === 'closed') expect(ctx.inFlight).toBeLessThanOrEqual(ctx.allowed);
      if (b.state() === 'open' || b.state() === 'paused') {
        // every permit held now was granted before the breaker left closed/halfOpen
        expect(ctx.inFlight).toBeLessThanOrEqual(ctx.maxConcurrency);
      }
    }
    expect(new Set(b.changes.map(([, to]) => to))).toEqual(new Set(['open', 'halfOpen', 'closed', 'paused']));
  });
});

describe('breaker: path coverage (xstate/graph)', () => {
  const graphInput: BreakerInput = {
    origin: 'https://graph.example',
    failureThreshold: 2,
    resetTimeoutMs: 1_000,
    maxResetTimeoutMs: 2_000,
    maxConcurrency: 2,
  };
  const [r1, r2] = clients(2) as [Client, Client];
  const afterEvents = breakerMachine.root.states
    ? Object.values(breakerMachine.root.states).flatMap((node) =>
        node.after.map((t) => ({ type: t.eventType })),
      )
    : [];
  const events = [
    ...afterEvents,
    ...[r1, r2].flatMap((ref) => [
      { type: 'ACQUIRE', ref } as const,
      { type: 'CANCEL', ref } as const,
      ...[OK, FAIL, BAD, throttled(429, 1_500)].map(
        (outcome) => ({ type: 'RELEASE', ref, outcome }) as const,
      ),
    ]),
  ] as BreakerEvent[];
  const refName = (ref: AnyActorRef | null) => (ref === r1 ? 'r1' : ref === r2 ? 'r2' : '-');
  type BreakerSnapshot = SnapshotFrom<typeof breakerMachine>;
  const serializeState = (snapshot: BreakerSnapshot) => {
    const c = snapshot.context;
    return JSON.stringify([
      snapshot.value,
      c.allowed,
      c.holders.map(refName),
      c.queue.map(refName),
      refName(c.probe),
      // past the threshold the count only matters as a statistic; capping it keeps the graph finite
      Math.min(c.consecutiveFailures, graphInput.failureThreshold),
      c.resetTimeoutMs,
      c.pauseMs,
    ]);
  };
  const options = { input: graphInput, events, serializeState };
  const isPermanent = (e: BreakerEvent) => e.type === 'RELEASE' && e.outcome.kind === 'permanent';

  it('lists the after events itself', () => {
    expect(afterEvents.map((e) => e.type).sort()).toEqual([
      'xstate.after.pauseTimeout.breaker.paused',
      'xstate.after.resetTimeout.breaker.open',
    ]);
  });

  const shortest = getShortestPaths(breakerMachine, options);

  it('reaches every state', () => {
    const reached = new Set(shortest.map((p) => p.state.value));
    expect(reached).toEqual(new Set(Object.keys(breakerMachine.root.states)));
  });

  it('simple paths (one asker, threshold 1, concurrency 1) reach every state too, probe included', () => {
    // simple paths are enumerated exhaustively: keep that graph tiny
    const tinyInput = { ...graphInput, failureThreshold: 1, maxConcurrency: 1, maxResetTimeoutMs: 1_000 };
    const tinyEvents = events.filter(
      (e) => e.type.startsWith('xstate.after.') || (e.type !== 'CANCEL' && e.ref === r1 && !isPermanent(e)),
    );
    const simple = getSimplePaths(breakerMachine, { input: tinyInput, events: tinyEvents, serializeState });
    expect(new Set(simple.map((p) => p.state.value))).toEqual(
      new Set(Object.keys(breakerMachine.root.states)),
    );
    const recovered = simple.filter(
      (p) => p.state.value === 'closed' && p.steps.some((step) => step.state.value === 'halfOpen'),
    );
    expect(recovered.length).toBeGreaterThan(0);
    for (const path of simple) replay(path, tinyInput);
  });

  it('takes every transition of the machine somewhere in the state graph', () => {
    const all = [breakerMachine.root, ...Object.values(breakerMachine.root.states)].flatMap((node) => [
      ...[...node.transitions.values()].flat(),
      ...(node.always ?? []),
    ]);
    expect(all).toHaveLength(20);
    // getAdjacencyMap's signature cannot take a machine that declares emitted events: cast
    const adjacency = getAdjacencyMap<BreakerSnapshot, BreakerEvent, BreakerInput>(
      breakerMachine as never,
      options,
    );
    const taken = new Set(
      adjacencyMapToArray(adjacency).flatMap(({ state, event }) =>
        breakerMachine.getTransitionData(state, event),
      ),
    );
    const missed = all
      .filter((t) => !taken.has(t))
      .map((t) => `${t.source.key} --${t.eventType}--> ${t.target?.[0]?.key ?? '(self)'}`);
    expect(missed).toEqual([]);
  });

  function replay(path: (typeof shortest)[number], input: BreakerInput) {
    const clock = new SimulatedClock();
    const actor = createActor(breakerMachine, { input, clock }).start();
    for (const step of path.steps) {
      const ctx = actor.getSnapshot().context;
      if (step.event.type.startsWith('xstate.after.resetTimeout')) clock.increment(ctx.resetTimeoutMs);
      else if (step.event.type.startsWith('xstate.after.pauseTimeout')) clock.increment(ctx.pauseMs);
      else if ((step.event.type as string) !== 'xstate.init') actor.send(step.event);
      expect(serializeState(actor.getSnapshot())).toBe(serializeState(step.state));
    }
    actor.stop();
  }

  it('replays every shortest path on a real actor with a simulated clock', () => {
    for (const path of shortest) replay(path, graphInput);
  });
});
