import { describe, expect, it } from 'vitest';
import { createActor, fromTransition, type AnyActorRef } from 'xstate';
import { AIMD_DEFAULTS, EMPTY_WINDOW, nextBaseline, nextLimit, updateAverage } from '../../machines/aimd.js';
import type { BreakerStateName } from '../../machines/breaker.js';
import { limiterMachine, type LimiterInput } from '../../machines/limiter.js';
import type { Outcome } from '../../machines/outcome.js';

const OK: Outcome = { kind: 'success', status: 200 };
const FAIL: Outcome = { kind: 'retryable', status: 503, reason: 'http_503' };
const BAD: Outcome = { kind: 'permanent', status: 400, reason: 'http_400' };

/** Stands in for a delivery actor: counts the PERMITs it receives. */
const clientLogic = fromTransition(
  (permits: number, event: { type: string }) => (event.type === 'PERMIT' ? permits + 1 : permits),
  0,
);
type Client = ReturnType<typeof newClient>;
const newClient = () => createActor(clientLogic).start();
const clients = (n: number) => Array.from({ length: n }, newClient);
const permits = (client: Client) => client.getSnapshot().context;

function startLimiter(input: Partial<LimiterInput> = {}) {
  const actor = createActor(limiterMachine, { input: { mode: 'fixed', maxConcurrency: 3, ...input } });
  actor.start();
  const acquire = (...refs: AnyActorRef[]) => refs.forEach((ref) => actor.send({ type: 'ACQUIRE', ref }));
  const release = (ref: AnyActorRef, outcome: Outcome) => actor.send({ type: 'RELEASE', ref, outcome });
  const cancel = (ref: AnyActorRef) => actor.send({ type: 'CANCEL', ref });
  const circuit = (state: BreakerStateName) => actor.send({ type: 'CIRCUIT', state });
  const rtt = (rttMs: number) => actor.send({ type: 'RTT', rttMs });
  const state = () => actor.getSnapshot().value;
  const ctx = () => actor.getSnapshot().context;
  const counts = () => ({ limit: ctx().limit, inFlight: ctx().holders.length, waiting: ctx().queue.length });
  return { actor, acquire, release, cancel, circuit, rtt, state, ctx, counts };
}

describe('limiter (fixed): permits while the circuit is closed', () => {
  it('grants at once up to the limit, then queues FIFO and grants on release', () => {
    const l = startLimiter();
    const [a, c, d, e, f] = clients(5) as [Client, Client, Client, Client, Client];
    l.acquire(a, c, d, e, f);
    expect(l.state()).toBe('flowing');
    expect([a, c, d, e, f].map(permits)).toEqual([1, 1, 1, 0, 0]);
    expect(l.counts()).toEqual({ limit: 3, inFlight: 3, waiting: 2 });
    expect(l.ctx().queue).toEqual([e, f]);
    l.release(c, OK);
    expect([e, f].map(permits)).toEqual([1, 0]);
    l.release(a, BAD);
    expect(permits(f)).toBe(1);
    expect(l.counts()).toEqual({ limit: 3, inFlight: 3, waiting: 0 });
  });

  it('ignores a duplicate ACQUIRE and a RELEASE from a ref holding no permit', () => {
    const l = startLimiter({ maxConcurrency: 1 });
    const [a, c] = clients(2) as [Client, Client];
    l.acquire(a, a, c, c);
    expect(permits(a)).toBe(1);
    expect(l.counts()).toMatchObject({ inFlight: 1, waiting: 1 });
    l.release(c, FAIL); // c is queued, not holding
    l.release(newClient(), FAIL);
    expect(l.counts()).toMatchObject({ inFlight: 1, waiting: 1 });
    l.release(a, OK);
    expect(permits(c)).toBe(1);
    l.release(a, FAIL); // second release of the same permit
    expect(l.counts()).toMatchObject({ inFlight: 1, waiting: 0 });
    expect(l.ctx().holders).toEqual([c]);
  });

  it('fixed: neither failures nor refusals change the limit', () => {
    const l = startLimiter();
    const [a, c] = clients(2) as [Client, Client];
    l.acquire(a, c);
    l.release(a, FAIL);
    l.release(c, BAD);
    expect(l.counts()).toEqual({ limit: 3, inFlight: 0, waiting: 0 });
  });
});

describe('limiter: CANCEL', () => {
  it('removes a queued asker without granting it', () => {
    const l = startLimiter({ maxConcurrency: 1 });
    const [a, c, d] = clients(3) as [Client, Client, Client];
    l.acquire(a, c, d);
    l.cancel(c);
    expect(l.counts()).toMatchObject({ waiting: 1, inFlight: 1 });
    l.release(a, OK);
    expect([c, d].map(permits)).toEqual([0, 1]);
  });

  it('frees a held permit and grants the next asker', () => {
    const l = startLimiter({ maxConcurrency: 1 });
    const [a, c] = clients(2) as [Client, Client];
    l.acquire(a, c);
    l.cancel(a);
    expect(permits(c)).toBe(1);
    expect(l.ctx().holders).toEqual([c]);
  });

  it('is a no-op for a ref it does not know (e.g. a delivery that already released)', () => {
    const l = startLimiter();
    const a = newClient();
    l.acquire(a);
    l.release(a, OK);
    const before = l.ctx();
    l.cancel(a);
    l.cancel(newClient());
    expect(l.ctx()).toEqual(before);
  });
});

describe('limiter: following the circuit', () => {
  it('grants nothing while the circuit is open or paused; askers wait', () => {
    for (const circuit of ['open', 'paused'] as const) {
      const l = startLimiter();
      l.circuit(circuit);
      expect(l.state()).toBe('held');
      const waiting = clients(4);
      l.acquire(...waiting);
      expect(waiting.map(permits)).toEqual([0, 0, 0, 0]);
      expect(l.counts()).toMatchObject({ inFlight: 0, waiting: 4 });
    }
  });

  it('frees permits granted before the circuit opened, granting nothing in their place', () => {
    const l = startLimiter();
    const [a, c, d, e] = clients(4) as [Client, Client, Client, Client];
    l.acquire(a, c, d, e);
    l.circuit('open');
    l.release(a, FAIL);
    expect(l.counts()).toMatchObject({ inFlight: 2, waiting: 1 });
    expect(permits(e)).toBe(0);
  });

  it('half-open: grants exactly one probe, to the first asker', () => {
    const l = startLimiter();
    l.circuit('open');
    const waiting = clients(3);
    l.acquire(...waiting);
    l.circuit('halfOpen');
    expect(l.state()).toBe('probing');
    expect(waiting.map(permits)).toEqual([1, 0, 0]);
    expect(l.ctx().probe).toBe(waiting[0]);
    l.acquire(newClient());
    expect(l.counts()).toMatchObject({ inFlight: 1, waiting: 3 });
  });

  it('half-open with an empty queue: the first asker probes', () => {
    const l = startLimiter();
    l.circuit('halfOpen');
    const [probe, other] = clients(2) as [Client, Client];
    l.acquire(probe, other);
    expect([probe, other].map(permits)).toEqual([1, 0]);
  });

  it('after the probe answers, nothing more is granted until the breaker decides', () => {
    const l = startLimiter();
    l.circuit('halfOpen');
    const [probe, next] = clients(2) as [Client, Client];
    l.acquire(probe, next);
    l.release(probe, OK);
    expect(l.state()).toBe('held');
    expect(l.ctx().probe).toBeNull();
    expect(permits(next)).toBe(0);
    l.circuit('open');
    expect(permits(next)).toBe(0);
  });

  it('outcomes of older permits while half-open free them; the probe stays out', () => {
    const l = startLimiter();
    const old = newClient();
    l.acquire(old);
    l.circuit('open');
    l.circuit('halfOpen');
    const probe = newClient();
    l.acquire(probe);
    expect(l.counts()).toMatchObject({ inFlight: 2 });
    l.release(old, OK);
    expect(l.state()).toBe('probing');
    expect(l.ctx().probe).toBe(probe);
    expect(l.counts()).toMatchObject({ inFlight: 1 });
  });

  it('CANCEL of the probe lets the next asker probe', () => {
    const l = startLimiter();
    l.circuit('halfOpen');
    const [first, second] = clients(2) as [Client, Client];
    l.acquire(first, second);
    l.cancel(first);
    expect(permits(second)).toBe(1);
    expect(l.ctx().probe).toBe(second);
  });

  it('closed after half-open: limit 1, then each success ramps it up to the maximum', () => {
    const l = startLimiter();
    l.circuit('open');
    const cs = clients(8);
    l.acquire(...cs);
    l.circuit('halfOpen');
    l.release(cs[0]!, OK);
    l.circuit('closed');
    expect(l.state()).toBe('flowing');
    expect(l.counts()).toEqual({ limit: 1, inFlight: 1, waiting: 6 });
    expect(cs.map(permits)).toEqual([1, 1, 0, 0, 0, 0, 0, 0]);
    const limits: number[] = [];
    for (let i = 0; i < 4; i++) {
      l.release(l.ctx().holders[0]!, OK);
      limits.push(l.ctx().limit);
      expect(l.ctx().holders.length).toBeLessThanOrEqual(l.ctx().limit);
    }
    expect(limits).toEqual([2, 3, 3, 3]);
    expect(l.ctx().holders).toHaveLength(3);
  });
});

describe('limiter: invariants under a random mix of events', () => {
  it('no ref twice, the limit within 1..max, no idle permit while someone waits', () => {
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (const mode of ['fixed', 'adaptive'] as const) {
      const l = startLimiter({ mode, maxConcurrency: 4 });
      const pool = clients(10);
      const outcomes = [OK, OK, OK, FAIL, BAD];
      const circuits: BreakerStateName[] = ['closed', 'open', 'halfOpen', 'paused'];
      for (let step = 0; step < 2_000; step++) {
        const ref = pool[Math.floor(random() * pool.length)]!;
        const roll = random();
        if (roll < 0.4) l.acquire(ref);
        else if (roll < 0.75) l.release(ref, outcomes[Math.floor(random() * outcomes.length)]!);
        else if (roll < 0.85) l.rtt(20 + random() * 40);
        else if (roll < 0.9) l.cancel(ref);
        else if (roll < 0.93) l.circuit(circuits[Math.floor(random() * circuits.length)]!);
        const c = l.ctx();
        expect(new Set([...c.holders, ...c.queue]).size).toBe(c.holders.length + c.queue.length);
        expect(c.limit).toBeGreaterThanOrEqual(1);
        expect(c.limit).toBeLessThanOrEqual(4);
        // flowing, nobody waits while a permit is free (after a recovery more may still be held)
        if (l.state() === 'flowing' && c.queue.length > 0) {
          expect(c.holders.length).toBeGreaterThanOrEqual(c.limit);
        }
      }
    }
  });
});

describe('AIMD (pure)', () => {
  const steady = { ...EMPTY_WINDOW, completed: 4, rttSumMs: 400, rttCount: 4, reachedLimit: true };

  it('+1 per window while the RTT stays at the baseline and demand fills every permit', () => {
    const baseline = { meanMs: 100, variance: 0 };
    expect(nextLimit(4, 64, steady, baseline, AIMD_DEFAULTS)).toBe(5);
    expect(nextLimit(64, 64, steady, baseline, AIMD_DEFAULTS)).toBe(64);
    // no evidence that more would be used: hold
    expect(nextLimit(4, 64, { ...steady, reachedLimit: false }, baseline, AIMD_DEFAULTS)).toBe(4);
    // the first window only sets the baseline
    expect(nextLimit(4, 64, steady, undefined, AIMD_DEFAULTS)).toBe(4);
  });

  it('x0.9 (rounded down, at least 1) on back pressure or an RTT past the threshold', () => {
    const baseline = { meanMs: 100, variance: 16 };
    expect(nextLimit(10, 64, { ...steady, backPressure: true }, baseline, AIMD_DEFAULTS)).toBe(9);
    expect(nextLimit(1, 64, { ...steady, backPressure: true }, baseline, AIMD_DEFAULTS)).toBe(1);
    const at = (rttMs: number) => ({ ...steady, rttSumMs: rttMs * 4 });
    // near: up to 100 * 1.1; rising: beyond 100 + max(2.5 * 4, 20) = 120; between: hold
    expect(nextLimit(10, 64, at(110), baseline, AIMD_DEFAULTS)).toBe(11);
    expect(nextLimit(10, 64, at(120), baseline, AIMD_DEFAULTS)).toBe(10);
    expect(nextLimit(10, 64, at(121), baseline, AIMD_DEFAULTS)).toBe(9);
    // a noisy baseline widens the margin, up to half the mean
    const noisy = { meanMs: 100, variance: 900 };
    expect(nextLimit(10, 64, at(140), noisy, AIMD_DEFAULTS)).toBe(10);
    expect(nextLimit(10, 64, at(125), baseline, AIMD_DEFAULTS)).toBe(9);
    expect(nextLimit(10, 64, at(151), { meanMs: 100, variance: 10_000 }, AIMD_DEFAULTS)).toBe(9);
  });

  it('the baseline drops to a faster window at once, ignores congested ones, rises slowly', () => {
    const window = (rttMs: number) => ({ ...steady, rttSumMs: rttMs * 4 });
    const slow = { meanMs: 200, variance: 0 };
    expect(nextBaseline(slow, 4, window(50), AIMD_DEFAULTS)?.meanMs).toBe(50);
    expect(nextBaseline({ meanMs: 50, variance: 0 }, 5, window(100), AIMD_DEFAULTS)?.meanMs).toBe(50);
    expect(nextBaseline({ meanMs: 50, variance: 0 }, 1, window(100), AIMD_DEFAULTS)?.meanMs).toBe(70);
    expect(nextBaseline({ meanMs: 50, variance: 0 }, 5, window(55), AIMD_DEFAULTS)?.meanMs).toBe(52);
  });

  it('the baseline is an exponentially weighted mean and variance', () => {
    let average = updateAverage(undefined, 100, 0.4);
    expect(average).toEqual({ meanMs: 100, variance: 0 });
    average = updateAverage(average, 200, 0.4);
    expect(average.meanMs).toBeCloseTo(140);
    expect(average.variance).toBeCloseTo(0.6 * (100 * 40));
  });
});

/**
 * A simulated sink whose latency grows with its concurrency: `base` up to `best` requests at once,
 * steeply above. Deliveries always want more; time is the sink's own simulated clock.
 */
function simulate(l: ReturnType<typeof startLimiter>, completions: number, latency: (n: number) => number) {
  const pool = clients(40);
  let now = 0;
  const running = new Map<AnyActorRef, number>(); // ref -> completion time
  const granted = new Map<AnyActorRef, number>(); // ref -> start time
  const seen = new Map<AnyActorRef, number>(pool.map((c) => [c, 0]));
  const start = () => {
    for (const c of pool) {
      if (permits(c) === seen.get(c)) continue;
      seen.set(c, permits(c));
      granted.set(c, now);
      running.set(c, now + latency(l.ctx().holders.length));
    }
  };
  l.acquire(...pool);
  start();
  const trace: Array<{ at: number; limit: number; inFlight: number }> = [];
  for (let i = 0; i < completions; i++) {
    const [ref, at] = [...running.entries()].sort((x, y) => x[1] - y[1])[0]!;
    now = at;
    running.delete(ref);
    l.rtt(now - granted.get(ref)!);
    l.release(ref, OK);
    l.acquire(ref);
    start();
    trace.push({ at: now, limit: l.ctx().limit, inFlight: l.ctx().holders.length });
  }
  return trace;
}

describe('limiter (adaptive): AIMD on scripted round trips', () => {
  const best = 4;
  const latency = (n: number) => (n <= best ? 50 : 50 * 2 ** (n - best));

  it('starts at 1 and settles near the sink best concurrency', () => {
    const l = startLimiter({ mode: 'adaptive', maxConcurrency: 64 });
    expect(l.ctx().limit).toBe(1);
    const trace = simulate(l, 2_000, latency);
    const settled = trace.slice(-1_000);
    const limits = settled.map((t) => t.limit);
    expect(Math.min(...limits)).toBeGreaterThanOrEqual(best - 2);
    expect(Math.max(...limits)).toBeLessThanOrEqual(best + 2);
    const meanInFlight = settled.reduce((sum, t) => sum + t.inFlight, 0) / settled.length;
    expect(Math.abs(meanInFlight - best)).toBeLessThanOrEqual(1.5);
    // it got there within the first few hundred completions
    const firstAtBest = trace.findIndex((t) => t.limit >= best);
    expect(firstAtBest).toBeGreaterThan(0);
    expect(firstAtBest).toBeLessThan(300);
  });

  it('climbs to the maximum against a sink that never slows down', () => {
    const l = startLimiter({ mode: 'adaptive', maxConcurrency: 12 });
    const trace = simulate(l, 1_500, () => 50);
    expect(trace.at(-1)?.limit).toBe(12);
  });

  it('backs off on retryable failures even at a steady RTT', () => {
    const l = startLimiter({ mode: 'adaptive', maxConcurrency: 64 });
    simulate(l, 600, () => 50);
    const before = l.ctx().limit;
    expect(before).toBeGreaterThan(8);
    for (let round = 0; round < 5; round++) {
      const holders = [...l.ctx().holders];
      for (const ref of holders) {
        l.release(ref, FAIL);
        l.acquire(ref);
      }
    }
    expect(l.ctx().limit).toBeLessThanOrEqual(Math.floor(before * 0.9 ** 2));
  });
});
