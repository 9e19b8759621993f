import type { TraceQuery } from './trace/query.js';
import type { TraceStory } from './trace/story.js';
/**
 * What the HTTP server and the metrics read from a running emitter. The emitter (or any host)
 * implements `StatusSource`; `snapshot()` is synchronous and cheap (it is called on every scrape
 * and every /ready probe), the optional async parts are awaited with a short timeout. Types and
 * readers of snapshots only: nothing here keeps state or changes a stage.
 */

/** One destination origin: its circuit breaker's state and failures, with the limiter's permits. */
export interface BreakerStatus {
  origin: string;
  /** 'closed' | 'open' | 'halfOpen' | 'paused' */
  state: string;
  /** permits that may be held at once while closed (the limiter's limit) */
  allowed: number;
  /** permits held now: HTTP requests in flight to this origin */
  inFlight: number;
  /** deliveries queued for a permit */
  waiting?: number;
  consecutiveFailures: number;
  /** current wait in `open` before the next probe */
  resetTimeoutMs: number;
}

export interface SpoolStatus {
  open: boolean;
  /** why the spool directory is no longer the one opened (deleted or replaced while running) */
  replaced?: string;
  batches: number;
  /** stored (compressed) bytes of the spooled batches */
  bytes: number;
  /** TRANSMITTER_SPOOL_MAX_BYTES: intake pauses at this size */
  maxBytes: number;
  /** creation time (RFC 3339) of the oldest spooled batch, when known */
  oldestCreatedAt?: string;
  /** dead letters held in the spool, when known */
  deadLetters?: number;
  /** bytes of the dead letters (records and kept bodies): they count toward maxBytes */
  deadLetterBytes?: number;
  /** records set aside because they could not be read (see `batch-emitter spool verify`), when known */
  quarantined?: number;
  /** bytes of the quarantined records: they count toward maxBytes */
  quarantinedBytes?: number;
}

/** Everything the spool holds (batches, dead letters, quarantine): what its limit is on. */
export function spoolUsedBytes(s: SpoolStatus): number {
  return s.bytes + (s.deadLetterBytes ?? 0) + (s.quarantinedBytes ?? 0);
}

/** The destination has answered the last `consecutive` attempts with a permanent refusal. */
export interface DestinationRejecting {
  consecutive: number;
  /** the HTTP status of the latest refusal */
  lastStatus?: number;
}

export interface JetStreamPending {
  /** messages in the stream not yet delivered to the consumer */
  pending: number;
  /** messages delivered and not yet acknowledged */
  ackPending: number;
}

export interface StatusSnapshot {
  /** false when the emitter runs without NATS (in-process adds only): NATS checks are skipped */
  natsEnabled?: boolean;
  natsConnected: boolean;
  consumerBound: boolean;
  /** why the consumer is not bound, when known (e.g. the stream or the consumer was deleted) */
  consumerUnbound?: string;
  spool: SpoolStatus;
  /** why intake is paused (backpressure), undefined while it accepts items */
  intakePaused?: string;
  /**
   * delivery statecharts running: batches sending, backing off or waiting for a permit (not the
   * HTTP requests in flight: that is `breaker.inFlight`)
   */
  deliveriesActive: number;
  /** spooled batches waiting for a delivery slot */
  queued: number;
  /** items in the open (unsealed) batch */
  openItems: number;
  /** TRANSMITTER_BATCH_SIZE */
  maxItems: number;
  /** serialised bytes of the open batch's items, when known */
  openBytes?: number;
  /** bytes available to items in one batch, when known */
  maxBytes?: number;
  breaker?: BreakerStatus;
  jetstream?: JetStreamPending;
  lastError?: { message: string; at: string };
  shuttingDown: boolean;
  /** how long the destination has failed every attempt (undefined while it answers) */
  originUnreachableMs?: number;
  /** TRANSMITTER_READY_MAX_UNREACHABLE_S in ms: beyond it /ready fails */
  maxUnreachableMs?: number;
  /** set while the destination refuses (dead-letters) everything it is sent, cleared by a success */
  destinationRejecting?: DestinationRejecting;
}

export interface StatusSource {
  snapshot(): StatusSnapshot;
  /** the durable consumer's pending counts (one JetStream API round trip) */
  jetstreamPending?(): Promise<JetStreamPending | undefined>;
  /** slower spool figures (oldest batch, dead letters); `Spool.stats()` fits */
  spoolStats?(): Promise<
    { oldestCreatedAt?: string; deadLetters?: number; quarantined?: number } | undefined
  >;
  /** the /debug/machines view (see `machinesView` in src/observe/machines-view.ts) */
  machines?(): unknown;
  /** the story of one batch or message (`/debug/trace`, see src/observe/trace/) */
  trace?(query: TraceQuery): Promise<TraceStory>;
}

/** The parts of a breakerMachine snapshot that `breakerStatus` reads. */
export interface BreakerSnapshotLike {
  value: unknown;
  context: { origin: string; consecutiveFailures: number; resetTimeoutMs: number };
}

/** The parts of a limiterMachine snapshot that `breakerStatus` and `limiterStatus` read. */
export interface LimiterSnapshotLike {
  value: unknown;
  context: {
    mode: string;
    limit: number;
    maxConcurrency: number;
    holders: readonly unknown[];
    queue: readonly unknown[];
    baseline?: { meanMs: number };
  };
}

/** The concurrency limiter of one destination origin (from the limiter statechart's context). */
export interface LimiterStatus {
  /** 'flowing' | 'probing' | 'held' */
  state: string;
  /** 'fixed' | 'adaptive' */
  mode: string;
  limit: number;
  maxConcurrency: number;
  inFlight: number;
  waiting: number;
  /** adaptive: the moving average of the round trips, once measured */
  rttMs?: number;
}

function stateName(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** `breakerStatus(gate.breaker.getSnapshot(), gate.limiter.getSnapshot())`: permits from the limiter */
export function breakerStatus(breaker: BreakerSnapshotLike, limiter: LimiterSnapshotLike): BreakerStatus {
  const c = breaker.context;
  return {
    origin: c.origin,
    state: stateName(breaker.value),
    allowed: limiter.context.limit,
    inFlight: limiter.context.holders.length,
    waiting: limiter.context.queue.length,
    consecutiveFailures: c.consecutiveFailures,
    resetTimeoutMs: c.resetTimeoutMs,
  };
}

export function limiterStatus(limiter: LimiterSnapshotLike): LimiterStatus {
  const c = limiter.context;
  return {
    state: stateName(limiter.value),
    mode: c.mode,
    limit: c.limit,
    maxConcurrency: c.maxConcurrency,
    inFlight: c.holders.length,
    waiting: c.queue.length,
    ...(c.baseline ? { rttMs: Math.round(c.baseline.meanMs * 10) / 10 } : {}),
  };
}

/** Resolves to undefined when `work` fails or takes longer than `ms`. */
export async function withTimeout<T>(work: Promise<T> | undefined, ms: number): Promise<T | undefined> {
  if (!work) return undefined;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
  });
  try {
    return await Promise.race([work.catch(() => undefined), timeout]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** The snapshot completed with the optional async figures (each bounded by `timeoutMs`). */
export async function fullSnapshot(source: StatusSource, timeoutMs = 1000): Promise<StatusSnapshot> {
  const snap = source.snapshot();
  const [jetstream, spoolStats] = await Promise.all([
    snap.jetstream
      ? undefined
      : withTimeout(
          callSafely(() => source.jetstreamPending?.()),
          timeoutMs,
        ),
    snap.spool.oldestCreatedAt !== undefined && snap.spool.deadLetters !== undefined
      ? undefined
      : withTimeout(
          callSafely(() => source.spoolStats?.()),
          timeoutMs,
        ),
  ]);
  return {
    ...snap,
    ...(jetstream ? { jetstream } : {}),
    spool: {
      ...snap.spool,
      ...(snap.spool.oldestCreatedAt === undefined && spoolStats?.oldestCreatedAt !== undefined
        ? { oldestCreatedAt: spoolStats.oldestCreatedAt }
        : {}),
      ...(snap.spool.deadLetters === undefined && spoolStats?.deadLetters !== undefined
        ? { deadLetters: spoolStats.deadLetters }
        : {}),
      ...(snap.spool.quarantined === undefined && spoolStats?.quarantined !== undefined
        ? { quarantined: spoolStats.quarantined }
        : {}),
    },
  };
}

function callSafely<T>(call: () => Promise<T> | undefined): Promise<T> | undefined {
  try {
    return call();
  } catch (error) {
    return Promise.reject(error);
  }
}
