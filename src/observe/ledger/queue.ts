import type { Logger } from '../../util/logger.js';
import {
  mergeUpdates,
  type Ledger,
  type LedgerRecord,
  type LedgerStats,
  type LedgerUpdate,
  type ListOptions,
} from './ledger.js';

/**
 * The write queue both ledgers share. record() only merges the update into an in-memory map (one
 * entry per batch, later fields winning), so it is O(1) and never waits for the database; a timer
 * writes the map in batches, one write at a time. A failed write is logged (rate-limited), counted
 * and put back in the queue, and the next write waits with exponential backoff.
 *
 * The queue is bounded (maxQueued batches). The spool, not the ledger, is the source of truth, so
 * when the database stays unreachable long enough for the queue to fill, updates of further
 * batches are dropped and counted rather than held in memory or allowed to slow delivery.
 */

export interface QueueOptions {
  logger: Logger;
  /** batches with pending updates kept at most (default 10,000) */
  maxQueued?: number;
  /** how long updates gather before a write (default 250 ms) */
  flushIntervalMs?: number;
  /** updates per write at most (default 500) */
  maxBatch?: number;
  /** backoff after a failed write: initial and cap (default 250 ms, 30 s) */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** how long close() waits for the last writes (default 5 s) */
  closeTimeoutMs?: number;
}

const LOG_EVERY_MS = 30_000;

export abstract class QueuedLedger implements Ledger {
  private pending = new Map<string, LedgerUpdate>();
  private timer?: NodeJS.Timeout;
  private writing?: Promise<boolean>;
  private failures = 0;
  private retryAt = 0;
  private closed = false;
  private closing?: Promise<void>;
  private lastLogMs = 0;
  private lastDropLogMs = 0;
  private readonly counters: Omit<LedgerStats, 'queued'> = { written: 0, dropped: 0, errors: 0 };
  protected readonly logger: Logger;
  private readonly maxQueued: number;
  private readonly flushIntervalMs: number;
  private readonly maxBatch: number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly closeTimeoutMs: number;

  protected constructor(options: QueueOptions) {
    this.logger = options.logger;
    this.maxQueued = options.maxQueued ?? 10_000;
    this.flushIntervalMs = options.flushIntervalMs ?? 250;
    this.maxBatch = options.maxBatch ?? 500;
    this.retryInitialMs = options.retryInitialMs ?? 250;
    this.retryMaxMs = options.retryMaxMs ?? 30_000;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
  }

  /** Write these updates (one per batch id) in one batch, or throw. */
  protected abstract write(updates: LedgerUpdate[]): Promise<void>;
  protected abstract release(): Promise<void>;
  abstract get(id: string): Promise<LedgerRecord | undefined>;
  abstract list(opts?: ListOptions): Promise<LedgerRecord[]>;
  abstract findBySeq(seq: number): Promise<LedgerRecord | undefined>;
  abstract counts(): Promise<Record<string, number>>;

  record(update: LedgerUpdate): void {
    if (this.closed) {
      this.counters.dropped += 1;
      return;
    }
    if (!this.enqueue(update)) return;
    if (this.pending.size >= this.maxBatch) this.schedule(0);
    else this.schedule(this.flushIntervalMs);
  }

  stats(): LedgerStats {
    return { queued: this.pending.size, ...this.counters };
  }

  async flush(): Promise<void> {
    try {
      while (this.pending.size > 0 || this.writing) {
        const ok = await this.writeOnce(true);
        if (!ok) return;
      }
    } catch {
      // never rejects: writeOnce already logged and counted
    }
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([
      this.flush(),
      new Promise<void>((resolve) => {
        timeout = setTimeout(resolve, this.closeTimeoutMs);
      }),
    ]);
    if (timeout) clearTimeout(timeout);
    if (this.pending.size > 0) {
      this.counters.dropped += this.pending.size;
      this.logger.warn({ updates_dropped: this.pending.size }, 'ledger closed with unwritten updates');
      this.pending.clear();
    }
    // a write still hanging (database unreachable) must not hold close() up for long either
    await Promise.race([
      (async () => {
        await this.writing?.catch(() => undefined);
        await this.release();
      })().catch((error: unknown) =>
        this.logger.warn({ err: (error as Error).message }, 'ledger close failed'),
      ),
      new Promise<void>((resolve) => setTimeout(resolve, this.closeTimeoutMs).unref()),
    ]);
  }

  /** Merge into the queue; false when dropped because the queue is full. */
  private enqueue(update: LedgerUpdate): boolean {
    const queued = this.pending.get(update.id);
    if (queued) {
      this.pending.set(update.id, mergeUpdates(queued, update));
      return true;
    }
    if (this.pending.size >= this.maxQueued) {
      this.counters.dropped += 1;
      const now = Date.now();
      if (now - this.lastDropLogMs >= LOG_EVERY_MS) {
        this.lastDropLogMs = now;
        this.logger.warn(
          { updates_dropped: this.counters.dropped, updates_queued: this.pending.size },
          'ledger queue full (database unreachable?): dropping ledger updates; the spool is unaffected',
        );
      }
      return false;
    }
    this.pending.set(update.id, update);
    return true;
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    const wait = Math.max(delayMs, this.retryAt - Date.now());
    if (this.timer) {
      if (wait > 0) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.writeOnce(false).then((ok) => {
        if (this.pending.size > 0) this.schedule(ok ? 0 : this.retryAt - Date.now());
      });
    }, wait);
    this.timer.unref();
  }

  /**
   * One write of up to maxBatch queued updates (or wait for the one in progress). Resolves false
   * when it failed. `force` ignores the backoff (flush() and close()).
   */
  private async writeOnce(force: boolean): Promise<boolean> {
    if (this.writing) return this.writing;
    if (this.pending.size === 0) return true;
    if (!force && Date.now() < this.retryAt) return false;
    const batch: LedgerUpdate[] = [];
    for (const [id, update] of this.pending) {
      batch.push(update);
      this.pending.delete(id);
      if (batch.length >= this.maxBatch) break;
    }
    this.writing = this.write(batch).then(
      () => {
        this.counters.written += batch.length;
        if (this.failures > 0) this.logger.info({ after: this.failures }, 'ledger writes succeed again');
        this.failures = 0;
        this.retryAt = 0;
        return true;
      },
      (error: unknown) => {
        this.onWriteError(batch, error);
        return false;
      },
    );
    try {
      return await this.writing;
    } finally {
      this.writing = undefined;
    }
  }

  private onWriteError(batch: LedgerUpdate[], error: unknown): void {
    this.counters.errors += 1;
    this.failures += 1;
    const message = error instanceof Error ? error.message : String(error);
    this.counters.lastError = message;
    const delay = Math.min(this.retryMaxMs, this.retryInitialMs * 2 ** Math.min(20, this.failures - 1));
    this.retryAt = Date.now() + delay;
    const now = Date.now();
    if (this.failures === 1 || now - this.lastLogMs >= LOG_EVERY_MS) {
      this.lastLogMs = now;
      this.logger.warn(
        {
          err: message,
          failures: this.failures,
          retryInMs: delay,
          updates_queued: this.pending.size + batch.length,
        },
        'ledger write failed; updates stay queued (delivery is unaffected)',
      );
    }
    // put the failed updates back under any newer ones for the same batches
    for (const update of batch) {
      const newer = this.pending.get(update.id);
      if (newer) this.pending.set(update.id, mergeUpdates(update, newer));
      else if (this.pending.size < this.maxQueued) this.pending.set(update.id, update);
      else this.counters.dropped += 1;
    }
  }
}
