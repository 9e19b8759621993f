import { crc32 } from 'node:zlib';
import { createActor, type Actor } from 'xstate';
import { bufferMachine, type BufferEmitted, type SealTrigger } from '../../machines/buffer.js';
import { BatchBuilder, type SealedBatch } from './batch-builder.js';
import { encodeBody } from '../spool/batch-codec.js';
import { deferred, type Deferred } from '../util/deferred.js';
import { uuidv7 } from '../util/ids.js';
import type { EmitterEvents } from '../observe/events.js';
import type { Logger } from '../util/logger.js';
import type { Item } from '../model.js';
import type { BatchState, Spool, Written } from '../spool/spool.js';

/**
 * Intake: items enter the open batch (BatchBuilder), the buffer statechart decides when to seal,
 * and every sealed batch is written to the spool (synced) before its sources are acknowledged
 * and its adders' promises resolve (group commit). Intake pauses (backpressure) while the spool is
 * over its byte limit, while spool writes fail (e.g. ENOSPC), or while too many seals are pending.
 */

export interface Acknowledgeable {
  ack(): void;
  /** when the source published it, epoch ms (JetStream messages have it) */
  readonly publishedMs?: number;
  /** stream sequence (JetStream messages have it) */
  readonly seq?: number;
  /** the incarnation of the stream `seq` belongs to (JetStream messages have it) */
  readonly incarnation?: string;
}

export interface IntakeOptions {
  spool: Spool;
  logger: Logger;
  events: EmitterEvents;
  probeId: string;
  runId: string;
  maxItems: number;
  maxBytes: number;
  intervalMs: number;
  compression: 'gzip' | 'none';
  spoolMaxBytes: number;
  /** called once a batch is durable, to schedule its delivery */
  onDurable(state: BatchState): void;
}

export interface HeldSeq {
  batchId: string;
  /** resolves once that batch is durable in the spool */
  durable: Promise<void>;
}

/** The batch's stream sequences of one stream incarnation (a batch may straddle a re-bind). */
function seqsOf(batch: SealedBatch<Acknowledgeable>, incarnation: string): number[] {
  const seqs: number[] = [];
  for (const source of batch.sources)
    if (source.seq !== undefined && source.incarnation === incarnation) seqs.push(source.seq);
  return seqs;
}

export class IntakeClosedError extends Error {
  readonly code = 'INTAKE_CLOSED';
  constructor() {
    super('the emitter is closed: no more items are accepted');
    this.name = 'IntakeClosedError';
  }
}

/** Close gave up on writing a batch (the spool kept failing): its sources were not acknowledged. */
export class SpoolWriteAbandonedError extends Error {
  readonly code = 'SPOOL_WRITE_ABANDONED';
  constructor() {
    super('the emitter closed before this item could be written to the spool; it was not accepted');
    this.name = 'SpoolWriteAbandonedError';
  }
}

export class ItemTooLargeError extends Error {
  readonly code = 'ITEM_TOO_LARGE';
  constructor(bytes: number, limit: number) {
    super(`item of ${bytes} bytes can never fit a batch of TRANSMITTER_BATCH_MAX_BYTES=${limit}`);
    this.name = 'ItemTooLargeError';
  }
}

const MAX_PENDING_SEALS = 4;
const RESUME_FRACTION = 0.9;
const WRITE_RETRY_MS = 1000;

export type PauseReason = 'spool_replaced' | 'spool_full' | 'spool_write_failing' | 'seals_pending';

export class Intake {
  private readonly builder: BatchBuilder<Acknowledgeable>;
  private readonly buffer: Actor<typeof bufferMachine>;
  private readonly maxItemBytes: number;
  private durable: Deferred = deferred();
  /** bytes of the open batch's items (the builder holds the items themselves) */
  private openBytes = 0;
  private pendingSeals = new Set<Promise<void>>();
  private lastSeal: Promise<void> = Promise.resolve();
  private writeFailing = false;
  private resume?: Deferred;
  /** the pause reason last reported (a pause may change reason before it ends) */
  private pausedFor?: PauseReason;
  private closed = false;
  /** aborted by `abandonWrites`: batches still being written give up, unacknowledged */
  private readonly writes = new AbortController();
  private abandoned = { batches: 0, items: 0 };
  /**
   * batches sealed but not yet durable, with their stream sequences and the stream incarnation
   * those belong to (searched only for redeliveries)
   */
  private readonly sealing = new Set<{ held: HeldSeq; seqs: number[]; incarnation: string }>();
  /** highest stream sequence sealed of the bound incarnation: a message at or below it may already be spooled */
  private highestSealedSeq: number;
  /** the stream incarnation the spool's sequence index is bound to ('' before the first bind) */
  private incarnation = '';
  /** spool writes in progress: a re-bind waits for them, as they may still index old sequences */
  private readonly writing = new Set<Promise<unknown>>();

  constructor(private readonly options: IntakeOptions) {
    this.builder = new BatchBuilder(options.probeId, options.runId);
    this.highestSealedSeq = options.spool.highestIndexedSeq;
    this.maxItemBytes = options.maxBytes - this.builder.envelopeBytes();
    this.buffer = createActor(bufferMachine, {
      input: { intervalMs: options.intervalMs },
    });
    this.buffer.on('seal', (event) => this.seal(event));
    this.buffer.start();
  }

  get openItems(): number {
    return this.builder.size;
  }

  /** The buffer statechart's state with the open batch's fill, for /debug and stats. */
  bufferSnapshot() {
    const snapshot = this.buffer.getSnapshot();
    return {
      value: snapshot.value,
      status: snapshot.status,
      context: {
        count: this.builder.size,
        bytes: this.openBytes,
        maxItems: this.options.maxItems,
        maxItemBytes: this.maxItemBytes,
        intervalMs: this.options.intervalMs,
      },
    };
  }

  /** Why intake is paused, or undefined when it accepts items. */
  pauseReason(): PauseReason | undefined {
    if (this.options.spool.replaced !== undefined) return 'spool_replaced';
    if (this.writeFailing) return 'spool_write_failing';
    if (this.options.spool.usedBytes >= this.options.spoolMaxBytes) return 'spool_full';
    if (this.pendingSeals.size >= MAX_PENDING_SEALS) return 'seals_pending';
    return undefined;
  }

  /** Resolves at once when intake may go on, or when it may again (cheap when not paused). */
  whenAccepting(): Promise<void> | undefined {
    if (this.closed) return undefined;
    const reason = this.pauseReason();
    if (reason === undefined) return undefined;
    this.resume ??= deferred();
    this.notePause(reason);
    return this.resume.promise;
  }

  /**
   * Report a pause, or a change of its reason, once. Waiting for seals is the normal pace at full
   * speed (the disk syncs slower than NATS delivers), so only the spool's troubles are warnings.
   */
  private notePause(reason: PauseReason): void {
    if (reason === this.pausedFor) return;
    this.pausedFor = reason;
    this.options.events.emit('intake', { paused: true, reason });
    if (reason === 'seals_pending') this.options.logger.debug({ reason }, 'intake paused');
    else this.options.logger.warn({ reason }, 'intake paused');
  }

  /** On close: let paused callers go on (their offers are refused once the intake is closed). */
  releaseWaiters(): void {
    const r = this.resume;
    this.resume = undefined;
    this.pausedFor = undefined;
    r?.resolve();
  }

  /** Called when spool bytes shrink or a write completes. */
  recheck(): void {
    if (!this.resume) return;
    // hysteresis only for a full spool: resume below the low mark, not just under the limit
    const spoolStillFull =
      this.pausedFor === 'spool_full' &&
      this.options.spool.usedBytes >= this.options.spoolMaxBytes * RESUME_FRACTION;
    const reason = this.pauseReason();
    if (reason !== undefined) this.notePause(reason);
    if (reason === undefined && !spoolStillFull) {
      const r = this.resume;
      this.resume = undefined;
      r.resolve();
      const pausedFor = this.pausedFor;
      this.pausedFor = undefined;
      this.options.events.emit('intake', { paused: false });
      if (pausedFor === 'seals_pending') this.options.logger.debug('intake resumed');
      else this.options.logger.info({ pausedFor }, 'intake resumed');
    }
  }

  /**
   * Put one validated item into the open batch. The promise resolves when the batch holding it
   * is durable in the spool. Throws ItemTooLargeError for an item no batch can hold.
   */
  offer(item: Item, source?: Acknowledgeable, subject?: string): Promise<void> {
    if (this.closed) return Promise.reject(new IntakeClosedError());
    const measured = this.builder.measure(item);
    if (measured.bytes > this.maxItemBytes)
      throw new ItemTooLargeError(measured.bytes, this.options.maxBytes);
    if (measured.isNew && this.builder.size > 0 && this.openBytes + measured.bytes > this.maxItemBytes) {
      this.buffer.send({ type: 'LIMIT_REACHED', trigger: 'bytes' });
    }
    const holder = this.durable;
    if (this.builder.add(item, measured.json, source, subject)) {
      this.openBytes += measured.bytes;
      if (this.builder.size === 1) this.buffer.send({ type: 'FIRST_ITEM' });
      if (this.builder.size >= this.options.maxItems)
        this.buffer.send({ type: 'LIMIT_REACHED', trigger: 'size' });
    }
    return holder.promise;
  }

  /** Seal the open batch now; resolves when every batch sealed so far is durable. */
  async flush(): Promise<void> {
    this.buffer.send({ type: 'FLUSH' });
    await this.settled();
  }

  /** Seal what is open and accept nothing more. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.releaseWaiters();
      this.buffer.send({ type: 'SHUTDOWN' });
      this.buffer.stop();
    }
    await this.settled();
  }

  /**
   * Give up on every batch still being written (the spool keeps failing and close cannot wait):
   * their sources stay unacknowledged (JetStream redelivers them), their adders are rejected.
   * Resolves when they have all given up, with what was abandoned.
   */
  async abandonWrites(): Promise<{ batches: number; items: number }> {
    this.writes.abort();
    await this.settled();
    return { ...this.abandoned };
  }

  /** Resolves when every batch sealed so far is durable (or failed to become so). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.pendingSeals]);
    await this.lastSeal.catch(() => undefined);
  }

  private seal(event: BufferEmitted): void {
    const batch = this.builder.take(uuidv7(), new Date().toISOString());
    this.openBytes = 0;
    const holder = this.durable;
    this.durable = deferred();
    const incarnation = this.incarnation;
    const seqs = seqsOf(batch, incarnation);
    const work = this.persist(batch, seqs, incarnation, event.trigger).then(
      () => holder.resolve(),
      (error: unknown) => holder.reject(error),
    );
    this.pendingSeals.add(work);
    this.lastSeal = work;
    const entry = { held: { batchId: batch.id, durable: holder.promise }, seqs, incarnation };
    this.sealing.add(entry);
    for (const seq of seqs) if (seq > this.highestSealedSeq) this.highestSealedSeq = seq;
    void work.finally(() => {
      this.sealing.delete(entry);
      this.pendingSeals.delete(work);
      this.recheck();
    });
    this.options.logger.info(
      { batchId: batch.id, items: batch.itemCount, trigger: event.trigger },
      'batch sealed',
    );
  }

  /** Encode, write synced (retrying while the disk refuses), then acknowledge the sources. */
  private async persist(
    batch: SealedBatch<Acknowledgeable>,
    seqs: number[],
    incarnation: string,
    trigger: SealTrigger,
  ): Promise<void> {
    const encoding = this.options.compression === 'gzip' ? 'gzip' : 'identity';
    const body = await encodeBody(batch.body, encoding);
    const state: BatchState = {
      v: 1,
      id: batch.id,
      createdAt: batch.createdAt,
      itemCount: batch.itemCount,
      rawBytes: Buffer.byteLength(batch.body),
      storedBytes: body.length,
      encoding,
      subjects: batch.subjects,
      attempts: 0,
      crc32: crc32(body),
    };
    try {
      let written = await this.writeUntilDurable(state, body, seqs, incarnation);
      while (!this.options.spool.isSound(written)) {
        this.options.logger.warn(
          { batchId: state.id },
          'the spool handle failed after this batch was written; writing it again before acknowledging',
        );
        written = await this.writeUntilDurable(state, body, seqs, incarnation);
      }
    } catch (error) {
      if (error instanceof SpoolWriteAbandonedError) {
        this.abandoned.batches += 1;
        this.abandoned.items += batch.itemCount;
      }
      throw error;
    }
    this.acknowledge(batch);
    // sources arrive in stream order: the first is (nearly always) the oldest
    const oldestPublishedMs = batch.sources[0]?.publishedMs;
    this.options.events.emit('sealed', {
      batchId: state.id,
      trigger,
      items: state.itemCount,
      rawBytes: state.rawBytes,
      storedBytes: state.storedBytes,
      oldestPublishedMs,
    });
    this.options.onDurable(state);
  }

  /**
   * The batch is durable whatever happens to its acks: one that fails (a closed connection) only
   * means JetStream redelivers that message, which the sequence index then recognises.
   */
  private acknowledge(batch: SealedBatch<Acknowledgeable>): void {
    let failed = 0;
    for (const source of batch.sources) {
      try {
        source.ack();
      } catch {
        failed += 1;
      }
    }
    if (failed > 0)
      this.options.logger.warn({ batchId: batch.id, failed }, 'acks not sent; JetStream will redeliver');
  }

  /**
   * Bind the sequence index to a stream incarnation (on start and whenever the source binds
   * again). On a change, sequences of the old incarnation must never meet those of the new one:
   * batches of the old one still being written go on without indexing their sequences, the
   * writes already under way are waited for, then the index is cleared. The source hands over
   * no message of the new incarnation before this resolves.
   */
  async rebind(incarnation: string): Promise<void> {
    if (incarnation === this.incarnation) return;
    this.incarnation = incarnation;
    await Promise.allSettled([...this.writing]);
    await this.options.spool.bindSeqIndex(incarnation);
    this.highestSealedSeq = this.options.spool.highestIndexedSeq;
  }

  /** Whether a message with this sequence may already be in a sealed batch (cheap: one comparison). */
  maySpooled(seq: number): boolean {
    return seq <= this.highestSealedSeq;
  }

  /**
   * The batch already holding this stream sequence, with a promise of its durability: a batch
   * still being written (e.g. while the disk is full) is not durable yet, so its messages must not
   * be acknowledged until it is.
   */
  async findSeq(seq: number, incarnation: string): Promise<HeldSeq | undefined> {
    if (incarnation !== this.incarnation) return undefined;
    for (const entry of this.sealing)
      if (entry.incarnation === incarnation && entry.seqs.includes(seq)) return entry.held;
    // the index of a spool deleted under us vouches for nothing on disk: take the message again
    if (this.options.spool.replaced !== undefined) return undefined;
    const batchId = await this.options.spool.batchOfSeq(seq);
    if (incarnation !== this.incarnation) return undefined;
    return batchId === undefined ? undefined : { batchId, durable: Promise.resolve() };
  }

  /** Write until a write succeeds (retrying while the disk refuses) or close abandons it. */
  private async writeUntilDurable(
    state: BatchState,
    body: Buffer,
    seqs: number[],
    incarnation: string,
  ): Promise<Written> {
    const abandon = this.writes.signal;
    for (;;) {
      if (abandon.aborted) throw new SpoolWriteAbandonedError();
      try {
        // the index is bound to one incarnation: sequences of another one are not written into it
        const write = this.options.spool.put(state, body, incarnation === this.incarnation ? seqs : []);
        this.writing.add(write);
        const written = await untilAborted(
          write.finally(() => this.writing.delete(write)),
          abandon,
        );
        if (this.writeFailing) this.options.logger.info('spool writes succeed again; intake resumes');
        this.writeFailing = false;
        return written;
      } catch (error) {
        if (abandon.aborted) throw new SpoolWriteAbandonedError();
        if (!this.writeFailing) {
          this.options.logger.error(
            { err: (error as Error).message, batchId: state.id },
            'spool write failed; intake paused',
          );
        }
        this.writeFailing = true;
        this.recheck();
        await untilAborted(new Promise((r) => setTimeout(r, WRITE_RETRY_MS)), abandon).catch(() => undefined);
      }
    }
  }
}

/** `work`, or a rejection as soon as `signal` aborts (the work itself goes on unobserved). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new SpoolWriteAbandonedError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new SpoolWriteAbandonedError());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error as Error);
      },
    );
  });
}
