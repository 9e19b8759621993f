import { chmod, mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';
import type { BatchState } from './batch-state.js';
import { Batches, type QuarantineEntry } from './batches.js';
import { DeadLetters } from './dead-letters.js';
import { SpoolDestination } from './destination.js';
import { lostItsCurrentFile, SpoolError, SpoolHandle } from './handle.js';
import { Quarantine } from './quarantine.js';
import { SeqIndex } from './seq-index.js';
import { openStores, reopenStores, type Stores } from './stores.js';
import { SpoolUsage } from './usage.js';

/**
 * The spool: the LevelDB write-ahead log of every sealed batch, one directory, one handle. It
 * opens the handle and hands out its modules (batches, sequence index, dead letters, quarantine,
 * usage); each module runs its operations through the handle, and a move that spans stores is
 * one LevelDB batch. It never delivers, decodes a body or decides what to acknowledge.
 */

export { SpoolError, type Written } from './handle.js';
export type { BatchState, BatchStatePatch } from './batch-state.js';
export type { KnownBatch, QuarantineEntry, SpooledBatch } from './batches.js';
export type { DeadLetter, StoredDeadLetter } from './dead-letters.js';
export type { QuarantinedBatch } from './quarantine.js';
export { seqRanges } from './seq-index.js';
export { destinationKey, SpoolDestinationError } from './destination.js';

/** What the spool holds, as /api/v1/stats and `batch-emitter spool stats` show it. */
export interface SpoolStats {
  batches: number;
  bytes: number;
  oldestCreatedAt?: string;
  deadLetters: number;
  deadLetterBytes: number;
  quarantined: number;
  quarantinedBytes: number;
}

/** The spool's `status()`: its handle, and the counts kept in `usage` (no database read). */
export interface SpoolFigures {
  open: boolean;
  /** why the directory is no longer the one opened, if so */
  replaced?: string;
  batches: number;
  bytes: number;
  deadLetters: number;
  deadLetterBytes: number;
  quarantined: number;
  quarantinedBytes: number;
}

export interface SpoolOptions {
  logger?: Logger;
  /** after each reopen (following a failed operation), once what the spool holds was re-read */
  onReopened?: () => void;
}

async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

/** LevelDB creates its files with the process umask; tighten whatever is already there. */
async function tightenFiles(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile()) await chmod(join(dir, entry.name), 0o600).catch(() => undefined);
  }
}

async function isDatabase(dir: string): Promise<boolean> {
  return stat(join(dir, 'CURRENT')).then(
    (s) => s.isFile(),
    () => false,
  );
}

export class Spool {
  readonly usage = new SpoolUsage();
  readonly seqIndex: SeqIndex;
  readonly quarantine: Quarantine;
  readonly batches: Batches;
  readonly deadLetters: DeadLetters;
  /** the destination its batches were accepted for */
  readonly destination: SpoolDestination;
  private readonly stores: Stores;

  private constructor(
    readonly dir: string,
    /** the one LevelDB handle of this directory: generations, reopen after a failure, identity */
    readonly handle: SpoolHandle,
  ) {
    this.stores = openStores(handle.db);
    this.seqIndex = new SeqIndex(handle, this.stores);
    this.quarantine = new Quarantine(handle, this.stores, this.usage);
    this.batches = new Batches(handle, this.stores, this.usage, this.seqIndex, this.quarantine);
    this.deadLetters = new DeadLetters(handle, this.stores, this.usage, this.batches);
    this.destination = new SpoolDestination(handle, this.stores);
  }

  /**
   * Open (creating 0700) the spool directory. Unreadable batch records are quarantined. Another
   * process holding it is SPOOL_LOCKED.
   */
  static async open(dir: string, options: SpoolOptions = {}): Promise<Spool> {
    await ensurePrivateDir(dir);
    const handle = await SpoolHandle.open(dir, { createIfMissing: true, logger: options.logger });
    try {
      await tightenFiles(dir);
      const spool = new Spool(dir, handle);
      await spool.readAll();
      handle.afterReopen = () => spool.reread();
      handle.onReopened = options.onReopened;
      handle.watchIdentity();
      return spool;
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Open an existing spool for an operator command (batch-emitter dlq / spool): never creates the
   * directory or the database (SPOOL_NOT_FOUND), reports a spool held by another process as
   * SPOOL_LOCKED, and counts the batches without quarantining any, so opening changes nothing.
   */
  static async openExisting(dir: string): Promise<Spool> {
    // a spool that lost only its CURRENT file is damaged (SpoolHandle.open says so), not missing
    if (!(await isDatabase(dir)) && !(await lostItsCurrentFile(dir)))
      throw new SpoolError('SPOOL_NOT_FOUND', `no spool at ${dir}`);
    const handle = await SpoolHandle.open(dir, { createIfMissing: false });
    try {
      await tightenFiles(dir);
      const spool = new Spool(dir, handle);
      await spool.batches.recount({ quarantineUnreadable: false });
      return spool;
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  /** The handle and the counts, as /ready and /metrics read them. */
  status(): SpoolFigures {
    const { batches, deadLetters, quarantine } = this.usage;
    return {
      open: this.handle.isOpen,
      replaced: this.handle.replaced,
      batches: batches.count,
      bytes: batches.bytes,
      deadLetters: deadLetters.count,
      deadLetterBytes: deadLetters.bytes,
      quarantined: quarantine.count,
      quarantinedBytes: quarantine.bytes,
    };
  }

  /** The counts and the oldest batch; counts dead letters and quarantine first if not yet done. */
  stats(): Promise<SpoolStats> {
    return this.handle.run(
      async () => {
        const [oldest] = await this.batches.list({ limit: 1 });
        if (!this.usage.counted('deadLetters')) await this.deadLetters.recount();
        if (!this.usage.counted('quarantine')) await this.quarantine.recount();
        const s = this.status();
        return {
          batches: s.batches,
          bytes: s.bytes,
          oldestCreatedAt: oldest?.createdAt,
          deadLetters: s.deadLetters,
          deadLetterBytes: s.deadLetterBytes,
          quarantined: s.quarantined,
          quarantinedBytes: s.quarantinedBytes,
        };
      },
      { retry: true },
    );
  }

  /** Every batch that cannot be read or decoded, and every batch quarantined earlier. Changes nothing. */
  async verify(decodeBody: (state: BatchState, body: Buffer) => Promise<void>): Promise<QuarantineEntry[]> {
    const problems = await this.batches.verify(decodeBody);
    const earlier = await this.quarantine.list();
    return [
      ...problems,
      ...earlier.map(({ id, reason }) => ({ key: id, reason: `quarantined earlier: ${reason}` })),
    ];
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  /** Count every store (quarantining unreadable batches) and find the highest indexed sequence. */
  private async readAll(): Promise<void> {
    await this.batches.recount({ quarantineUnreadable: true });
    await this.deadLetters.recount();
    await this.quarantine.recount();
    await this.seqIndex.load();
  }

  /** After a reopen: the stores open again, and everything counted is read from disk again. */
  private async reread(): Promise<void> {
    await reopenStores(this.stores);
    await this.readAll();
  }
}
