import type { Acknowledgeable, SealedSeqs, SeqTracker } from '../intake/intake.js';
import { isExactSequence } from '../model.js';
import type { Spool } from '../spool/spool.js';

/**
 * Redelivery: recognises a JetStream message that is already in a batch (its ack was lost), by
 * stream sequence, within one stream incarnation. It owns every piece of that: the incarnation
 * the spool's sequence index is bound to, the batches being sealed, the writes under way.
 * It never acknowledges, decodes or refuses a message itself.
 */

/** A batch already holding a message, and when that batch is durable. */
export interface HeldSeq {
  batchId: string;
  /** resolves once that batch is durable in the spool */
  durable: Promise<void>;
}

/** The part of the spool that keeps the sequence index. */
export type SeqIndexStore = Pick<Spool, 'seqIndex' | 'handle'>;

interface Sealing extends SealedSeqs {
  held: HeldSeq;
}

/**
 * The batch's stream sequences of one stream incarnation (a batch may straddle a re-bind), and
 * when the newest of those messages was stored in the stream.
 */
function seqsOf(
  sources: readonly Acknowledgeable[],
  incarnation: string,
): { seqs: number[]; newestMs?: number } {
  const seqs: number[] = [];
  let newestMs: number | undefined;
  for (const source of sources) {
    if (!isExactSequence(source.seq) || source.incarnation !== incarnation) continue;
    seqs.push(source.seq);
    const ms = source.publishedMs;
    if (ms !== undefined && (newestMs === undefined || ms > newestMs)) newestMs = ms;
  }
  return newestMs === undefined ? { seqs } : { seqs, newestMs };
}

/** Whether a message stored at `storedMs` may be one of a batch whose newest was stored at `newestMs`. */
function mayBeOf(storedMs: number | undefined, newestMs: number | undefined): boolean {
  return storedMs === undefined || newestMs === undefined || storedMs <= newestMs;
}

export class Redelivery implements SeqTracker {
  /** the stream incarnation the spool's sequence index is bound to ('' before the first bind) */
  private incarnation = '';
  /** highest stream sequence sealed of the bound incarnation: a message at or below it may already be spooled */
  private highestSealedSeq: number;
  /** batches sealed but not yet durable (searched only for redeliveries) */
  private readonly notDurable = new Set<Sealing>();
  /** spool writes in progress: a re-bind waits for them, as they may still index old sequences */
  private readonly writing = new Set<Promise<unknown>>();
  /** batches that have left `notDurable` so far: a lookup they overlapped looks again */
  private settledCount = 0;

  constructor(private readonly store: SeqIndexStore) {
    this.highestSealedSeq = store.seqIndex.highest;
  }

  sealing(batchId: string, sources: readonly Acknowledgeable[], durable: Promise<void>): SealedSeqs {
    const incarnation = this.incarnation;
    const entry = { held: { batchId, durable }, ...seqsOf(sources, incarnation), incarnation };
    this.notDurable.add(entry);
    for (const seq of entry.seqs) if (seq > this.highestSealedSeq) this.highestSealedSeq = seq;
    const done = () => {
      this.notDurable.delete(entry);
      this.settledCount += 1;
    };
    durable.then(done, done);
    return entry;
  }

  write<T>(batch: SealedSeqs, put: (seqs: readonly number[], newestMs?: number) => Promise<T>): Promise<T> {
    // the index is bound to one incarnation: sequences of another one are not written into it
    const write = batch.incarnation === this.incarnation ? put(batch.seqs, batch.newestMs) : put([]);
    this.writing.add(write);
    return write.finally(() => this.writing.delete(write));
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
    await this.store.seqIndex.bind(incarnation);
    this.highestSealedSeq = this.store.seqIndex.highest;
  }

  /**
   * Whether a message may already be in a batch, so that it must be looked up (cheap). A
   * restarted server may redeliver with a delivery count of 1: any sequence not above the
   * highest one sealed is checked, which costs nothing for the normal, in-order stream.
   */
  mayHold(delivery: { seq: number; deliveryCount: number }): boolean {
    if (!isExactSequence(delivery.seq)) return false;
    return delivery.deliveryCount > 1 || this.mayBeSealed(delivery.seq);
  }

  /** Whether a message with this sequence may already be in a sealed batch (one comparison). */
  mayBeSealed(seq: number): boolean {
    return seq <= this.highestSealedSeq;
  }

  /**
   * The batch already holding this stream sequence, with a promise of its durability: a batch
   * still being written (e.g. while the disk is full) is not durable yet, so its messages must not
   * be acknowledged until it is. With `storedMs` (when the message was stored in the stream), a
   * batch whose messages were all stored before it does not hold it (a stream rolled back gives
   * sequences again: see SeqIndex).
   */
  async findSeq(seq: number, incarnation: string, storedMs?: number): Promise<HeldSeq | undefined> {
    for (;;) {
      if (incarnation !== this.incarnation) return undefined;
      const sealing = this.sealingHolder(seq, incarnation, storedMs);
      if (sealing) return sealing;
      // the index of a spool deleted under us vouches for nothing on disk: take the message again
      if (this.store.handle.replaced !== undefined) return undefined;
      const settled = this.settledCount;
      const batchId = await this.store.seqIndex.batchOf(seq, storedMs);
      if (incarnation !== this.incarnation) return undefined;
      if (batchId !== undefined) return { batchId, durable: Promise.resolve() };
      // the open batch holding it may have been sealed during the read
      const sealed = this.sealingHolder(seq, incarnation, storedMs);
      if (sealed) return sealed;
      // a batch that became durable during the read left `notDurable`, and the read may have
      // begun before its index entries were written: look again (only redeliveries pay this)
      if (this.settledCount === settled) return undefined;
    }
  }

  /** The batch being sealed or written that holds this sequence (synchronous). */
  private sealingHolder(seq: number, incarnation: string, storedMs?: number): HeldSeq | undefined {
    for (const entry of this.notDurable)
      if (entry.incarnation === incarnation && entry.seqs.includes(seq) && mayBeOf(storedMs, entry.newestMs))
        return entry.held;
    return undefined;
  }
}
