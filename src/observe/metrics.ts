import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EmitterEventMap, EmitterEvents } from './events.js';
import { SECTIONS } from '../model.js';
import {
  fullSnapshot,
  spoolUsedBytes,
  type JetStreamPending,
  type StatusSnapshot,
  type StatusSource,
} from './status.js';
import { VERSION } from '../util/version.js';

/**
 * Prometheus metrics of one emitter, in a registry of its own (never prom-client's global one).
 * Counters and histograms follow the emitter's events; gauges of current values are read from
 * `status()` at scrape time (collect callbacks), never pushed. Names: `batch_emitter_` prefix,
 * base units (seconds, bytes), `_total` on counters. Default process/Node.js metrics are included
 * under their usual names.
 */

export interface MetricsOptions {
  /** async figures read once per scrape (bounded by `timeoutMs`): JetStream pending counts */
  jetstreamPending?: StatusSource['jetstreamPending'];
  /** async spool figures (oldest batch, dead letters) when the snapshot lacks them */
  spoolStats?: StatusSource['spoolStats'];
  timeoutMs?: number;
  /** clock in epoch ms (tests) */
  now?: () => number;
  /** default process metrics (default true) */
  defaultMetrics?: boolean;
}

export interface Metrics {
  registry: Registry;
  contentType: string;
  /** the exposition text; reads the status once for all gauges */
  metrics(): Promise<string>;
  /** stop following the events */
  close(): void;
}

const TRIGGERS = ['size', 'bytes', 'interval', 'manual', 'shutdown'] as const;
const RESULTS = { delivered: 'delivered', split: 'split', deadLettered: 'dead_lettered', parked: 'parked' };
const BREAKER_STATES = ['closed', 'open', 'halfOpen', 'paused'] as const;
/** distinct rejection reasons kept as label values; more become `other` */
const MAX_REASONS = 32;
/** batches whose JetStream publish time is remembered until they are delivered */
const MAX_TRACKED = 50_000;

const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200];

/**
 * A gauge whose value is read at scrape time (collect); while the value is unknown the series is
 * left out of the exposition instead of reporting a misleading 0.
 */
class StatusGauge extends Gauge<string> {
  private known = false;

  constructor(name: string, help: string, registers: Registry[], read: () => number | undefined) {
    super({
      name,
      help,
      registers,
      collect() {
        const self = this as StatusGauge;
        const value = read();
        self.known = value !== undefined && Number.isFinite(value);
        if (self.known) self.set(value as number);
      },
    });
  }

  override async get() {
    const result = await super.get();
    return this.known ? result : { ...result, values: [] };
  }
}

export function statusClass(status: number | undefined): string {
  if (status === undefined || !Number.isFinite(status) || status < 100 || status > 599) return 'none';
  return `${Math.floor(status / 100)}xx`;
}

export function createMetrics(
  events: EmitterEvents,
  status: () => StatusSnapshot,
  options: MetricsOptions = {},
): Metrics {
  const registry = new Registry();
  const now = options.now ?? Date.now;
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  // One status read per scrape: metrics() fills `scrape`; a direct registry.metrics() reads live.
  let scrape: StatusSnapshot | undefined;
  const current = (): StatusSnapshot | undefined => {
    if (scrape) return scrape;
    try {
      return status();
    } catch {
      return undefined;
    }
  };

  new Gauge({
    name: 'batch_emitter_info',
    help: 'Build information; always 1.',
    labelNames: ['version'],
    registers,
  }).set({ version: VERSION }, 1);

  // ---- items -------------------------------------------------------------------------------
  const received = new Counter({
    name: 'batch_emitter_items_received_total',
    help: 'Items accepted into a batch, by section (kind) and source (jetstream, api).',
    labelNames: ['section', 'source'],
    registers,
  });
  for (const section of SECTIONS) {
    received.inc({ section, source: 'jetstream' }, 0);
    received.inc({ section, source: 'api' }, 0);
  }
  const rejected = new Counter({
    name: 'batch_emitter_items_rejected_total',
    help: 'Messages or items refused (dead-lettered), by reason code.',
    labelNames: ['reason'],
    registers,
  });
  const reasons = new Set<string>();
  const reasonLabel = (reason: string): string => {
    const clean = reason.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 64) || 'unknown';
    if (reasons.has(clean)) return clean;
    if (reasons.size >= MAX_REASONS) return 'other';
    reasons.add(clean);
    return clean;
  };
  const itemsDelivered = new Counter({
    name: 'batch_emitter_items_delivered_total',
    help: 'Items in batches the destination accepted (2xx).',
    registers,
  });

  // ---- batches -----------------------------------------------------------------------------
  const sealed = new Counter({
    name: 'batch_emitter_batches_sealed_total',
    help: 'Batches sealed and durable in the spool, by trigger.',
    labelNames: ['trigger'],
    registers,
  });
  for (const trigger of TRIGGERS) sealed.inc({ trigger }, 0);
  const batchItems = new Histogram({
    name: 'batch_emitter_batch_items',
    help: 'Items per sealed batch.',
    buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
    registers,
  });
  const bytesBuckets = [1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
  const batchRawBytes = new Histogram({
    name: 'batch_emitter_batch_uncompressed_bytes',
    help: 'Size of each sealed batch as JSON, before compression.',
    buckets: bytesBuckets,
    registers,
  });
  const batchStoredBytes = new Histogram({
    name: 'batch_emitter_batch_stored_bytes',
    help: 'Size of each sealed batch as spooled and sent (gzip-compressed unless compression is none).',
    buckets: bytesBuckets,
    registers,
  });
  const finished = new Counter({
    name: 'batch_emitter_batches_finished_total',
    help: 'Batch deliveries finished, by result (delivered, split, dead_lettered, parked).',
    labelNames: ['result'],
    registers,
  });
  for (const result of Object.values(RESULTS)) finished.inc({ result }, 0);

  // ---- deliveries --------------------------------------------------------------------------
  const attempts = new Counter({
    name: 'batch_emitter_delivery_attempts_total',
    help: 'HTTP delivery attempts, by outcome (success, retryable, split, permanent) and status class (2xx, 4xx, 5xx, none).',
    labelNames: ['outcome', 'status_class'],
    registers,
  });
  const attemptDuration = new Histogram({
    name: 'batch_emitter_delivery_attempt_duration_seconds',
    help: 'Duration of each HTTP delivery attempt, by outcome.',
    labelNames: ['outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const attemptsPerBatch = new Histogram({
    name: 'batch_emitter_delivery_attempts_per_batch',
    help: 'Attempts each delivered batch took (earlier runs included).',
    buckets: [1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50],
    registers,
  });
  const sealToDelivered = new Histogram({
    name: 'batch_emitter_seal_to_delivered_seconds',
    help: 'Time from a batch being sealed to its delivery.',
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const publishToDelivered = new Histogram({
    name: 'batch_emitter_publish_to_delivered_seconds',
    help: "Time from the JetStream publish of a batch's oldest message to the batch's delivery.",
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const breakerTransitions = new Counter({
    name: 'batch_emitter_breaker_transitions_total',
    help: 'Circuit breaker state changes, by origin and new state.',
    labelNames: ['origin', 'to'],
    registers,
  });
  const intakePauses = new Counter({
    name: 'batch_emitter_intake_pauses_total',
    help: 'Times intake paused for backpressure, by reason.',
    labelNames: ['reason'],
    registers,
  });

  // ---- gauges read at scrape time ----------------------------------------------------------
  const gauge = (name: string, help: string, read: (s: StatusSnapshot) => number | undefined) =>
    new StatusGauge(name, help, registers, () => {
      const s = current();
      return s ? read(s) : undefined;
    });
  gauge('batch_emitter_spool_batches', 'Batches in the spool (not yet delivered).', (s) => s.spool.batches);
  gauge('batch_emitter_spool_bytes', 'Stored bytes of the spooled batches.', (s) => s.spool.bytes);
  gauge(
    'batch_emitter_spool_max_bytes',
    'Spool size at which intake pauses (TRANSMITTER_SPOOL_MAX_BYTES).',
    (s) => s.spool.maxBytes,
  );
  gauge('batch_emitter_spool_open', '1 when the spool is open.', (s) => (s.spool.open ? 1 : 0));
  gauge('batch_emitter_spool_oldest_batch_age_seconds', 'Age of the oldest spooled batch.', (s) => {
    const at = s.spool.oldestCreatedAt ? Date.parse(s.spool.oldestCreatedAt) : NaN;
    return Number.isNaN(at) ? (s.spool.batches === 0 ? 0 : undefined) : Math.max(0, (now() - at) / 1000);
  });
  gauge('batch_emitter_dead_letters', 'Dead letters held in the spool.', (s) => s.spool.deadLetters);
  gauge(
    'batch_emitter_dead_letter_bytes',
    'Bytes of the dead letters held in the spool (they count toward TRANSMITTER_SPOOL_MAX_BYTES).',
    (s) => s.spool.deadLetterBytes,
  );
  gauge(
    'batch_emitter_quarantined',
    'Batches set aside in the spool because they could not be read.',
    (s) => s.spool.quarantined,
  );
  gauge(
    'batch_emitter_quarantined_bytes',
    'Bytes of the quarantined batches (they count toward TRANSMITTER_SPOOL_MAX_BYTES).',
    (s) => s.spool.quarantinedBytes,
  );
  gauge(
    'batch_emitter_spool_used_bytes',
    'Everything the spool holds: batches, dead letters and quarantine (intake pauses at the limit).',
    (s) => spoolUsedBytes(s.spool),
  );
  gauge(
    'batch_emitter_destination_rejecting',
    '1 while the destination refuses (dead-letters) every batch it is sent; cleared by a success.',
    (s) => (s.destinationRejecting ? 1 : 0),
  );
  gauge('batch_emitter_buffer_items', 'Items in the open (unsealed) batch.', (s) => s.openItems);
  gauge(
    'batch_emitter_buffer_fill_ratio',
    "Fill of the open batch: the larger of items/TRANSMITTER_BATCH_SIZE and bytes/the batch's byte budget.",
    (s) => {
      const byItems = s.maxItems > 0 ? s.openItems / s.maxItems : 0;
      const byBytes = s.openBytes !== undefined && s.maxBytes ? s.openBytes / s.maxBytes : 0;
      return Math.max(byItems, byBytes);
    },
  );
  gauge(
    'batch_emitter_batches_in_flight',
    'Batches being delivered (sending, backing off or waiting for a permit).',
    (s) => s.inFlight,
  );
  gauge('batch_emitter_batches_queued', 'Spooled batches waiting for a delivery slot.', (s) => s.queued);
  gauge('batch_emitter_intake_paused', '1 while intake is paused (backpressure).', (s) =>
    s.intakePaused ? 1 : 0,
  );
  gauge('batch_emitter_nats_connected', '1 while connected to NATS.', (s) => (s.natsConnected ? 1 : 0));
  gauge('batch_emitter_jetstream_consumer_bound', '1 while the durable consumer is bound.', (s) =>
    s.consumerBound ? 1 : 0,
  );
  gauge(
    'batch_emitter_jetstream_pending_messages',
    'Messages in the stream not yet delivered to the durable consumer.',
    (s) => s.jetstream?.pending,
  );
  gauge(
    'batch_emitter_jetstream_ack_pending_messages',
    'Messages delivered to the consumer and not yet acknowledged.',
    (s) => s.jetstream?.ackPending,
  );
  gauge('batch_emitter_shutting_down', '1 while the emitter is shutting down.', (s) =>
    s.shuttingDown ? 1 : 0,
  );

  const breakerGauge = (
    name: string,
    help: string,
    read: (b: NonNullable<StatusSnapshot['breaker']>) => number,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['origin'],
      registers,
      collect() {
        this.reset();
        const b = current()?.breaker;
        if (b) this.set({ origin: b.origin }, read(b));
      },
    });
  new Gauge({
    name: 'batch_emitter_breaker_state',
    help: 'Circuit breaker state per destination origin: 1 for the current state, 0 for the others.',
    labelNames: ['origin', 'state'],
    registers,
    collect() {
      this.reset();
      const b = current()?.breaker;
      if (!b) return;
      const states: string[] = [...BREAKER_STATES];
      if (!states.includes(b.state)) states.push(b.state);
      for (const state of states) this.set({ origin: b.origin, state }, state === b.state ? 1 : 0);
    },
  });
  breakerGauge(
    'batch_emitter_breaker_requests_in_flight',
    'HTTP requests in flight to the origin (permits held from its concurrency limiter).',
    (b) => b.inFlight,
  );
  breakerGauge(
    'batch_emitter_breaker_allowed_concurrency',
    'Concurrent requests the concurrency limiter allows now (fixed: ramps up after recovery; or adaptive).',
    (b) => b.allowed,
  );
  breakerGauge(
    'batch_emitter_breaker_consecutive_failures',
    'Consecutive retryable failures seen by the breaker.',
    (b) => b.consecutiveFailures,
  );
  breakerGauge(
    'batch_emitter_breaker_reset_timeout_seconds',
    'Current wait in the open state before a probe.',
    (b) => b.resetTimeoutMs / 1000,
  );

  // ---- events ------------------------------------------------------------------------------
  const published = new Map<string, number>();
  const handlers: { [K in keyof EmitterEventMap]?: (event: EmitterEventMap[K]) => void } = {
    received: (e) => received.inc({ section: e.section, source: e.source }, e.count),
    rejected: (e) => rejected.inc({ reason: reasonLabel(e.reason) }),
    sealed: (e) => {
      sealed.inc({ trigger: e.trigger });
      batchItems.observe(e.items);
      batchRawBytes.observe(e.rawBytes);
      batchStoredBytes.observe(e.storedBytes);
      if (e.oldestPublishedMs !== undefined) {
        if (published.size >= MAX_TRACKED) {
          const oldest = published.keys().next().value;
          if (oldest !== undefined) published.delete(oldest);
        }
        published.set(e.batchId, e.oldestPublishedMs);
      }
    },
    attempt: (e) => {
      const outcome = e.outcome.kind;
      const status = 'status' in e.outcome ? e.outcome.status : undefined;
      attempts.inc({ outcome, status_class: statusClass(status) });
      if (Number.isFinite(e.durationMs) && e.durationMs >= 0) {
        attemptDuration.observe({ outcome }, e.durationMs / 1000);
      }
    },
    finished: (e) => {
      finished.inc({ result: RESULTS[e.result] ?? e.result });
      if (e.result === 'delivered') {
        const at = now();
        itemsDelivered.inc(e.items);
        attemptsPerBatch.observe(e.attempts);
        if (Number.isFinite(e.createdAtMs)) sealToDelivered.observe(Math.max(0, (at - e.createdAtMs) / 1000));
        const publishedMs = published.get(e.batchId);
        if (publishedMs !== undefined) publishToDelivered.observe(Math.max(0, (at - publishedMs) / 1000));
      }
      // a parked batch is swept back in later under the same id
      if (e.result !== 'parked') published.delete(e.batchId);
    },
    breaker: (e) => breakerTransitions.inc({ origin: e.origin, to: e.to }),
    intake: (e) => {
      if (e.paused) intakePauses.inc({ reason: reasonLabel(e.reason ?? 'unknown') });
    },
  };
  const subscribed = Object.entries(handlers) as Array<[keyof EmitterEventMap, (e: unknown) => void]>;
  for (const [name, handler] of subscribed) events.on(name, handler);

  const source: StatusSource = {
    snapshot: status,
    ...(options.jetstreamPending ? { jetstreamPending: options.jetstreamPending } : {}),
    ...(options.spoolStats ? { spoolStats: options.spoolStats } : {}),
  };
  return {
    registry,
    contentType: registry.contentType,
    async metrics(): Promise<string> {
      let snapshot: StatusSnapshot | undefined;
      try {
        snapshot = await fullSnapshot(source, options.timeoutMs ?? 1000);
      } catch {
        snapshot = undefined;
      }
      scrape = snapshot;
      try {
        return await registry.metrics();
      } finally {
        if (scrape === snapshot) scrape = undefined;
      }
    },
    close(): void {
      for (const [name, handler] of subscribed) events.off(name, handler as (...args: unknown[]) => void);
    },
  };
}

export type { JetStreamPending };
