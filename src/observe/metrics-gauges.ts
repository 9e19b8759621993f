import { Gauge, type Registry } from 'prom-client';
import { spoolUsedBytes, type StatusSnapshot } from './status.js';

/**
 * The Prometheus gauges: current values read from the status snapshot at scrape time (collect
 * callbacks), never pushed. Reads the snapshot only; an unknown value leaves its series out.
 */

const BREAKER_STATES = ['closed', 'open', 'halfOpen', 'paused'] as const;

type Current = () => StatusSnapshot | undefined;

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

type Read = (s: StatusSnapshot, nowMs: number) => number | undefined;

/** [name, help, value read from the snapshot] */
const STATUS_GAUGES: Array<[name: string, help: string, read: Read]> = [
  ['batch_emitter_spool_batches', 'Batches in the spool (not yet delivered).', (s) => s.spool.batches],
  ['batch_emitter_spool_bytes', 'Stored bytes of the spooled batches.', (s) => s.spool.bytes],
  [
    'batch_emitter_spool_max_bytes',
    'Spool size at which intake pauses (TRANSMITTER_SPOOL_MAX_BYTES).',
    (s) => s.spool.maxBytes,
  ],
  ['batch_emitter_spool_open', '1 when the spool is open.', (s) => (s.spool.open ? 1 : 0)],
  [
    'batch_emitter_spool_oldest_batch_age_seconds',
    'Age of the oldest spooled batch.',
    (s, nowMs) => {
      const at = s.spool.oldestCreatedAt ? Date.parse(s.spool.oldestCreatedAt) : NaN;
      return Number.isNaN(at) ? (s.spool.batches === 0 ? 0 : undefined) : Math.max(0, (nowMs - at) / 1000);
    },
  ],
  ['batch_emitter_dead_letters', 'Dead letters held in the spool.', (s) => s.spool.deadLetters],
  [
    'batch_emitter_dead_letter_bytes',
    'Bytes of the dead letters held in the spool (they count toward TRANSMITTER_SPOOL_MAX_BYTES).',
    (s) => s.spool.deadLetterBytes,
  ],
  [
    'batch_emitter_quarantined',
    'Batches set aside in the spool because they could not be read.',
    (s) => s.spool.quarantined,
  ],
  [
    'batch_emitter_quarantined_bytes',
    'Bytes of the quarantined batches (they count toward TRANSMITTER_SPOOL_MAX_BYTES).',
    (s) => s.spool.quarantinedBytes,
  ],
  [
    'batch_emitter_spool_used_bytes',
    'Everything the spool holds: batches, dead letters and quarantine (intake pauses at the limit).',
    (s) => spoolUsedBytes(s.spool),
  ],
  [
    'batch_emitter_destination_rejecting',
    '1 while the destination refuses (dead-letters) every batch it is sent; cleared by a success.',
    (s) => (s.destinationRejecting ? 1 : 0),
  ],
  ['batch_emitter_buffer_items', 'Items in the open (unsealed) batch.', (s) => s.openItems],
  [
    'batch_emitter_buffer_fill_ratio',
    "Fill of the open batch: the larger of items/TRANSMITTER_BATCH_SIZE and bytes/the batch's byte budget.",
    (s) => {
      const byItems = s.maxItems > 0 ? s.openItems / s.maxItems : 0;
      const byBytes = s.openBytes !== undefined && s.maxBytes ? s.openBytes / s.maxBytes : 0;
      return Math.max(byItems, byBytes);
    },
  ],
  [
    'batch_emitter_batches_in_flight',
    'Batches being delivered (sending, backing off or waiting for a permit).',
    (s) => s.deliveriesActive,
  ],
  ['batch_emitter_batches_queued', 'Spooled batches waiting for a delivery slot.', (s) => s.queued],
  [
    'batch_emitter_intake_paused',
    '1 while intake is paused (backpressure).',
    (s) => (s.intakePaused ? 1 : 0),
  ],
  ['batch_emitter_nats_connected', '1 while connected to NATS.', (s) => (s.natsConnected ? 1 : 0)],
  [
    'batch_emitter_jetstream_consumer_bound',
    '1 while the durable consumer is bound.',
    (s) => (s.consumerBound ? 1 : 0),
  ],
  [
    'batch_emitter_jetstream_pending_messages',
    'Messages in the stream not yet delivered to the durable consumer.',
    (s) => s.jetstream?.pending,
  ],
  [
    'batch_emitter_jetstream_ack_pending_messages',
    'Messages delivered to the consumer and not yet acknowledged.',
    (s) => s.jetstream?.ackPending,
  ],
  ['batch_emitter_shutting_down', '1 while the emitter is shutting down.', (s) => (s.shuttingDown ? 1 : 0)],
];

export function registerStatusGauges(registers: Registry[], current: Current, now: () => number): void {
  for (const [name, help, read] of STATUS_GAUGES) {
    new StatusGauge(name, help, registers, () => {
      const s = current();
      return s ? read(s, now()) : undefined;
    });
  }
}

type BreakerRead = (b: NonNullable<StatusSnapshot['breaker']>) => number;

/** [name, help, value read from the breaker status], one series per origin */
const BREAKER_GAUGES: Array<[name: string, help: string, read: BreakerRead]> = [
  [
    'batch_emitter_breaker_requests_in_flight',
    'HTTP requests in flight to the origin (permits held from its concurrency limiter).',
    (b) => b.inFlight,
  ],
  [
    'batch_emitter_breaker_allowed_concurrency',
    'Concurrent requests the concurrency limiter allows now (fixed: ramps up after recovery; or adaptive).',
    (b) => b.allowed,
  ],
  [
    'batch_emitter_breaker_consecutive_failures',
    'Consecutive retryable failures seen by the breaker.',
    (b) => b.consecutiveFailures,
  ],
  [
    'batch_emitter_breaker_reset_timeout_seconds',
    'Current wait in the open state before a probe.',
    (b) => b.resetTimeoutMs / 1000,
  ],
];

export function registerBreakerGauges(registers: Registry[], current: Current): void {
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
  for (const [name, help, read] of BREAKER_GAUGES) {
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
  }
}
