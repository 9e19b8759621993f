import type { GetOptions } from 'level';
import { bodyProblem, decodeState, stateOf, type BatchState, type BatchStatePatch } from './batch-state.js';
import { isCorruption, SpoolError, type SpoolHandle, type Written } from './handle.js';
import type { Quarantine } from './quarantine.js';
import type { SeqIndex } from './seq-index.js';
import { commit, del, put, type Stores, type WriteOp } from './stores.js';
import type { SpoolUsage, Tally } from './usage.js';

/**
 * A body is read once per delivery attempt: kept out of LevelDB's block cache (8 MB), which would
 * otherwise fill with the last bodies sent (up to 8 MB of C heap, a body a block: ~400 KB each
 * without compression) and push out the state records and index blocks it is there for.
 */
const BODY_READ: GetOptions<string, Buffer> = { fillCache: false };

/**
 * The live batches: state record and body per batch id (UUIDv7, so listing is oldest first).
 * A batch is written atomically and synced before any of its sources is acknowledged, and stays
 * until delivered (deleted), split (replaced by its parts), dead-lettered or quarantined. An
 * unreadable batch is never handed out: it is quarantined instead.
 */

export interface SpooledBatch {
  state: BatchState;
  body: Buffer;
}

/** A record that cannot be trusted: its key and why. */
export interface QuarantineEntry {
  key: string;
  reason: string;
}

/**
 * A batch as written or read on one handle generation: while that generation stands (no reopen,
 * which recounts, and no failure since) the spool holds it and counts it as `state` says.
 */
export interface KnownBatch extends Written {
  state: BatchState;
}

export interface PutOptions {
  /**
   * The batch's first write (a just-sealed batch: its UUIDv7 id was never written): it is
   * counted without looking. Any later write of it looks first, so it is counted once.
   */
  fresh?: boolean;
  /** when the newest message of `seqs` was stored in the stream, epoch ms (see SeqIndex) */
  newestMs?: number;
}

export interface ListOptions {
  /** strictly after this id */
  after?: string;
  limit?: number;
}

const rangeOf = (options: ListOptions) => ({
  ...(options.after === undefined ? {} : { gt: options.after }),
  limit: options.limit ?? -1,
});

export class Batches {
  constructor(
    private readonly handle: SpoolHandle,
    private readonly stores: Stores,
    private readonly usage: SpoolUsage,
    private readonly seqIndex: SeqIndex,
    private readonly quarantine: Quarantine,
  ) {}

  /** Scan every state record: the live tally, and (unless only counting) quarantine of unreadable ones. */
  async recount(options: { quarantineUnreadable: boolean }): Promise<void> {
    const tally: Tally = { count: 0, bytes: 0 };
    const unreadable: string[] = [];
    for await (const [id, text] of this.stores.states.iterator()) {
      const state = stateOf(id, text);
      if (!state) unreadable.push(id);
      else {
        tally.count += 1;
        tally.bytes += state.storedBytes;
      }
    }
    this.usage.set('batches', tally);
    if (!options.quarantineUnreadable) return;
    for (const id of unreadable) await this.quarantine.takeBatch(id, 'state record does not decode');
  }

  /** The ops that store a batch (state record, then body), for a write that spans stores. */
  writeOps(batch: SpooledBatch): WriteOp[] {
    const { states, bodies } = this.stores;
    return [
      put(states, batch.state.id, JSON.stringify(batch.state)),
      put(bodies, batch.state.id, batch.body),
    ];
  }

  /** The ops that remove a batch, for a write that spans stores. */
  deleteOps(id: string): WriteOp[] {
    return [del(this.stores.states, id), del(this.stores.bodies, id)];
  }

  /** Count a batch that a move brought in (+1) or took out (-1). */
  countMove(state: BatchState, sign: 1 | -1): void {
    this.usage.change('batches', sign, sign * state.storedBytes);
  }

  /**
   * Write a sealed batch durably (synced) and atomically, with the stream sequences of its source
   * messages, so a redelivered message can be recognised as already spooled. Resolves with the
   * handle generation it was written on once the directory is confirmed to be still the one
   * opened (by a check started after this write; concurrent writes share one); acknowledge its sources only while `handle.isSound(written)`.
   * Writing a batch again (after a reopen) is harmless: same keys, counted once. Not retried
   * here: the writer decides whether to write again.
   */
  async put(
    state: BatchState,
    body: Buffer,
    seqs: readonly number[] = [],
    options: PutOptions = {},
  ): Promise<Written> {
    const written = await this.handle.run(
      async () => {
        const generation = this.handle.generation;
        const known = !options.fresh && (await this.stores.states.get(state.id)) !== undefined;
        // the body last: LevelDB appends each op to one buffer, which doubles (a copy of the body,
        // twice its size in memory) when a small op follows a large one
        const ops = [
          ...this.seqIndex.entriesFor(state.id, seqs, options.newestMs),
          ...this.writeOps({ state, body }),
        ];
        await commit(this.handle.db, ops, { sync: true });
        if (!known) this.countMove(state, 1);
        this.seqIndex.noteWritten(seqs);
        return { generation };
      },
      { strict: true },
    );
    const replaced = await this.handle.confirmIdentity();
    if (replaced !== undefined)
      throw new SpoolError('SPOOL_REPLACED', `spool directory replaced: ${replaced}`);
    return written;
  }

  getState(id: string): Promise<BatchState | undefined> {
    return this.handle.run(
      async () => {
        const text = await this.stores.states.get(id);
        return text === undefined ? undefined : decodeState(text);
      },
      { retry: true },
    );
  }

  /** The batch with its body, or undefined if it is gone; an unreadable batch is quarantined. */
  get(id: string): Promise<SpooledBatch | undefined> {
    return this.handle.run(
      async () => {
        const [text, body] = await Promise.all([
          this.stores.states.get(id),
          this.stores.bodies.get(id, BODY_READ),
        ]);
        if (text === undefined) return undefined;
        const state = decodeState(text);
        const problem = state ? bodyProblem(state, body) : 'state record does not decode';
        if (problem !== undefined || !state || !body) {
          await this.quarantine.takeBatch(id, problem ?? 'body missing');
          return undefined;
        }
        return { state, body };
      },
      { retry: true },
    );
  }

  /**
   * Record attempts, backoff or parking: one read, the merge written back; nothing when the batch
   * is gone. Not synced: losing it in an OS crash only costs an early retry.
   */
  patchState(id: string, patch: BatchStatePatch): Promise<void> {
    return this.handle.run(
      async () => {
        const text = await this.stores.states.get(id);
        const state = text === undefined ? undefined : decodeState(text);
        if (!state) return;
        await this.stores.states.put(id, JSON.stringify({ ...state, ...patch }));
      },
      { retry: true },
    );
  }

  /**
   * Delivered: remove the batch. `known` (as handed over or read by this delivery; only its own
   * delivery removes a batch) spares the read that finds what to uncount, while its generation stands.
   */
  delete(id: string, known?: KnownBatch): Promise<void> {
    return this.handle.run(
      async () => {
        const state =
          known?.state.id === id && this.handle.isSound(known) ? known.state : await this.getState(id);
        await commit(this.handle.db, this.deleteOps(id), { sync: false });
        if (state) this.countMove(state, -1);
      },
      { retry: true },
    );
  }

  /** Replace a batch by its parts in one synced write (a 413 split). */
  replace(parentId: string, parts: SpooledBatch[]): Promise<void> {
    return this.handle.run(
      async () => {
        const parent = await this.getState(parentId);
        const ops = [...this.deleteOps(parentId), ...parts.flatMap((part) => this.writeOps(part))];
        await commit(this.handle.db, ops, { sync: true });
        if (parent) this.countMove(parent, -1);
        for (const part of parts) this.countMove(part.state, 1);
      },
      { retry: true },
    );
  }

  /** Batch ids, oldest first. */
  ids(options: ListOptions = {}): Promise<string[]> {
    return this.handle.run(() => this.stores.states.keys(rangeOf(options)).all(), { retry: true });
  }

  /** State records that decode, oldest first. */
  list(options: ListOptions = {}): Promise<BatchState[]> {
    return this.handle.run(
      async () => {
        const out: BatchState[] = [];
        for await (const text of this.stores.states.values(rangeOf(options))) {
          const state = decodeState(text);
          if (state) out.push(state);
        }
        return out;
      },
      { retry: true },
    );
  }

  /** Every state record, oldest first, with its decoded state (undefined when it does not decode). */
  inspect(): Promise<Array<{ id: string; state?: BatchState }>> {
    return this.handle.run(
      async () => {
        const out: Array<{ id: string; state?: BatchState }> = [];
        for await (const [id, text] of this.stores.states.iterator()) {
          const state = stateOf(id, text);
          out.push(state ? { id, state } : { id });
        }
        return out;
      },
      { retry: true },
    );
  }

  /** Read every batch; report the ones that cannot be read or decoded. Changes nothing. */
  verify(decodeBody: (state: BatchState, body: Buffer) => Promise<void>): Promise<QuarantineEntry[]> {
    return this.handle.run(
      async () => {
        const problems: QuarantineEntry[] = [];
        for await (const [id, text] of this.stores.states.iterator()) {
          const reason = await this.problemOf(id, text, decodeBody);
          if (reason !== undefined) problems.push({ key: id, reason });
        }
        return problems;
      },
      { retry: true },
    );
  }

  private async problemOf(
    id: string,
    text: string,
    decodeBody: (state: BatchState, body: Buffer) => Promise<void>,
  ): Promise<string | undefined> {
    const state = decodeState(text);
    if (!state) return 'state record does not decode';
    let body: Buffer | undefined;
    try {
      body = await this.stores.bodies.get(id);
    } catch (error) {
      // a record on a damaged table block: name it (a reopen reads the same bytes)
      if (isCorruption(error))
        return `body unreadable on disk (${(error as Error).message}): run \`batch-emitter spool repair\``;
      throw error;
    }
    const problem = bodyProblem(state, body);
    if (problem !== undefined || !body) return problem ?? 'body missing';
    return decodeBody(state, body).then(
      () => undefined,
      (error: unknown) => `body does not decode: ${(error as Error).message}`,
    );
  }
}
