import { describe, expect, it } from 'vitest';
import { AttemptHistory, Ring } from '../../src/observe/attempt-history.js';
import { EmitterEvents } from '../../src/observe/events.js';

const fail = { kind: 'retryable', reason: 'http_503', status: 503 } as const;
const ok = { kind: 'success', status: 200 } as const;

function setup(limits: ConstructorParameters<typeof AttemptHistory>[2] = {}) {
  const events = new EmitterEvents();
  const clock = { now: 1_000_000 };
  const history = new AttemptHistory(events, () => clock.now, limits);
  return { events, clock, history };
}

describe('Ring', () => {
  it('keeps the last `capacity` items, oldest first', () => {
    const ring = new Ring<number>(3);
    expect(ring.toArray()).toEqual([]);
    for (let i = 1; i <= 5; i++) ring.push(i);
    expect(ring.toArray()).toEqual([3, 4, 5]);
  });
});

describe('AttemptHistory', () => {
  it("times each batch's attempts from sending to outcome, and shows the one in flight", () => {
    const { events, clock, history } = setup();
    events.emit('sending', { batchId: 'a', attempt: 1 });
    clock.now += 40;
    events.emit('attempt', { batchId: 'a', attempt: 1, outcome: fail, durationMs: 38, nextDelayMs: 500 });
    clock.now += 500;
    events.emit('sending', { batchId: 'a', attempt: 2 });
    clock.now += 10;
    const snap = history.snapshot(['a', 'b']);
    expect(snap.now).toBe(1_000_550);
    expect(snap.batches).toEqual({
      a: {
        attempts: [
          {
            batchId: 'a',
            attempt: 1,
            startedAt: 1_000_000,
            durationMs: 38,
            outcome: 'retryable',
            status: 503,
            reason: 'http_503',
          },
        ],
        inFlight: { batchId: 'a', attempt: 2, startedAt: 1_000_540 },
      },
      b: { attempts: [] },
    });
    events.emit('attempt', { batchId: 'a', attempt: 2, outcome: ok, durationMs: 9 });
    events.emit('finished', { batchId: 'a', result: 'delivered', attempts: 2, createdAtMs: 0, items: 1 });
    const after = history.snapshot([]);
    expect(after.batches).toEqual({});
    expect(after.finished).toEqual([
      {
        batchId: 'a',
        result: 'delivered',
        attempts: 2,
        at: 1_000_550,
        history: [
          expect.objectContaining({ attempt: 1, outcome: 'retryable' }),
          { batchId: 'a', attempt: 2, startedAt: 1_000_540, durationMs: 9, outcome: 'success', status: 200 },
        ],
      },
    ]);
  });

  it('is bounded: attempts, finished batches, attempts per batch and in-flight entries', () => {
    const { events, history } = setup({ attempts: 5, finished: 2, perBatch: 3 });
    for (let i = 1; i <= 8; i++) {
      events.emit('attempt', { batchId: 'x', attempt: i, outcome: fail, durationMs: 1 });
    }
    expect(history.snapshot(['x']).batches.x?.attempts.map((a) => a.attempt)).toEqual([6, 7, 8]);
    for (const id of ['f1', 'f2', 'f3']) {
      events.emit('finished', { batchId: id, result: 'parked', attempts: 1, createdAtMs: 0, items: 1 });
    }
    expect(history.snapshot().finished.map((f) => f.batchId)).toEqual(['f3', 'f2']);
    // never more attempts in flight than the ring holds
    for (let i = 0; i < 20; i++) events.emit('sending', { batchId: `s${i}`, attempt: 1 });
    const ids = Array.from({ length: 20 }, (_, i) => `s${i}`);
    expect(Object.values(history.snapshot(ids).batches).filter((b) => b.inFlight)).toHaveLength(5);
  });

  it('counts outcomes per interval over the window, and knows the breaker state at its start', () => {
    const { events, clock, history } = setup({ windowMs: 60_000, bucketMs: 10_000 });
    clock.now = 1_000_000; // a bucket boundary
    events.emit('breaker', { origin: 'o', from: 'closed', to: 'open' });
    events.emit('attempt', { batchId: 'a', attempt: 1, outcome: ok, durationMs: 1 });
    clock.now += 5_000;
    events.emit('attempt', { batchId: 'b', attempt: 1, outcome: fail, durationMs: 1 });
    clock.now += 10_000;
    events.emit('breaker', { origin: 'o', from: 'open', to: 'halfOpen' });
    events.emit('attempt', {
      batchId: 'c',
      attempt: 1,
      outcome: { kind: 'split', status: 413 },
      durationMs: 1,
    });
    let origin = history.snapshot().origin;
    expect(origin.buckets).toEqual([
      { start: 1_000_000, success: 1, retryable: 1, split: 0, permanent: 0 },
      { start: 1_010_000, success: 0, retryable: 0, split: 1, permanent: 0 },
    ]);
    expect(origin.breaker.map((c) => c.to)).toEqual(['open', 'halfOpen']);
    expect(origin.breakerAtStart).toBe('closed');
    // a minute on: the first bucket and the first change have left the window
    clock.now = 1_071_000;
    origin = history.snapshot().origin;
    expect(origin.buckets.map((b) => b.start)).toEqual([1_010_000]);
    expect(origin.breaker.map((c) => c.to)).toEqual(['halfOpen']);
    expect(origin.breakerAtStart).toBe('open');
    // and the bucket ring never grows past the window
    for (let i = 0; i < 100; i++) {
      clock.now += 10_000;
      events.emit('attempt', { batchId: 'd', attempt: i, outcome: ok, durationMs: 1 });
    }
    expect(history.snapshot().origin.buckets.length).toBeLessThanOrEqual(7);
  });

  it('stops listening when closed', () => {
    const { events, history } = setup();
    history.close();
    events.emit('attempt', { batchId: 'a', attempt: 1, outcome: ok, durationMs: 1 });
    expect(history.snapshot(['a']).batches.a?.attempts).toEqual([]);
  });
});
