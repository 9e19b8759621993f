import { describe, expect, it } from 'vitest';
import { Tally } from '../../src/observe/counters.js';
import { EmitterEvents } from '../../src/observe/events.js';
import { createMetrics } from '../../src/observe/metrics.js';
import { StatsCollector } from '../../src/observe/stats-collector.js';
import type { StatusSnapshot } from '../../src/observe/status.js';

const status = (): StatusSnapshot => ({
  natsConnected: true,
  consumerBound: true,
  spool: { open: true, batches: 0, bytes: 0, maxBytes: 1 },
  deliveriesActive: 0,
  queued: 0,
  openItems: 0,
  maxItems: 1,
  shuttingDown: false,
});

function run(events: EmitterEvents): void {
  events.emit('received', { section: 'edges', source: 'jetstream', count: 5 });
  events.emit('received', { section: 'events', source: 'api', count: 2 });
  events.emit('rejected', { reason: 'invalid_json', detail: 'invalid_json: x' });
  events.emit('sealed', { batchId: 'a', trigger: 'size', items: 7, rawBytes: 10, storedBytes: 5 });
  const retry = { kind: 'retryable', reason: 'http_503', status: 503 } as const;
  events.emit('attempt', { batchId: 'a', attempt: 1, outcome: retry, durationMs: 1, nextDelayMs: 1 });
  events.emit('attempt', { batchId: 'a', attempt: 2, outcome: retry, durationMs: 1, nextDelayMs: 1 });
  events.emit('attempt', {
    batchId: 'a',
    attempt: 3,
    outcome: { kind: 'success', status: 200 },
    durationMs: 1,
  });
  events.emit('finished', { batchId: 'a', result: 'delivered', attempts: 3, createdAtMs: 0, items: 7 });
  events.emit('finished', { batchId: 'b', result: 'deadLettered', attempts: 1, createdAtMs: 0, items: 1 });
}

describe('one source of counts', () => {
  it('the tally, /metrics, /api/v1/stats and emitter.stats agree, as they read the same counts', async () => {
    const events = new EmitterEvents();
    const metrics = createMetrics(events, status, { defaultMetrics: false });
    const stats = new StatsCollector(events);
    run(events);

    expect(events.counters.summary()).toEqual({
      received: 7,
      rejected: 1,
      delivered: 1,
      parked: 0,
      deadLettered: 1,
      split: 0,
    });
    const s = stats.snapshot();
    expect(s.items).toMatchObject({ received: 7, rejected: 1, delivered: 7 });
    expect(s.batches).toMatchObject({ sealed: 1, delivered: 1, deadLettered: 1, retried: 1 });
    expect(s.attempts).toEqual({ total: 3, byOutcome: { retryable: 2, success: 1 } });
    const text = await metrics.metrics();
    expect(text).toMatch(/^batch_emitter_items_received_total\{section="edges",source="jetstream"\} 5$/m);
    expect(text).toMatch(/^batch_emitter_items_delivered_total 7$/m);
    expect(text).toMatch(/^batch_emitter_batches_finished_total\{result="dead_lettered"\} 1$/m);
    expect(text).toMatch(
      /^batch_emitter_delivery_attempts_total\{outcome="retryable",status_class="5xx"\} 2$/m,
    );

    // closed views keep the counts they had; the tally goes on
    metrics.close();
    stats.close();
    run(events);
    expect(events.counters.summary().received).toBe(14);
    expect(stats.snapshot().items.received).toBe(7);
    expect(await metrics.metrics()).toMatch(/^batch_emitter_items_delivered_total 7$/m);
  });

  it('a Tally sums by any one label, in first-seen order', () => {
    const t = new Tally(['a', 'b'] as const);
    t.add({ a: 'x', b: '1' });
    t.add({ a: 'y', b: '1' }, 2);
    t.add({ a: 'x', b: '2' }, 3);
    t.add({ a: 'x', b: '1' });
    expect(t.total).toBe(7);
    expect({ ...t.by('a') }).toEqual({ x: 5, y: 2 });
    expect(t.of('b', '1')).toBe(4);
    expect(t.entries().map((e) => e.value)).toEqual([2, 2, 3]);
  });
});
