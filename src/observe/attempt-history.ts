import type { EmitterEvents, EmitterEventMap } from './events.js';

/**
 * What the /debug page shows of the recent past, fed from the EmitterEvents: the last attempts
 * (per batch: when, how long, with what outcome), the attempts in flight, the last batches that
 * finished, and for the origin per-interval counts of attempt outcomes and the breaker's changes
 * over the last minutes. Every part is bounded (rings and fixed buckets), whatever the traffic:
 * the oldest entries are overwritten.
 */

export type AttemptOutcome = 'success' | 'retryable' | 'split' | 'permanent';

export interface AttemptRecord {
  batchId: string;
  attempt: number;
  /** epoch ms the request started (when seen), or ended minus its duration */
  startedAt: number;
  durationMs: number;
  outcome: AttemptOutcome;
  status?: number;
  /** short reason of a failed attempt: 'http_503', 'timeout', ... */
  reason?: string;
}

export interface InFlightAttempt {
  batchId: string;
  attempt: number;
  startedAt: number;
}

export interface FinishedBatch {
  batchId: string;
  result: string;
  attempts: number;
  at: number;
}

export interface BreakerChange {
  at: number;
  from: string;
  to: string;
}

/** attempts that ended in [start, start + bucketMs), by outcome */
export interface OutcomeBucket {
  start: number;
  success: number;
  retryable: number;
  split: number;
  permanent: number;
}

export interface HistorySnapshot {
  now: number;
  /** per batch asked for: its recent attempts, oldest first, and the one in flight */
  batches: Record<string, { attempts: AttemptRecord[]; inFlight?: InFlightAttempt }>;
  /** the last batches that finished, newest first */
  finished: Array<FinishedBatch & { history: AttemptRecord[] }>;
  origin: {
    windowMs: number;
    bucketMs: number;
    /** oldest first, covering [now - windowMs, now] */
    buckets: OutcomeBucket[];
    /** changes in the window, oldest first */
    breaker: BreakerChange[];
    /** the breaker's state at the start of the window (null: not known) */
    breakerAtStart: string | null;
  };
}

/** A fixed-size ring: pushing beyond the capacity overwrites the oldest entry. */
export class Ring<T> {
  private readonly items: Array<T | undefined>;
  private next = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    this.items = new Array<T | undefined>(capacity);
  }

  push(item: T): void {
    this.items[this.next] = item;
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }

  /** oldest first */
  toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.size; i++) {
      out.push(this.items[(this.next - this.size + i + this.capacity) % this.capacity] as T);
    }
    return out;
  }
}

export interface HistoryLimits {
  /** attempts remembered (default 1000) */
  attempts?: number;
  /** breaker changes remembered (default 64) */
  breakerChanges?: number;
  /** finished batches remembered (default 8) */
  finished?: number;
  /** attempts shown per batch (default 12, the latest) */
  perBatch?: number;
  /** the origin strip's window (default 5 min) and its bucket size (default 10 s) */
  windowMs?: number;
  bucketMs?: number;
}

export class AttemptHistory {
  private readonly attempts: Ring<AttemptRecord>;
  private readonly changes: Ring<BreakerChange>;
  private readonly finished: Ring<FinishedBatch>;
  private readonly buckets: Ring<OutcomeBucket>;
  private readonly inFlight = new Map<string, InFlightAttempt>();
  private readonly perBatch: number;
  private readonly windowMs: number;
  private readonly bucketMs: number;
  private readonly inFlightLimit: number;
  private readonly unsubscribe: () => void;

  constructor(
    events: EmitterEvents,
    private readonly now: () => number = Date.now,
    limits: HistoryLimits = {},
  ) {
    this.attempts = new Ring(limits.attempts ?? 1000);
    this.changes = new Ring(limits.breakerChanges ?? 64);
    this.finished = new Ring(limits.finished ?? 8);
    this.perBatch = limits.perBatch ?? 12;
    this.windowMs = limits.windowMs ?? 5 * 60_000;
    this.bucketMs = limits.bucketMs ?? 10_000;
    this.buckets = new Ring(Math.ceil(this.windowMs / this.bucketMs) + 1);
    this.inFlightLimit = this.attempts.capacity;

    const onSending = (e: EmitterEventMap['sending']): void => {
      if (this.inFlight.size >= this.inFlightLimit) {
        const oldest = this.inFlight.keys().next().value;
        if (oldest !== undefined) this.inFlight.delete(oldest);
      }
      this.inFlight.set(e.batchId, { batchId: e.batchId, attempt: e.attempt, startedAt: this.now() });
    };
    const onAttempt = (e: EmitterEventMap['attempt']): void => this.record(e);
    const onFinished = (e: EmitterEventMap['finished']): void => {
      this.inFlight.delete(e.batchId);
      this.finished.push({ batchId: e.batchId, result: e.result, attempts: e.attempts, at: this.now() });
    };
    const onBreaker = (e: EmitterEventMap['breaker']): void => {
      this.changes.push({ at: this.now(), from: e.from, to: e.to });
    };
    events.on('sending', onSending);
    events.on('attempt', onAttempt);
    events.on('finished', onFinished);
    events.on('breaker', onBreaker);
    this.unsubscribe = () => {
      events.off('sending', onSending);
      events.off('attempt', onAttempt);
      events.off('finished', onFinished);
      events.off('breaker', onBreaker);
    };
  }

  private record(e: EmitterEventMap['attempt']): void {
    const end = this.now();
    const started = this.inFlight.get(e.batchId);
    this.inFlight.delete(e.batchId);
    const o = e.outcome;
    this.attempts.push({
      batchId: e.batchId,
      attempt: e.attempt,
      startedAt: started?.attempt === e.attempt ? started.startedAt : end - e.durationMs,
      durationMs: e.durationMs,
      outcome: o.kind,
      ...(o.status !== undefined ? { status: o.status } : {}),
      ...(o.kind === 'retryable' || o.kind === 'permanent' ? { reason: o.reason } : {}),
    });
    this.bucketAt(end)[o.kind] += 1;
  }

  /** the bucket holding `at`, opening new ones (the ring drops those past the window) */
  private bucketAt(at: number): OutcomeBucket {
    const start = at - (at % this.bucketMs);
    const all = this.buckets.toArray();
    const last = all[all.length - 1];
    if (last && last.start === start) return last;
    const bucket = { start, success: 0, retryable: 0, split: 0, permanent: 0 };
    this.buckets.push(bucket);
    return bucket;
  }

  /** The recent past of the batches named (the live deliveries) and of the origin. */
  snapshot(batchIds: readonly string[] = []): HistorySnapshot {
    const now = this.now();
    const all = this.attempts.toArray();
    const wanted = new Set(batchIds);
    for (const f of this.finished.toArray()) wanted.add(f.batchId);
    const byBatch = new Map<string, AttemptRecord[]>();
    for (const a of all) {
      if (!wanted.has(a.batchId)) continue;
      const list = byBatch.get(a.batchId) ?? [];
      list.push(a);
      byBatch.set(a.batchId, list);
    }
    const latest = (id: string): AttemptRecord[] => (byBatch.get(id) ?? []).slice(-this.perBatch);
    const batches: HistorySnapshot['batches'] = {};
    for (const id of batchIds) {
      const inFlight = this.inFlight.get(id);
      batches[id] = { attempts: latest(id), ...(inFlight ? { inFlight } : {}) };
    }
    const from = now - this.windowMs;
    const changes = this.changes.toArray();
    const before = changes.filter((c) => c.at < from);
    const inWindow = changes.filter((c) => c.at >= from);
    const atStart = before[before.length - 1]?.to ?? inWindow[0]?.from ?? null;
    return {
      now,
      batches,
      finished: this.finished
        .toArray()
        .reverse()
        .map((f) => ({ ...f, history: latest(f.batchId) })),
      origin: {
        windowMs: this.windowMs,
        bucketMs: this.bucketMs,
        buckets: this.buckets.toArray().filter((b) => b.start + this.bucketMs > from),
        breaker: inWindow,
        breakerAtStart: atStart,
      },
    };
  }

  close(): void {
    this.unsubscribe();
  }
}
