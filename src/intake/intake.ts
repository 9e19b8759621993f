import { setMaxListeners } from 'node:events';
import { crc32 } from 'node:zlib';
import { createActor, type Actor } from 'xstate';
import { bufferMachine, type BufferEmitted, type SealTrigger } from '../../machines/buffer.js';
import { BatchBuilder, jsonBytes, maxJsonBytes, type SealedBatch } from './batch-builder.js';
import { encodeBody } from '../spool/batch-codec.js';
import { deferred, type Deferred } from '../util/deferred.js';
import { uuidv7 } from '../util/ids.js';
import type { EmitterEvents } from '../observe/events.js';
import type { InspectionObserver } from '../observe/inspect/index.js';
import type { Logger } from '../util/logger.js';
import type { Item } from '../model.js';
import { seqRanges, type BatchState, type Spool, type Written } from '../spool/spool.js';

/**
 * Intake: owns the open batch (BatchBuilder), the buffer statechart that decides when to seal, and
 * writing every sealed batch to the spool (synced) before its sources are acknowledged and its
 * adders' promises resolve (group commit). It never acknowledges a source before its batch is
 * durable, and never decodes or delivers. Intake pauses (backpressure) while the spool is over its
 * byte limit, while spool writes fail (e.g. ENOSPC), or while too many seals are pending.
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
  /** gzip level of the stored bodies (default 1) */
  gzipLevel?: number;
  spoolMaxBytes: number;
  /**
   * Called once a batch is durable, to schedule its delivery; `durable` is what was written and the
   * write that made it so, for a first attempt that need not read the batch back.
   */
  onDurable(state: BatchState, durable: DurableWrite): void;
  /**
   * Called before a sealed batch is first written: until `onDurable` or `onWriteGivenUp` names it,
   * its delivery is left to this intake (a scan of the spool must not start it meanwhile).
   */
  onWriting?(batchId: string): void;
  /** Called when a batch announced by `onWriting` will not reach `onDurable` (its write was given up). */
  onWriteGivenUp?(batchId: string): void;
  /** keeps the stream sequences of sealed batches for redeliveries (default: none are indexed) */
  seqTracker?: SeqTracker;
  /** streams the buffer statechart to a Stately inspector (TRANSMITTER_INSPECT) */
  inspect?: InspectionObserver;
}

/** A durable batch's body and the write that made it durable (trusted while `handle.isSound(written)`). */
export interface DurableWrite {
  body: Buffer;
  written: Written;
}

/** The stream sequences of one sealed batch, as the tracker keeps them. */
export interface SealedSeqs {
  readonly seqs: readonly number[];
  /** the stream incarnation `seqs` belong to */
  readonly incarnation: string;
  /** when the newest of their messages was stored in the stream, epoch ms */
  readonly newestMs?: number;
}

/** Where the sequences of sealed batches are kept (the ingress's redelivery index). */
export interface SeqTracker {
  /** a batch holding `sources` is being sealed; `durable` settles once it is written or given up */
  sealing(batchId: string, sources: readonly Acknowledgeable[], durable: Promise<void>): SealedSeqs;
  /** one spool write of that batch, handed the sequences it may index now */
  write<T>(batch: SealedSeqs, put: (seqs: readonly number[], newestMs?: number) => Promise<T>): Promise<T>;
}

const UNINDEXED: SeqTracker = {
  sealing: () => ({ seqs: [], incarnation: '' }),
  write: (_batch, put) => put([]),
};

/** What the intake reports for /ready, /api/v1/stats and /metrics. */
export interface IntakeStatus {
  /** why intake is paused (backpressure), undefined while it accepts items */
  paused?: PauseReason;
  /** items in the open (unsealed) batch */
  openItems: number;
  /** TRANSMITTER_BATCH_SIZE */
  maxItems: number;
  /** serialised bytes of the open batch's items */
  openBytes: number;
  /** bytes available to the items of one batch (TRANSMITTER_BATCH_MAX_BYTES less the envelope) */
  bodyBudgetBytes: number;
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

/** seals (encode + synced write) under way at once before intake pauses */
export const MAX_PENDING_SEALS = 4;
const RESUME_FRACTION = 0.9;
const WRITE_RETRY_MS = 1000;

export type PauseReason = 'spool_replaced' | 'spool_full' | 'spool_write_failing' | 'seals_pending';

export class Intake {
  private readonly builder: BatchBuilder<Acknowledgeable>;
  private readonly buffer: Actor<typeof bufferMachine>;
  /** bytes available to the items of one batch: TRANSMITTER_BATCH_MAX_BYTES less the envelope */
  private readonly bodyBudgetBytes: number;
  private readonly seqTracker: SeqTracker;
  private durable: Deferred = deferred();
  /** bytes of the open batch's items (the builder holds the items themselves) */
  private openBytes = 0;
  /** when the open batch got its first item (epoch ms) */
  private openedAtMs?: number;
  /** the stream incarnation of the open batch's sequences (it dedups events by sequence) */
  private openIncarnation?: string;
  private pendingSeals = new Set<Promise<void>>();
  /**
   * uncompressed bytes of the batches sealed but not yet in the spool: they count toward the
   * spool's limit, or every seal started before a pause would land past it
   */
  private pendingSealBytes = 0;
  private lastSeal: Promise<void> = Promise.resolve();
  private writeFailing = false;
  private resume?: Deferred;
  /** the pause reason last reported (a pause may change reason before it ends) */
  private pausedFor?: PauseReason;
  private closed = false;
  /** aborted by `abandonWrites`: batches still being written give up, unacknowledged */
  private readonly writes = abandonableWrites();
  private abandoned = { batches: 0, items: 0 };

  constructor(private readonly options: IntakeOptions) {
    this.builder = new BatchBuilder(options.probeId, options.runId);
    this.bodyBudgetBytes = options.maxBytes - this.builder.envelopeBytes();
    this.seqTracker = options.seqTracker ?? UNINDEXED;
    this.buffer = createActor(bufferMachine, {
      input: { intervalMs: options.intervalMs },
      ...(options.inspect ? { inspect: options.inspect } : {}),
    });
    this.buffer.on('seal', (event) => this.seal(event));
    this.buffer.start();
  }

  get openItems(): number {
    return this.builder.size;
  }

  status(): IntakeStatus {
    return {
      paused: this.currentPause(),
      openItems: this.builder.size,
      maxItems: this.options.maxItems,
      openBytes: this.openBytes,
      bodyBudgetBytes: this.bodyBudgetBytes,
    };
  }

  /** The buffer statechart's state with the open batch's fill, for /debug/machines. */
  bufferSnapshot() {
    const snapshot = this.buffer.getSnapshot();
    return {
      value: snapshot.value,
      status: snapshot.status,
      context: {
        count: this.builder.size,
        bytes: this.openBytes,
        maxItems: this.options.maxItems,
        // the bytes all items of one batch may take (the body less its envelope)
        maxBatchBytes: this.bodyBudgetBytes,
        intervalMs: this.options.intervalMs,
      },
    };
  }

  /** Why intake is paused, or undefined when it accepts items. */
  pauseReason(): PauseReason | undefined {
    if (this.options.spool.handle.replaced !== undefined) return 'spool_replaced';
    if (this.writeFailing) return 'spool_write_failing';
    if (this.spoolBytes() >= this.options.spoolMaxBytes) return 'spool_full';
    if (this.pendingSeals.size >= MAX_PENDING_SEALS) return 'seals_pending';
    return undefined;
  }

  /**
   * Why intake is paused as callers see it: a pause for a full spool lasts until the spool is back
   * below its low mark, while `pauseReason` already reads clear just under the limit.
   */
  private currentPause(): PauseReason | undefined {
    return this.resume !== undefined ? (this.pausedFor ?? this.pauseReason()) : this.pauseReason();
  }

  /** What the spool holds plus what is on its way there. */
  private spoolBytes(): number {
    return this.options.spool.usage.usedBytes + this.pendingSealBytes;
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
      this.pausedFor === 'spool_full' && this.spoolBytes() >= this.options.spoolMaxBytes * RESUME_FRACTION;
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
    // a re-created stream numbers from 1 again: its sequences must not meet the old ones in a batch
    const incarnation = source?.incarnation;
    if (incarnation !== undefined && this.openIncarnation !== incarnation) {
      if (this.openIncarnation !== undefined && this.builder.size > 0) this.buffer.send({ type: 'FLUSH' });
      this.openIncarnation = incarnation;
    }
    const json = this.builder.jsonOf(item);
    // UTF-8 takes at most 3 bytes per UTF-16 unit: an item that fits even so is counted as it is
    // written (counting each item's bytes first was a scan of its text per item)
    const room = this.bodyBudgetBytes - this.openBytes;
    if (maxJsonBytes(json) + 1 > room && !this.builder.has(item)) {
      const bytes = jsonBytes(json) + 1;
      if (bytes > this.bodyBudgetBytes) throw new ItemTooLargeError(bytes, this.options.maxBytes);
      if (this.builder.size > 0 && bytes > room)
        this.buffer.send({ type: 'LIMIT_REACHED', trigger: 'bytes' });
    }
    const holder = this.durable;
    const added = this.builder.add(item, json, source, subject);
    if (added > 0) {
      this.openBytes += added;
      if (this.builder.size === 1) {
        this.openedAtMs = Date.now();
        this.buffer.send({ type: 'FIRST_ITEM' });
      }
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
    const openedAtMs = this.openedAtMs;
    this.openIncarnation = undefined;
    const sealedBytes = this.openBytes;
    this.pendingSealBytes += sealedBytes;
    this.openBytes = 0;
    const holder = this.durable;
    this.durable = deferred();
    const seqs = this.seqTracker.sealing(batch.id, batch.sources, holder.promise);
    const work = this.persist(batch, seqs, { trigger: event.trigger, openedAtMs }).then(
      () => holder.resolve(),
      (error: unknown) => holder.reject(error),
    );
    this.pendingSeals.add(work);
    this.lastSeal = work;
    void work.finally(() => {
      this.pendingSeals.delete(work);
      this.pendingSealBytes -= sealedBytes;
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
    seqs: SealedSeqs,
    seal: SealFacts,
  ): Promise<void> {
    const encoding = this.options.compression === 'gzip' ? 'gzip' : 'identity';
    const body = await encodeBody(batch.body, encoding, this.options.gzipLevel);
    const state = batchRecord(batch, body, encoding, seal);
    this.options.onWriting?.(state.id);
    let written: Written;
    try {
      written = await this.writeSound(state, body, seqs);
    } catch (error) {
      this.options.onWriteGivenUp?.(state.id);
      if (error instanceof SpoolWriteAbandonedError) {
        this.abandoned.batches += 1;
        this.abandoned.items += batch.itemCount;
      }
      throw error;
    }
    try {
      this.announceDurable(batch, state, seqs, seal);
    } finally {
      this.options.onDurable(state, { body, written });
    }
  }

  /** Acknowledge the sources of a durable batch and report it sealed. */
  private announceDurable(
    batch: SealedBatch<Acknowledgeable>,
    state: BatchState,
    seqs: SealedSeqs,
    seal: SealFacts,
  ): void {
    this.acknowledge(batch);
    // sources arrive in stream order: the first is (nearly always) the oldest
    const oldestPublishedMs = batch.sources[0]?.publishedMs;
    this.options.events.emit('sealed', {
      batchId: state.id,
      trigger: seal.trigger,
      items: state.itemCount,
      rawBytes: state.rawBytes,
      storedBytes: state.storedBytes,
      oldestPublishedMs,
      openedAtMs: seal.openedAtMs,
      seqRanges: seqRanges(seqs.seqs),
      subjects: state.subjects,
    });
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

  /** Write until a write lands on a handle that has not failed since (only then may sources be acked). */
  private async writeSound(state: BatchState, body: Buffer, seqs: SealedSeqs): Promise<Written> {
    let written = await this.writeUntilDurable(state, body, seqs, true);
    while (!this.options.spool.handle.isSound(written)) {
      this.options.logger.warn(
        { batchId: state.id },
        'the spool handle failed after this batch was written; writing it again before acknowledging',
      );
      written = await this.writeUntilDurable(state, body, seqs, false);
    }
    return written;
  }

  /**
   * Write until a write succeeds (retrying while the disk refuses) or close abandons it. Only the
   * very first write of a batch is `fresh` (counted without looking): any other may follow one
   * that landed.
   */
  private async writeUntilDurable(
    state: BatchState,
    body: Buffer,
    seqs: SealedSeqs,
    first: boolean,
  ): Promise<Written> {
    const abandon = this.writes.signal;
    for (let fresh = first; ; fresh = false) {
      if (abandon.aborted) throw new SpoolWriteAbandonedError();
      try {
        const write = this.seqTracker.write(seqs, (indexed, newestMs) =>
          this.options.spool.batches.put(state, body, indexed, { fresh, newestMs }),
        );
        const written = await untilAborted(write, abandon);
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

/** Why and since when a batch was open: kept in its record for `batch-emitter trace`. */
interface SealFacts {
  trigger: SealTrigger;
  openedAtMs?: number;
}

/** The spool's record of a sealed batch, before its first delivery attempt. */
function batchRecord(
  batch: SealedBatch<unknown>,
  body: Buffer,
  encoding: 'gzip' | 'identity',
  seal: SealFacts,
): BatchState {
  return {
    v: 1,
    id: batch.id,
    createdAt: batch.createdAt,
    itemCount: batch.itemCount,
    rawBytes: batch.body.length,
    storedBytes: body.length,
    encoding,
    subjects: batch.subjects,
    attempts: 0,
    crc32: crc32(body),
    trigger: seal.trigger,
    ...(seal.openedAtMs === undefined ? {} : { openedAt: new Date(seal.openedAtMs).toISOString() }),
  };
}

/**
 * Aborted when close() gives up on the writes in progress. Each write waiting on the disk listens
 * on it, one per sealed batch not yet durable: past Node's default of 10 while the disk refuses
 * writes, which is no leak (each listener goes with its write).
 */
function abandonableWrites(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
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
