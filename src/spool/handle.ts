import { AsyncLocalStorage } from 'node:async_hooks';
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Level } from 'level';
import type { Logger } from '../util/logger.js';
import { LogWatch } from './log-watch.js';
import { ManifestWatch, missingManifest } from './manifest-watch.js';

/**
 * The one LevelDB handle of a spool directory in this process, and the rules for trusting it.
 * LevelDB goes on appending to its log after a failed write (ENOSPC, EIO, EMFILE) and recovery
 * later drops what was appended, and a background (compaction) error fails every later write.
 * So any failed operation marks the handle's generation failed and schedules a reopen (close
 * fully, open again, let the spool re-read and verify what it holds); a write counts only when it
 * was made on a generation that has not failed since (`isSound`). The directory's identity
 * (device, inode, `CURRENT` and the manifest it names present) is recorded at open: a spool
 * deleted or replaced under the running process is never reopened, recreated or trusted again.
 * It never knows what the stores hold: the spool's modules do.
 */

export type SpoolErrorCode =
  | 'SPOOL_OPEN'
  | 'SPOOL_CLOSED'
  | 'SPOOL_NOT_FOUND'
  | 'SPOOL_WRITE'
  | 'SPOOL_LOCKED'
  | 'SPOOL_REPLACED'
  | 'SPOOL_DAMAGED';

export class SpoolError extends Error {
  constructor(
    readonly code: SpoolErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SpoolError';
  }
}

export type Db = Level<string, string | Buffer>;

/** A write made on one handle generation: trusted only while `isSound` says so. */
export interface Written {
  readonly generation: number;
}

interface DirIdentity {
  dev: number;
  ino: number;
}

const REOPEN_RETRY_MS = 1000;
const REOPEN_LOG_EVERY = 30;
const IDENTITY_CHECK_MS = 5000;

/** Set while a reopen's re-read runs: its own operations must not wait for the reopen they are part of. */
const rereading = new AsyncLocalStorage<true>();

/** Spool directories held open by this process: a second LevelDB open of one would release its lock. */
const heldDirs = new Set<string>();

/** LevelDB found bytes on disk that do not parse or fail their checksum (bit rot, a file overwritten). */
export function isCorruption(error: unknown): boolean {
  const e = error as { code?: string; cause?: { code?: string } } | undefined;
  return e?.code === 'LEVEL_CORRUPTION' || e?.cause?.code === 'LEVEL_CORRUPTION';
}

function errorText(error: unknown): string {
  const e = error as { message?: string; cause?: { message?: string } };
  return [e.message, e.cause?.message].filter(Boolean).join(': ') || String(error);
}

function openError(dir: string, error: unknown): SpoolError {
  return new SpoolError('SPOOL_OPEN', `cannot open spool at ${dir}: ${errorText(error)}`, { cause: error });
}

/** LevelDB's data files: tables, write-ahead logs, manifests (not its LOG, LOCK or CURRENT). */
const DATA_FILE = /^(\d+\.(ldb|sst|log)|MANIFEST-\d+)$/;

/**
 * Without CURRENT, LevelDB takes a directory for empty: createIfMissing would start a new database
 * and delete every data file of the old one as obsolete, spooled batches with them.
 */
export async function lostItsCurrentFile(dir: string): Promise<boolean> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return !names.includes('CURRENT') && names.some((name) => DATA_FILE.test(name));
}

/**
 * LevelDB refuses to open when a file its manifest lists is missing or unreadable (a table file
 * deleted by hand, a disk that lost blocks): nothing is read until the operator repairs it.
 */
export function damagedError(dir: string, error: unknown): SpoolError {
  return new SpoolError(
    'SPOOL_DAMAGED',
    `spool ${dir} is damaged: ${errorText(error)}; stop every emitter on it and run ` +
      '`batch-emitter spool repair` (a dry run; --yes to repair)',
    { cause: error },
  );
}

/**
 * Open the LevelDB database of `dir`; a lock held elsewhere is SPOOL_LOCKED, damage SPOOL_DAMAGED.
 * A spool that lost CURRENT is still opened (never created): LevelDB takes its lock before it
 * looks for CURRENT, so one a running emitter holds is SPOOL_LOCKED, not damaged (a repair then
 * would rewrite the files under that emitter, which deletes the repaired ones as obsolete).
 */
async function openLevel(dir: string, createIfMissing: boolean): Promise<Db> {
  const lostCurrent = await lostItsCurrentFile(dir);
  const db: Db = new Level<string, string | Buffer>(dir, {
    valueEncoding: 'utf8',
    createIfMissing: createIfMissing && !lostCurrent,
  });
  try {
    await db.open();
    return db;
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED') {
      throw new SpoolError('SPOOL_LOCKED', `spool ${dir} is locked by another process`, { cause: error });
    }
    if (lostCurrent) {
      throw damagedError(dir, new Error('its CURRENT file is missing while its data files remain'));
    }
    const manifest = await missingManifest(dir);
    if (manifest !== undefined) {
      throw damagedError(dir, new Error(`the manifest its CURRENT file names (${manifest}) is missing`));
    }
    if (isCorruption(error)) throw damagedError(dir, error);
    throw openError(dir, error);
  }
}

export interface SpoolHandleOptions {
  /** create the directory's database when missing (the emitter) or refuse (operator commands) */
  createIfMissing: boolean;
  logger?: Logger;
  /** after every reopen, before any other operation: re-read and verify what the spool holds */
  afterReopen?: () => Promise<void>;
  /** told after each successful reopen (e.g. to rescan what failed to start meanwhile) */
  onReopened?: () => void;
}

export class SpoolHandle {
  private gen = 1;
  private failedGen = 0;
  private reopening?: Promise<void>;
  private retryTimer?: NodeJS.Timeout;
  private identityTimer?: NodeJS.Timeout;
  private replacedWhy?: string;
  /** set once LevelDB reported corruption: see markDamaged */
  private damagedWhy?: string;
  private closing = false;
  private healing?: Promise<void>;
  private readonly logs = new LogWatch();
  private readonly manifests: ManifestWatch;
  /** the inode of the LOCK file LevelDB locked at the last open */
  private lockIno?: number;
  private reopenCount = 0;
  /** the identity check running for writes, and the one the writes that came during it wait for */
  private checking?: Promise<string | undefined>;
  private nextCheck?: Promise<string | undefined>;
  private failedReopens = 0;
  afterReopen?: () => Promise<void>;
  /** told after each successful reopen (e.g. to rescan what failed to start meanwhile) */
  onReopened?: () => void;

  private constructor(
    readonly dir: string,
    readonly db: Db,
    private readonly key: string,
    private readonly identity: DirIdentity,
    private readonly logger: Logger | undefined,
  ) {
    this.manifests = new ManifestWatch(dir);
  }

  /** Open the directory's database; SPOOL_LOCKED when this or another process holds it. */
  static async open(dir: string, options: SpoolHandleOptions): Promise<SpoolHandle> {
    const key = resolve(dir);
    if (heldDirs.has(key)) {
      throw new SpoolError('SPOOL_LOCKED', `spool ${dir} is already open in this process`);
    }
    heldDirs.add(key);
    try {
      const s = await stat(dir).catch((error: unknown) => {
        throw openError(dir, error);
      });
      const db = await openLevel(dir, options.createIfMissing);
      const handle = new SpoolHandle(dir, db, key, { dev: s.dev, ino: s.ino }, options.logger);
      handle.afterReopen = options.afterReopen;
      await handle.noteLock();
      return handle;
    } catch (error) {
      heldDirs.delete(key);
      throw error;
    }
  }

  /** Increases at every reopen. */
  get generation(): number {
    return this.gen;
  }

  get reopens(): number {
    return this.reopenCount;
  }

  get isOpen(): boolean {
    return this.db.status === 'open';
  }

  /** Why the spool is not to be trusted any more (deleted, replaced, `CURRENT` gone, damaged on disk), if so. */
  get replaced(): string | undefined {
    return this.replacedWhy ?? this.damagedWhy;
  }

  /** Whether a write made on `written`'s generation may be trusted now (checked right before acking). */
  isSound(written: Written): boolean {
    return (
      written.generation === this.gen &&
      this.failedGen !== this.gen &&
      this.replacedWhy === undefined &&
      this.damagedWhy === undefined &&
      this.reopening === undefined &&
      this.isOpen
    );
  }

  /** Watch the directory's identity every few seconds, so /ready tells even while nothing is written. */
  watchIdentity(): void {
    if (this.identityTimer || this.closing) return;
    this.identityTimer = setInterval(
      () => void this.checkIdentity().catch(() => undefined),
      IDENTITY_CHECK_MS,
    );
    this.identityTimer.unref();
  }

  /**
   * Run one database operation on a usable handle: every method of the spool's modules wraps its
   * work in this call (waiting for a reopen in progress). `strict` operations (writes that lead
   * to an acknowledgement) are refused once the directory was replaced; others (reads, deletes of
   * delivered batches) go on with the open handle, which is all that is left of the old spool.
   * A failure marks this generation failed and schedules a reopen; `retry` runs the operation
   * once more on the reopened handle (every module method but `Batches.put`, whose writer decides).
   */
  async run<T>(op: () => Promise<T>, opts: { strict?: boolean; retry?: boolean } = {}): Promise<T> {
    await this.usable(opts.strict ?? false);
    const gen = this.gen;
    try {
      return await op();
    } catch (error) {
      this.fail(gen, error);
      if (!opts.retry || this.closing) throw error;
      await this.usable(opts.strict ?? false);
      const again = this.gen;
      try {
        return await op();
      } catch (second) {
        this.fail(again, second);
        throw second;
      }
    }
  }

  /** Mark `gen` failed (once) and schedule a reopen; corruption on disk is not helped by one. */
  fail(gen: number, error: unknown): void {
    if (this.closing || gen !== this.gen || this.failedGen === gen) return;
    this.failedGen = gen;
    if (isCorruption(error)) return this.markDamaged(error);
    this.logger?.error(
      { dir: this.dir, generation: gen, err: errorText(error) },
      'spool operation failed; reopening the spool before trusting another write',
    );
    this.scheduleReopen(0);
  }

  /**
   * LevelDB reports corruption (a damaged table block): a reopen reads no table, so it succeeds and
   * the next read or compaction fails again, for ever; meanwhile delivered batches could not be
   * deleted and went out again. The handle stops instead: every operation is refused (nothing more
   * is acknowledged or sent; intake pauses; /ready says why) until the operator repairs the spool
   * and restarts the emitter.
   */
  private markDamaged(error: unknown): void {
    if (this.damagedWhy !== undefined) return;
    this.damagedWhy =
      `${this.dir} is damaged on disk (${errorText(error)}); ` +
      'stop the emitter and run `batch-emitter spool repair --yes`';
    this.logger?.error(
      { dir: this.dir, err: errorText(error) },
      'spool damaged on disk: nothing more is acknowledged or sent (messages stay in the stream), ' +
        'intake is paused; its other records are still there: stop the emitter and run ' +
        '`batch-emitter spool repair --yes`',
    );
  }

  /**
   * Stat the directory and its `CURRENT` file: undefined when it is still the one opened.
   * Records (and logs once) a replacement; a directory put back in place clears it.
   */
  async checkIdentity(): Promise<string | undefined> {
    await this.checkLock();
    const found = await this.identityProblem();
    const why = found.why ?? (await this.logProblem(found.names));
    if (why === undefined) {
      if (this.replacedWhy !== undefined) {
        this.logger?.warn({ dir: this.dir }, 'spool directory is back in place');
        this.replacedWhy = undefined;
      }
      return undefined;
    }
    if (this.replacedWhy === undefined) {
      this.logger?.error(
        { dir: this.dir, why },
        'spool directory was deleted or replaced under the running emitter: nothing more is ' +
          'acknowledged (messages stay in the stream), intake is paused; ' +
          (found.repairable === true
            ? 'its data files are still there: stop the emitter and run `batch-emitter spool repair --yes`'
            : 'batches already acknowledged into it and not yet delivered are gone with it; restart to start a fresh spool'),
      );
    }
    this.replacedWhy = why;
    return why;
  }

  private async noteLock(): Promise<void> {
    this.lockIno = (await stat(join(this.dir, 'LOCK')).catch(() => undefined))?.ino;
  }

  /**
   * LevelDB's lock is held on the LOCK file's inode: once that file is deleted or replaced (a
   * "stale lock" clean-up), a second emitter opens the spool too, recovers the log this one still
   * writes to and deletes it, and each deletes the other's files as obsolete. Reopening takes the
   * lock again (or fails, and goes on failing, while another process holds it); until then no
   * write on this generation is trusted.
   */
  private async checkLock(): Promise<void> {
    if (this.closing || this.reopening !== undefined || !this.isOpen || this.lockIno === undefined) return;
    const gen = this.gen;
    const now = await stat(join(this.dir, 'LOCK')).catch(() => undefined);
    if (now?.ino === this.lockIno || gen !== this.gen) return;
    this.fail(gen, new Error(`${join(this.dir, 'LOCK')} was deleted or replaced under the running emitter`));
  }

  /**
   * `checkIdentity` for a write that has just completed: a check already running may have looked
   * before that write, so every caller arriving meanwhile shares the next one, started once it
   * ends. Each caller's answer comes from a check started after its call; concurrent writes
   * share one check instead of one each.
   */
  confirmIdentity(): Promise<string | undefined> {
    if (this.checking === undefined) return this.startCheck();
    this.nextCheck ??= this.checking.then(
      () => this.startNextCheck(),
      () => this.startNextCheck(),
    );
    return this.nextCheck;
  }

  private startNextCheck(): Promise<string | undefined> {
    this.nextCheck = undefined;
    return this.startCheck();
  }

  private startCheck(): Promise<string | undefined> {
    const check: Promise<string | undefined> = this.checkIdentity().finally(() => {
      if (this.checking === check) this.checking = undefined;
    });
    this.checking = check;
    return check;
  }

  /**
   * The directory's device and inode, then one listing (`CURRENT` in it, its names for the log
   * check), then the manifest `CURRENT` names; `repairable`: the data files are still there.
   */
  private async identityProblem(): Promise<{ why?: string; repairable?: boolean; names?: string[] }> {
    const now = await stat(this.dir).catch(() => undefined);
    if (!now) return { why: `${this.dir} no longer exists`, repairable: false };
    if (now.dev !== this.identity.dev || now.ino !== this.identity.ino) {
      return {
        why: `${this.dir} is another directory (device ${now.dev} inode ${now.ino}, opened as device ${this.identity.dev} inode ${this.identity.ino})`,
        repairable: false,
      };
    }
    const entries = await readdir(this.dir, { withFileTypes: true }).catch(() => undefined);
    const current = entries?.find((entry) => entry.name === 'CURRENT');
    if (!(await this.isFile(current)))
      return { why: `${join(this.dir, 'CURRENT')} is missing`, repairable: true };
    const manifest = await this.manifests.missing();
    // a reopen switches CURRENT to a new manifest, then deletes the old one: look twice
    if (manifest !== undefined && (await this.manifests.missing()) === manifest) {
      return {
        why: `${join(this.dir, manifest)} (the index of the spool's files) is missing`,
        repairable: true,
      };
    }
    return { names: entries?.map((entry) => entry.name) };
  }

  /** A listed `CURRENT` that is not plainly a file (a link, a file system without types) is looked at. */
  private async isFile(entry: Dirent | undefined): Promise<boolean> {
    if (entry?.isFile()) return true;
    const current = await stat(join(this.dir, 'CURRENT')).catch(() => undefined);
    return current?.isFile() ?? false;
  }

  /**
   * LevelDB appends every write to its one live log (`NNNNNN.log`) through an open descriptor: a
   * deleted log (a clean-up of `*.log` files) goes on accepting synced writes into an unlinked
   * file, and a restart then silently drops everything not yet in a table file. When no log is
   * left in the directory, flush the memory table to a table file (LevelDB starts a new log for
   * it), so what was acknowledged is durable again; only when that fails is the spool distrusted.
   */
  private logProblem(names?: readonly string[]): Promise<string | undefined> {
    if (this.closing || this.reopening !== undefined || !this.isOpen) return Promise.resolve(undefined);
    // a caller that joins a heal already running looks again afterwards (that heal's first look
    // may predate this caller's write); the caller that starts one has its answer from it
    if (this.healing) return this.healing.then(() => this.missingLog());
    const own = this.healDeletedLog(names);
    const healing: Promise<void> = own.then(
      () => undefined,
      () => undefined,
    );
    this.healing = healing;
    void healing.then(() => {
      if (this.healing === healing) this.healing = undefined;
    });
    return own;
  }

  /** `listed`: the directory's names as just listed (a first look), or undefined to list it now. */
  private async missingLog(listed?: readonly string[]): Promise<string | undefined> {
    const names = listed ?? (await readdir(this.dir).catch(() => undefined));
    if (names === undefined) return undefined;
    const logs = names.filter((name) => /^\d+\.log$/.test(name)).map((name) => join(this.dir, name));
    this.logs.keepOnly(logs);
    if (logs.length === 0) return `the write-ahead log of ${this.dir} was deleted and could not be replaced`;
    for (const path of logs) {
      if (await this.logs.truncated(path))
        return `the write-ahead log ${path} was truncated and could not be replaced`;
    }
    return undefined;
  }

  /** One look at the logs (every sealed batch pays it); only a problem found costs a heal and a second look. */
  private async healDeletedLog(names?: readonly string[]): Promise<string | undefined> {
    if ((await this.missingLog(names)) === undefined) return undefined;
    this.logger?.error(
      { dir: this.dir },
      "the spool's write-ahead log was deleted or truncated under the running emitter; writing what it held to a table file",
    );
    await this.logs.forget();
    try {
      // in Node `level` is classic-level, whose compactRange first flushes the memory table
      const db = this.db as unknown as { compactRange(start: string, end: string): Promise<void> };
      await db.compactRange('\u0000', '\uffff');
    } catch (error) {
      this.fail(this.gen, error);
    }
    return this.missingLog();
  }

  private async usable(strict: boolean): Promise<void> {
    if (this.closing) throw new SpoolError('SPOOL_CLOSED', `spool ${this.dir} is closed`);
    if (this.damagedWhy !== undefined) throw new SpoolError('SPOOL_DAMAGED', this.damagedWhy);
    if (strict && this.replacedWhy !== undefined && (await this.checkIdentity()) !== undefined) {
      throw new SpoolError('SPOOL_REPLACED', `spool directory replaced: ${this.replacedWhy}`);
    }
    if (this.reopening) {
      if (!rereading.getStore()) await this.reopening;
    } else if (this.failedGen === this.gen || !this.isOpen) await this.reopen();
  }

  private scheduleReopen(ms: number): void {
    // a damaged spool is not helped by reopening (see markDamaged)
    if (this.closing || this.retryTimer || this.damagedWhy !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.failedGen === this.gen || !this.isOpen) void this.reopen().catch(() => undefined);
    }, ms);
    this.retryTimer.unref();
  }

  /** Close fully, then open again (never creating the database); retried until it works. */
  private reopen(): Promise<void> {
    this.reopening ??= this.reopenOnce().finally(() => {
      this.reopening = undefined;
    });
    return this.reopening;
  }

  private async reopenOnce(): Promise<void> {
    if (this.closing) throw new SpoolError('SPOOL_CLOSED', `spool ${this.dir} is closed`);
    const why = await this.checkIdentity();
    if (why !== undefined) throw new SpoolError('SPOOL_REPLACED', `spool directory replaced: ${why}`);
    await this.db.close().catch(() => undefined);
    try {
      if (this.isOpen) throw new Error('the old handle did not close');
      await this.db.open({ createIfMissing: false });
      await this.noteLock();
      this.gen += 1;
      const reread = this.afterReopen;
      if (reread) await rereading.run(true, reread);
    } catch (error) {
      this.failedGen = this.gen;
      // the open or the re-read met a damaged table: stop here instead of retrying every second
      if (isCorruption(error)) this.markDamaged(error);
      this.scheduleReopen(REOPEN_RETRY_MS);
      // retried every second while e.g. the disk stays full: say so at first, then twice a minute
      if (this.failedReopens++ % REOPEN_LOG_EVERY === 0) {
        this.logger?.warn(
          { dir: this.dir, err: errorText(error), attempts: this.failedReopens },
          'cannot reopen the spool yet; retrying every second',
        );
      }
      throw new SpoolError('SPOOL_OPEN', `cannot reopen spool at ${this.dir}: ${errorText(error)}`, {
        cause: error,
      });
    }
    this.reopenCount += 1;
    this.failedReopens = 0;
    this.logger?.warn({ dir: this.dir, generation: this.gen }, 'spool reopened and re-read');
    this.onReopened?.();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    // LevelDB does not flush its memory table at close: a log deleted or truncated since the last
    // look would take what was acknowledged with it at the next start; one more look heals it
    await this.checkIdentity().catch(() => undefined);
    if (this.closing) return;
    this.closing = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.identityTimer) clearInterval(this.identityTimer);
    await this.reopening?.catch(() => undefined);
    await this.logs.close();
    try {
      await this.db.close();
    } finally {
      heldDirs.delete(this.key);
    }
  }
}
