import type { EmitterEventMap, EmitterEvents } from './events.js';

/**
 * Totals and rates over time for GET /api/v1/stats, kept from the emitter's events: items
 * received and rejected, batches sealed and finished, attempts by outcome, the last error, and the
 * throughput of the last `windowMs` (per-second buckets in a ring, so memory is constant).
 */

export interface StatsCollectorOptions {
  /** clock in epoch ms (tests) */
  now?: () => number;
  /** throughput window, default 60 s */
  windowMs?: number;
  /** batch ids remembered to count retried batches once (default 10,000) */
  trackLimit?: number;
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

const TRIGGERS = ['size', 'bytes', 'interval', 'manual', 'shutdown'];

export class StatsCollector {
  private readonly now: () => number;
  private readonly windowSeconds: number;
  private readonly trackLimit: number;
  private readonly startedMs: number;
  private readonly ring: Bucket[];
  private readonly retriedIds = new Set<string>();
  private readonly unsubscribe: Array<() => void> = [];
  private lastError?: LastError;
  private readonly totals = {
    received: 0,
    receivedBySection: record(),
    receivedBySource: record(),
    rejected: 0,
    rejectedByReason: record(),
    itemsDelivered: 0,
    sealed: 0,
    sealedByTrigger: Object.fromEntries(TRIGGERS.map((t) => [t, 0])) as Record<string, number>,
    delivered: 0,
    retried: 0,
    parked: 0,
    deadLettered: 0,
    split: 0,
    attempts: 0,
    attemptsByOutcome: record(),
  };

  constructor(events: EmitterEvents, options: StatsCollectorOptions = {}) {
    this.now = options.now ?? Date.now;
    this.windowSeconds = Math.max(1, Math.round((options.windowMs ?? 60_000) / 1000));
    this.trackLimit = options.trackLimit ?? 10_000;
    this.startedMs = this.now();
    this.ring = Array.from({ length: this.windowSeconds }, () => emptyBucket(-1));
    this.listen(events, 'received', (e) => this.onReceived(e));
    this.listen(events, 'rejected', (e) => this.onRejected(e));
    this.listen(events, 'sealed', (e) => this.onSealed(e));
    this.listen(events, 'attempt', (e) => this.onAttempt(e));
    this.listen(events, 'finished', (e) => this.onFinished(e));
  }

  /** Stop listening (the totals stay readable). */
  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  snapshot(): CollectedStats {
    const t = this.totals;
    const nowMs = this.now();
    const finished = t.delivered + t.deadLettered + t.parked;
    const successes = t.attemptsByOutcome.success ?? 0;
    const uptimeSeconds = Math.max(0, (nowMs - this.startedMs) / 1000);
    // Before a full window has passed, rates are over the time elapsed (at least 1 s).
    const span = Math.max(1, Math.min(this.windowSeconds, uptimeSeconds));
    const sum = (field: BucketField): number => {
      const current = Math.floor(nowMs / 1000);
      let total = 0;
      for (const b of this.ring) if (b.second > current - this.windowSeconds) total += b[field];
      return round(total / span);
    };
    return {
      since: new Date(this.startedMs).toISOString(),
      uptimeSeconds: round(uptimeSeconds),
      items: {
        received: t.received,
        receivedBySection: { ...t.receivedBySection },
        receivedBySource: { ...t.receivedBySource },
        rejected: t.rejected,
        rejectedByReason: { ...t.rejectedByReason },
        delivered: t.itemsDelivered,
      },
      batches: {
        sealed: t.sealed,
        sealedByTrigger: { ...t.sealedByTrigger },
        delivered: t.delivered,
        retried: t.retried,
        parked: t.parked,
        deadLettered: t.deadLettered,
        split: t.split,
      },
      attempts: { total: t.attempts, byOutcome: { ...t.attemptsByOutcome } },
      successRate: finished === 0 ? null : round(t.delivered / finished),
      attemptSuccessRate: t.attempts === 0 ? null : round(successes / t.attempts),
      ...(this.lastError ? { lastError: { ...this.lastError } } : {}),
      throughput: {
        windowSeconds: this.windowSeconds,
        itemsReceivedPerSecond: sum('itemsReceived'),
        itemsDeliveredPerSecond: sum('itemsDelivered'),
        batchesSealedPerSecond: sum('batchesSealed'),
        batchesDeliveredPerSecond: sum('batchesDelivered'),
        attemptsPerSecond: sum('attempts'),
      },
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

  private onReceived(e: EmitterEventMap['received']): void {
    const t = this.totals;
    t.received += e.count;
    increment(t.receivedBySection, e.section, e.count);
    increment(t.receivedBySource, e.source, e.count);
    this.bucket().itemsReceived += e.count;
  }

  private onRejected(e: EmitterEventMap['rejected']): void {
    this.totals.rejected += 1;
    increment(this.totals.rejectedByReason, e.reason);
    // which message, by its place and size: its content is never shown
    const about = e.subject === undefined ? '' : `${e.subject} seq ${e.seq}, ${e.bytes} bytes: `;
    this.setError(`${about}${e.detail}`, 'rejected');
  }

  private onSealed(e: EmitterEventMap['sealed']): void {
    this.totals.sealed += 1;
    increment(this.totals.sealedByTrigger, e.trigger);
    this.bucket().batchesSealed += 1;
  }

  private onAttempt(e: EmitterEventMap['attempt']): void {
    const t = this.totals;
    t.attempts += 1;
    increment(t.attemptsByOutcome, e.outcome.kind);
    this.bucket().attempts += 1;
    const o = e.outcome;
    if (o.kind === 'retryable') {
      if (!this.retriedIds.has(e.batchId)) {
        t.retried += 1;
        if (this.retriedIds.size >= this.trackLimit) {
          const oldest = this.retriedIds.values().next().value;
          if (oldest !== undefined) this.retriedIds.delete(oldest);
        }
        this.retriedIds.add(e.batchId);
      }
      this.setError(withStatus(o.reason, o.status), 'delivery', e.batchId);
    } else if (o.kind === 'permanent') {
      this.setError(withStatus(o.reason, o.status), 'delivery', e.batchId);
    }
  }

  private onFinished(e: EmitterEventMap['finished']): void {
    const t = this.totals;
    switch (e.result) {
      case 'delivered': {
        t.delivered += 1;
        t.itemsDelivered += e.items;
        const b = this.bucket();
        b.batchesDelivered += 1;
        b.itemsDelivered += e.items;
        break;
      }
      case 'parked':
        t.parked += 1;
        this.setError(
          `batch parked after ${e.attempts} attempts${this.cause(e.batchId)}`,
          'delivery',
          e.batchId,
        );
        break;
      case 'deadLettered':
        t.deadLettered += 1;
        this.setError(`batch dead-lettered${this.cause(e.batchId)}`, 'dead_letter', e.batchId);
        break;
      case 'split':
        t.split += 1;
        break;
    }
    // a parked batch comes back later and may retry again: keep it; the others are done
    if (e.result !== 'parked') this.retriedIds.delete(e.batchId);
  }
}

function emptyBucket(second: number): Bucket {
  return { second, itemsReceived: 0, itemsDelivered: 0, batchesSealed: 0, batchesDelivered: 0, attempts: 0 };
}

function record(): Record<string, number> {
  return Object.create(null) as Record<string, number>;
}

function increment(record: Record<string, number>, key: string, by = 1): void {
  record[key] = (record[key] ?? 0) + by;
}

function withStatus(reason: string, status: number | undefined): string {
  return status ? `${reason} (HTTP ${status})` : reason;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
