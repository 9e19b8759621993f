import { chmod, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import {
  FINAL_STATUSES,
  applyUpdate,
  holdsSeq,
  idFloorOfMs,
  type LedgerRecord,
  type LedgerUpdate,
  type ListOptions,
} from './ledger.js';
import { QueuedLedger, type QueueOptions } from './queue.js';

/**
 * The default ledger: its own LevelDB (the emitter uses `<spool dir>/ledger`), separate from the
 * spool's database so the two never share a handle (classic-level: one handle per directory per
 * process). Keys are the UUIDv7 batch ids, so key order is creation order.
 *
 * Retention keeps the ledger bounded: records completed (success, dead_lettered, split) more
 * than `retentionDays` ago are removed, and when more than `maxRecords` remain the oldest are
 * removed by id order, final ones first. Pruning runs at open and every `pruneIntervalMs`.
 */

export interface LevelLedgerOptions extends QueueOptions {
  /** records kept at most (default 100,000) */
  maxRecords?: number;
  /** completed records older than this are pruned (default 7 days; 0 disables) */
  retentionDays?: number;
  /** default 60 s */
  pruneIntervalMs?: number;
}

const DAY_MS = 86_400_000;

/** The ledger's LevelDB is held by another process (a running emitter). */
export class LedgerLockedError extends Error {
  readonly code = 'LEDGER_LOCKED';
  constructor(readonly dir: string) {
    super(`ledger ${dir} is in use by a running emitter`);
    this.name = 'LedgerLockedError';
  }
}
const DELETE_CHUNK = 1000;

function decode(text: string): LedgerRecord | undefined {
  try {
    return JSON.parse(text) as LedgerRecord;
  } catch {
    return undefined;
  }
}

export class LevelLedger extends QueuedLedger {
  private chain: Promise<unknown> = Promise.resolve();
  private statusCounts?: Map<string, number>;
  private pruneTimer?: NodeJS.Timeout;
  private readonly maxRecords: number;
  private readonly retentionMs: number;

  private constructor(
    readonly dir: string,
    private readonly db: Level<string, string>,
    options: LevelLedgerOptions,
  ) {
    super(options);
    this.maxRecords = options.maxRecords ?? 100_000;
    this.retentionMs = (options.retentionDays ?? 7) * DAY_MS;
  }

  static async open(dir: string, options: LevelLedgerOptions): Promise<LevelLedger> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // the spool tightens every entry of its directory to 0600 at open; a directory needs its x bit
    await chmod(dir, 0o700);
    const db = new Level<string, string>(dir, { valueEncoding: 'utf8' });
    await db.open();
    const ledger = new LevelLedger(dir, db, options);
    const every = options.pruneIntervalMs ?? 60_000;
    ledger.pruneTimer = setInterval(() => void ledger.prune(), every);
    ledger.pruneTimer.unref();
    void ledger.prune();
    return ledger;
  }

  /**
   * Open an existing ledger to read it (`batch-emitter ledger`, `trace`): never creates it, never
   * prunes. LedgerLockedError while a running emitter holds it; undefined when there is none.
   */
  static async openToRead(dir: string, options: LevelLedgerOptions): Promise<LevelLedger | undefined> {
    const exists = await stat(join(dir, 'CURRENT')).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!exists) return undefined;
    const db = new Level<string, string>(dir, { valueEncoding: 'utf8', createIfMissing: false });
    try {
      await db.open();
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      if (cause?.code === 'LEVEL_LOCKED') throw new LedgerLockedError(dir);
      throw error;
    }
    return new LevelLedger(dir, db, options);
  }

  /** Run database work one piece at a time (writes, pruning and the count scan never interleave). */
  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work, work);
    this.chain = next.catch(() => undefined);
    return next;
  }

  protected write(updates: LedgerUpdate[]): Promise<void> {
    return this.serial(async () => {
      const ids = updates.map((u) => u.id);
      const existing = await this.db.getMany(ids);
      const records = updates.map((u, i) => {
        const text = existing[i];
        return { before: text === undefined ? undefined : decode(text), update: u };
      });
      const after = records.map((r) => applyUpdate(r.before, r.update));
      await this.db.batch(
        after.map((rec) => ({ type: 'put' as const, key: rec.id, value: JSON.stringify(rec) })),
      );
      if (this.statusCounts) {
        records.forEach((r, i) => {
          if (r.before) this.bump(r.before.status, -1);
          this.bump((after[i] as LedgerRecord).status, 1);
        });
      }
    });
  }

  private bump(status: string, by: number): void {
    const counts = this.statusCounts;
    if (!counts) return;
    const n = (counts.get(status) ?? 0) + by;
    if (n > 0) counts.set(status, n);
    else counts.delete(status);
  }

  async get(id: string): Promise<LedgerRecord | undefined> {
    const text = await this.db.get(id);
    return text === undefined ? undefined : decode(text);
  }

  async list(opts: ListOptions = {}): Promise<LedgerRecord[]> {
    const limit = opts.limit ?? 100;
    const out: LedgerRecord[] = [];
    if (limit <= 0) return out;
    // ids are UUIDv7: created at or after `since` means an id at or above that millisecond's floor
    const range = opts.since === undefined ? {} : { gte: idFloorOfMs(opts.since) };
    for await (const [, text] of this.db.iterator({ reverse: true, ...range })) {
      const record = decode(text);
      if (!record || (opts.status !== undefined && record.status !== opts.status)) continue;
      out.push(record);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** A scan, newest first (the ledger is bounded by maxRecords): for `trace`, not the hot path. */
  async findBySeq(seq: number): Promise<LedgerRecord | undefined> {
    for await (const text of this.db.values({ reverse: true })) {
      const record = decode(text);
      if (record && holdsSeq(record, seq)) return record;
    }
    return undefined;
  }

  counts(): Promise<Record<string, number>> {
    return this.serial(async () => Object.fromEntries(await this.ensureCounts()));
  }

  /** Counted once by a scan, then kept up to date by writes and pruning. */
  private async ensureCounts(): Promise<Map<string, number>> {
    if (this.statusCounts) return this.statusCounts;
    const counts = new Map<string, number>();
    for await (const text of this.db.values()) {
      const status = decode(text)?.status ?? 'undecodable';
      counts.set(status, (counts.get(status) ?? 0) + 1);
    }
    this.statusCounts = counts;
    return counts;
  }

  /** Apply the retention bounds now. Resolves with the number of records removed. */
  prune(now: number = Date.now()): Promise<number> {
    return this.serial(async () => {
      let removed = 0;
      try {
        const counts = await this.ensureCounts();
        if (this.retentionMs > 0) removed += await this.pruneCompletedBefore(now - this.retentionMs);
        let excess = [...counts.values()].reduce((a, b) => a + b, 0) - this.maxRecords;
        if (excess > 0) {
          const finals = await this.pruneOldest(excess, true);
          removed += finals;
          excess -= finals;
        }
        if (excess > 0) removed += await this.pruneOldest(excess, false);
        if (removed > 0) this.logger.debug({ removed }, 'ledger pruned');
      } catch (error) {
        this.logger.warn({ err: (error as Error).message }, 'ledger pruning failed');
      }
      return removed;
    });
  }

  /** Final records completed before `cutoff`; only ids created before it can qualify. */
  private async pruneCompletedBefore(cutoff: number): Promise<number> {
    const doomed: LedgerRecord[] = [];
    for await (const [, text] of this.db.iterator({ lt: idFloorOfMs(cutoff) })) {
      const record = decode(text);
      if (!record) continue;
      if (!FINAL_STATUSES.has(record.status) || record.completed_at === null) continue;
      if (Date.parse(record.completed_at) < cutoff) doomed.push(record);
    }
    await this.remove(doomed);
    return doomed.length;
  }

  /** The `count` oldest records by id; with onlyFinal, only those whose batch is done. */
  private async pruneOldest(count: number, onlyFinal: boolean): Promise<number> {
    const doomed: LedgerRecord[] = [];
    for await (const [id, text] of this.db.iterator()) {
      if (doomed.length >= count) break;
      const record = decode(text) ?? ({ id, status: 'undecodable' } as unknown as LedgerRecord);
      if (onlyFinal && !FINAL_STATUSES.has(record.status)) continue;
      doomed.push(record);
    }
    await this.remove(doomed);
    return doomed.length;
  }

  private async remove(records: LedgerRecord[]): Promise<void> {
    for (let i = 0; i < records.length; i += DELETE_CHUNK) {
      const chunk = records.slice(i, i + DELETE_CHUNK);
      await this.db.batch(chunk.map((r) => ({ type: 'del' as const, key: r.id })));
      for (const r of chunk) this.bump(r.status, -1);
    }
  }

  protected async release(): Promise<void> {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    await this.chain;
    await this.db.close();
  }
}
