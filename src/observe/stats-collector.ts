import type { Counters } from './counters.js';
import type { EmitterEventMap, EmitterEvents } from './events.js';

/**
 * GET /api/v1/stats' view of the emitter's events: the totals as the event bus's one tally
 * (`events.counters`) has them, plus what only this view keeps: the last error and the throughput
 * of the last `windowMs` (per-second buckets in a ring, so memory is constant). Counts nothing of
 * its own.
 */

export interface StatsCollectorOptions {
  /** clock in epoch ms (tests) */
  now?: () => number;
  /** throughput window, default 60 s */
  windowMs?: number;
}

export interface LastError {
  message: string;
  at: string;
  /** 'delivery' | 'rejected' | 'dead_letter' | ... */
  source: string;
  batchId?: string;
}

export interface CollectedStats {
  since: string;
  uptimeSeconds: number;
  items: {
    received: number;
    receivedBySection: Record<string, number>;
    receivedBySource: Record<string, number>;
    rejected: number;
    rejectedByReason: Record<string, number>;
    delivered: number;
  };
  batches: {
    sealed: number;
    sealedByTrigger: Record<string, number>;
    delivered: number;
    /** batches that needed at least one retry (counted once per batch) */
    retried: number;
    parked: number;
    deadLettered: number;
    split: number;
  };
  attempts: {
    total: number;
    byOutcome: Record<string, number>;
  };
  /** delivered / (delivered + dead-lettered + parked); null before any batch finished */
  successRate: number | null;
  /** successful attempts / attempts; null before any attempt */
  attemptSuccessRate: number | null;
  lastError?: LastError;
  throughput: {
    windowSeconds: number;
    itemsReceivedPerSecond: number;
    itemsDeliveredPerSecond: number;
    batchesSealedPerSecond: number;
    batchesDeliveredPerSecond: number;
    attemptsPerSecond: number;
  };
}

interface Bucket {
  second: number;
  itemsReceived: number;
  itemsDelivered: number;
  batchesSealed: number;
  batchesDelivered: number;
  attempts: number;
}

type BucketField = Exclude<keyof Bucket, 'second'>;

export class StatsCollector {
  private readonly now: () => number;
  private readonly windowSeconds: number;
  private readonly startedMs: number;
  private readonly ring: Bucket[];
  private readonly unsubscribe: Array<() => void> = [];
  private lastError?: LastError;
  /** the bus's tally while listening; a frozen copy once closed */
  private counts: () => Counters;

  constructor(events: EmitterEvents, options: StatsCollectorOptions = {}) {
    this.now = options.now ?? Date.now;
    this.windowSeconds = Math.max(1, Math.round((options.windowMs ?? 60_000) / 1000));
    this.startedMs = this.now();
    this.ring = Array.from({ length: this.windowSeconds }, () => emptyBucket(-1));
    this.counts = () => events.counters;
    this.listen(events, 'received', (e) => (this.bucket().itemsReceived += e.count));
    this.listen(events, 'rejected', (e) => this.onRejected(e));
    this.listen(events, 'sealed', () => (this.bucket().batchesSealed += 1));
    this.listen(events, 'attempt', (e) => this.onAttempt(e));
    this.listen(events, 'finished', (e) => this.onFinished(e));
  }

  /** Stop listening (the totals stay readable). */
  close(): void {
    if (this.unsubscribe.length === 0) return;
    for (const off of this.unsubscribe.splice(0)) off();
    const frozen = this.counts().copy();
    this.counts = () => frozen;
  }

  snapshot(): CollectedStats {
    const c = this.counts();
    const nowMs = this.now();
    const uptimeSeconds = Math.max(0, (nowMs - this.startedMs) / 1000);
    const result = (r: string) => c.finished.of('result', r);
    const finished = result('delivered') + result('deadLettered') + result('parked');
    const attempts = c.attempts.total;
    return {
      since: new Date(this.startedMs).toISOString(),
      uptimeSeconds: round(uptimeSeconds),
      items: {
        received: c.received.total,
        receivedBySection: c.received.by('section'),
        receivedBySource: c.received.by('source'),
        rejected: c.rejected.total,
        rejectedByReason: c.rejected.by('reason'),
        delivered: c.itemsDelivered,
      },
      batches: {
        sealed: c.sealed.total,
        sealedByTrigger: c.sealed.by('trigger'),
        delivered: result('delivered'),
        retried: c.retried,
        parked: result('parked'),
        deadLettered: result('deadLettered'),
        split: result('split'),
      },
      attempts: { total: attempts, byOutcome: c.attempts.by('outcome') },
      successRate: finished === 0 ? null : round(result('delivered') / finished),
      attemptSuccessRate: attempts === 0 ? null : round(c.attempts.of('outcome', 'success') / attempts),
      ...(this.lastError ? { lastError: { ...this.lastError } } : {}),
      throughput: this.throughput(nowMs, uptimeSeconds),
    };
  }

  private throughput(nowMs: number, uptimeSeconds: number): CollectedStats['throughput'] {
    // Before a full window has passed, rates are over the time elapsed (at least 1 s).
    const span = Math.max(1, Math.min(this.windowSeconds, uptimeSeconds));
    const current = Math.floor(nowMs / 1000);
    const rate = (field: BucketField): number => {
      let total = 0;
      for (const b of this.ring) if (b.second > current - this.windowSeconds) total += b[field];
      return round(total / span);
    };
    return {
      windowSeconds: this.windowSeconds,
      itemsReceivedPerSecond: rate('itemsReceived'),
      itemsDeliveredPerSecond: rate('itemsDelivered'),
      batchesSealedPerSecond: rate('batchesSealed'),
      batchesDeliveredPerSecond: rate('batchesDelivered'),
      attemptsPerSecond: rate('attempts'),
    };
  }

  private listen<K extends keyof EmitterEventMap>(
    events: EmitterEvents,
    name: K,
    listener: (event: EmitterEventMap[K]) => void,
  ): void {
    events.on(name, listener);
    this.unsubscribe.push(() => events.off(name, listener as (...args: unknown[]) => void));
  }

  private bucket(): Bucket {
    const second = Math.floor(this.now() / 1000);
    const index = ((second % this.windowSeconds) + this.windowSeconds) % this.windowSeconds;
    let b = this.ring[index] as Bucket;
    if (b.second !== second) {
      b = emptyBucket(second);
      this.ring[index] = b;
    }
    return b;
  }

  private setError(message: string, source: string, batchId?: string): void {
    this.lastError = {
      message,
      at: new Date(this.now()).toISOString(),
      source,
      ...(batchId !== undefined ? { batchId } : {}),
    };
  }

  /** ': <last error>' when the last error was this batch's */
  private cause(batchId: string): string {
    return this.lastError?.batchId === batchId ? `: ${this.lastError.message}` : '';
  }

  private onRejected(e: EmitterEventMap['rejected']): void {
    // which message, by its place and size: its content is never shown
    const about = e.subject === undefined ? '' : `${e.subject} seq ${e.seq}, ${e.bytes} bytes: `;
    this.setError(`${about}${e.detail}`, 'rejected');
  }

  private onAttempt(e: EmitterEventMap['attempt']): void {
    this.bucket().attempts += 1;
    const o = e.outcome;
    if (o.kind === 'retryable' || o.kind === 'permanent') {
      this.setError(withStatus(o.reason, o.status), 'delivery', e.batchId);
    }
  }

  private onFinished(e: EmitterEventMap['finished']): void {
    if (e.result === 'delivered') {
      const b = this.bucket();
      b.batchesDelivered += 1;
      b.itemsDelivered += e.items;
    } else if (e.result === 'parked') {
      this.setError(
        `batch parked after ${e.attempts} attempts${this.cause(e.batchId)}`,
        'delivery',
        e.batchId,
      );
    } else if (e.result === 'deadLettered') {
      this.setError(`batch dead-lettered${this.cause(e.batchId)}`, 'dead_letter', e.batchId);
    }
  }
}

function emptyBucket(second: number): Bucket {
  return { second, itemsReceived: 0, itemsDelivered: 0, batchesSealed: 0, batchesDelivered: 0, attempts: 0 };
}

function withStatus(reason: string, status: number | undefined): string {
  return status ? `${reason} (HTTP ${status})` : reason;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
