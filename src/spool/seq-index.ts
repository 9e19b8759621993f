import type { SpoolHandle } from './handle.js';
import { put, type Stores, type WriteOp } from './stores.js';

/**
 * The sequence index: JetStream stream sequence -> id of the batch that took that message, bound
 * to one incarnation of the stream, kept until the consumer's ack floor passes it. It lets a
 * redelivered message be recognised as already spooled. It never writes a batch.
 *
 * An entry also keeps when the newest of its batch's messages was stored in the stream: a message
 * stored after that is not one of them, whatever its sequence. A stream rolled back (its server's
 * store restored from an earlier copy) keeps its name and creation time, so its incarnation, and
 * gives the sequences it lost to new messages: without the times those were taken for the old
 * ones, acknowledged and never sent.
 */

const seqKey = (seq: number) => seq.toString().padStart(16, '0');
const SEQ_KEY_LENGTH = 16;
const BOUND_TO = 'seqIndexStream';

/** Sorted runs of consecutive sequences: one index entry per run, not per message. */
export function seqRanges(seqs: readonly number[]): Array<[number, number]> {
  const sorted = [...seqs].sort((a, b) => a - b);
  const runs: Array<[number, number]> = [];
  for (const seq of sorted) {
    const last = runs[runs.length - 1];
    if (last && seq <= last[1] + 1) last[1] = Math.max(last[1], seq);
    else runs.push([seq, seq]);
  }
  return runs;
}

export class SeqIndex {
  private highestSeq = 0;

  constructor(
    private readonly handle: SpoolHandle,
    private readonly stores: Stores,
  ) {}

  /** The highest stream sequence in the index (kept after pruning: pruning is below the ack floor). */
  get highest(): number {
    return this.highestSeq;
  }

  /** Read the highest sequence from disk; never lower it (a reopen re-reads what was written). */
  async load(): Promise<void> {
    const [last] = await this.stores.seqIndex.keys({ reverse: true, limit: 1 }).all();
    const onDisk = last === undefined ? 0 : Number(last.slice(0, SEQ_KEY_LENGTH));
    this.highestSeq = Math.max(this.highestSeq, onDisk);
  }

  /** The index entries of a batch, written in the same LevelDB batch as the batch itself. */
  entriesFor(batchId: string, seqs: readonly number[], newestMs?: number): WriteOp[] {
    const value = (first: number) =>
      newestMs === undefined ? `${first} ${batchId}` : `${first} ${batchId} ${newestMs}`;
    return seqRanges(seqs).map(([first, last]) =>
      put(this.stores.seqIndex, `${seqKey(last)}!${batchId}`, value(first)),
    );
  }

  /** After the entries were written. */
  noteWritten(seqs: readonly number[]): void {
    for (const seq of seqs) if (seq > this.highestSeq) this.highestSeq = seq;
  }

  /**
   * The index belongs to one incarnation of one stream: when the stream is another one (deleted
   * and re-created, or renamed), forget the index so old sequences cannot match new ones.
   */
  bind(incarnation: string): Promise<void> {
    return this.handle.run(
      async () => {
        const { meta, seqIndex } = this.stores;
        if ((await meta.get(BOUND_TO)) === incarnation) return;
        await seqIndex.clear();
        await meta.put(BOUND_TO, incarnation);
        this.highestSeq = 0;
      },
      { retry: true },
    );
  }

  /**
   * The batch that took the message with this stream sequence, if it is still indexed; with
   * `storedMs` (when the message was stored in the stream), only a batch whose messages were not
   * all stored before it (entries written before the times were kept match on the sequence alone).
   */
  batchOf(seq: number, storedMs?: number): Promise<string | undefined> {
    return this.handle.run(
      async () => {
        // entries are keyed by the last sequence of a run: the first few ending at or after `seq`
        for await (const value of this.stores.seqIndex.values({ gte: seqKey(seq), limit: 4 })) {
          const [first, batchId, newest] = value.split(' ');
          if (Number(first) > seq) continue;
          if (storedMs !== undefined && newest !== undefined && storedMs > Number(newest)) continue;
          return batchId;
        }
        return undefined;
      },
      { retry: true },
    );
  }

  /** Forget sequences at or below the consumer's ack floor: they are never redelivered. */
  prune(ackFloor: number): Promise<number> {
    return this.handle.run(
      async () => {
        const { seqIndex } = this.stores;
        const keys = await seqIndex.keys({ lt: seqKey(ackFloor + 1), limit: 100_000 }).all();
        if (keys.length > 0) await seqIndex.batch(keys.map((key) => ({ type: 'del' as const, key })));
        return keys.length;
      },
      { retry: true },
    );
  }
}
