import { Histogram, type Registry } from 'prom-client';
import type { EmitterEventMap, EmitterEvents } from './events.js';

/**
 * The Prometheus histograms: sizes of sealed batches, attempt durations and delivery latencies,
 * observed as the events arrive (distributions, which the counts cannot give). Follows events only;
 * never reads or changes the pipeline.
 */

/** batches whose JetStream publish time is remembered until they are delivered */
const MAX_TRACKED = 50_000;
const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200];
const BYTES_BUCKETS = [1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];

type Handlers = { [K in keyof EmitterEventMap]?: (event: EmitterEventMap[K]) => void };

function histogram(
  registers: Registry[],
  name: string,
  help: string,
  buckets: number[],
  labelNames?: string[],
) {
  return new Histogram({ name, help, buckets, registers, ...(labelNames ? { labelNames } : {}) });
}

function batchSizes(registers: Registry[]): Handlers {
  const items = histogram(
    registers,
    'batch_emitter_batch_items',
    'Items per sealed batch.',
    [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
  );
  const raw = histogram(
    registers,
    'batch_emitter_batch_uncompressed_bytes',
    'Size of each sealed batch as JSON, before compression.',
    BYTES_BUCKETS,
  );
  const stored = histogram(
    registers,
    'batch_emitter_batch_stored_bytes',
    'Size of each sealed batch as spooled and sent (gzip-compressed unless compression is none).',
    BYTES_BUCKETS,
  );
  return {
    sealed: (e) => {
      items.observe(e.items);
      raw.observe(e.rawBytes);
      stored.observe(e.storedBytes);
    },
  };
}

function attemptDurations(registers: Registry[]): Handlers {
  const duration = histogram(
    registers,
    'batch_emitter_delivery_attempt_duration_seconds',
    'Duration of each HTTP delivery attempt, by outcome.',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    ['outcome'],
  );
  return {
    attempt: (e) => {
      if (Number.isFinite(e.durationMs) && e.durationMs >= 0) {
        duration.observe({ outcome: e.outcome.kind }, e.durationMs / 1000);
      }
    },
  };
}

function deliveryLatencies(registers: Registry[], now: () => number): Handlers {
  const attemptsPerBatch = histogram(
    registers,
    'batch_emitter_delivery_attempts_per_batch',
    'Attempts each delivered batch took (earlier runs included).',
    [1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50],
  );
  const sealToDelivered = histogram(
    registers,
    'batch_emitter_seal_to_delivered_seconds',
    'Time from a batch being sealed to its delivery.',
    LATENCY_BUCKETS,
  );
  const publishToDelivered = histogram(
    registers,
    'batch_emitter_publish_to_delivered_seconds',
    "Time from the JetStream publish of a batch's oldest message to the batch's delivery.",
    LATENCY_BUCKETS,
  );
  const published = new Map<string, number>();
  return {
    sealed: (e) => {
      if (e.oldestPublishedMs === undefined) return;
      if (published.size >= MAX_TRACKED) {
        const oldest = published.keys().next().value;
        if (oldest !== undefined) published.delete(oldest);
      }
      published.set(e.batchId, e.oldestPublishedMs);
    },
    finished: (e) => {
      if (e.result === 'delivered') {
        const at = now();
        attemptsPerBatch.observe(e.attempts);
        if (Number.isFinite(e.createdAtMs)) sealToDelivered.observe(Math.max(0, (at - e.createdAtMs) / 1000));
        const publishedMs = published.get(e.batchId);
        if (publishedMs !== undefined) publishToDelivered.observe(Math.max(0, (at - publishedMs) / 1000));
      }
      // a parked batch is swept back in later under the same id
      if (e.result !== 'parked') published.delete(e.batchId);
    },
  };
}

/** Registers the histograms and follows the events; returns the function that stops following. */
export function registerHistograms(
  registers: Registry[],
  events: EmitterEvents,
  now: () => number,
): () => void {
  const parts = [batchSizes(registers), attemptDurations(registers), deliveryLatencies(registers, now)];
  const subscribed = parts.flatMap(
    (handlers) => Object.entries(handlers) as Array<[keyof EmitterEventMap, (e: unknown) => void]>,
  );
  for (const [name, handler] of subscribed) events.on(name, handler);
  return () => {
    for (const [name, handler] of subscribed) events.off(name, handler as (...args: unknown[]) => void);
  };
}
