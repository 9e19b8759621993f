import type { BatchState } from './batch-state.js';
import type { Batches } from './batches.js';
import type { SpoolHandle } from './handle.js';
import { commit, del, put, type Stores } from './stores.js';
import type { SpoolUsage, Tally } from './usage.js';

/**
 * The dead letters: batches the destination refused for good (moved here with their body, and
 * replayable into the live batches) and messages that could not be decoded or validated. They
 * count toward the spool's size until an operator replays or purges them; none is ever sent.
 */

export interface DeadLetter {
  id: string;
  kind: 'batch' | 'message';
  reason: string;
  at: string;
  status?: number;
  bodyExcerpt?: string;
  subjects: string[];
  /** for batches: the spooled state at the time; for messages: where it came from */
  batch?: BatchState;
  message?: { subject: string; seq: number | null; rawBase64: string; rawBytes: number; truncated: boolean };
  history?: unknown[];
}

/** A dead letter and, for a batch, the body kept beside it. */
export interface StoredDeadLetter {
  letter: DeadLetter;
  body?: Buffer;
}

/** Bytes a dead letter takes: its record, and the batch body kept beside it. */
function deadLetterSize(text: string): number {
  let body = 0;
  try {
    body = (JSON.parse(text) as Partial<DeadLetter>).batch?.storedBytes ?? 0;
  } catch {
    // an unreadable record still takes its own bytes
  }
  return Buffer.byteLength(text) + body;
}

function parseDeadLetter(id: string, text: string): DeadLetter {
  try {
    return JSON.parse(text) as DeadLetter;
  } catch {
    return { id, kind: 'batch', reason: 'dead letter record does not decode', at: '', subjects: [] };
  }
}

export class DeadLetters {
  constructor(
    private readonly handle: SpoolHandle,
    private readonly stores: Stores,
    private readonly usage: SpoolUsage,
    private readonly batches: Batches,
  ) {}

  /** One scan of the records, no bodies read (what `usage` holds for the dead letters). */
  async recount(): Promise<void> {
    const tally: Tally = { count: 0, bytes: 0 };
    for await (const text of this.stores.deadLetters.values()) {
      tally.count += 1;
      tally.bytes += deadLetterSize(text);
    }
    this.usage.set('deadLetters', tally);
  }

  /**
   * Move a batch here, body and all, in one synced write. False when the batch is no longer in
   * the spool (e.g. it was quarantined on the way, being unreadable).
   */
  moveBatch(id: string, letter: Omit<DeadLetter, 'id' | 'kind' | 'batch'>): Promise<boolean> {
    return this.handle.run(
      async () => {
        const batch = await this.batches.get(id);
        if (!batch) return false;
        const text = JSON.stringify({
          ...letter,
          id,
          kind: 'batch',
          batch: batch.state,
        } satisfies DeadLetter);
        const { deadLetters, deadBodies } = this.stores;
        const ops = [
          ...this.batches.deleteOps(id),
          put(deadLetters, id, text),
          put(deadBodies, id, batch.body),
        ];
        await commit(this.handle.db, ops, { sync: true });
        this.batches.countMove(batch.state, -1);
        this.usage.change('deadLetters', 1, deadLetterSize(text));
        return true;
      },
      { retry: true },
    );
  }

  /**
   * Keep a message that could not be decoded or validated. Synced, and refused once the directory
   * was replaced: the message is terminated in the stream after this write.
   */
  addMessage(letter: DeadLetter): Promise<void> {
    return this.handle.run(
      async () => {
        const text = JSON.stringify(letter);
        await commit(this.handle.db, [put(this.stores.deadLetters, letter.id, text)], { sync: true });
        this.usage.change('deadLetters', 1, deadLetterSize(text));
      },
      { strict: true, retry: true },
    );
  }

  list(limit = Infinity): Promise<DeadLetter[]> {
    return this.handle.run(
      async () => {
        const out: DeadLetter[] = [];
        for await (const [id, text] of this.stores.deadLetters.iterator()) {
          if (out.length >= limit) break;
          out.push(parseDeadLetter(id, text));
        }
        return out;
      },
      { retry: true },
    );
  }

  get(id: string): Promise<StoredDeadLetter | undefined> {
    return this.handle.run(
      async () => {
        const text = await this.stores.deadLetters.get(id);
        if (text === undefined) return undefined;
        return { letter: JSON.parse(text) as DeadLetter, body: await this.stores.deadBodies.get(id) };
      },
      { retry: true },
    );
  }

  /** Put a dead-lettered batch back into the live batches with a fresh attempt count. */
  replay(id: string): Promise<boolean> {
    return this.handle.run(
      async () => {
        const text = await this.stores.deadLetters.get(id);
        const found = await this.get(id);
        if (text === undefined || !found?.letter.batch || !found.body) return false;
        const state: BatchState = { ...found.letter.batch, attempts: 0, notBefore: undefined, parked: false };
        const ops = [...this.deleteOps(id), ...this.batches.writeOps({ state, body: found.body })];
        await commit(this.handle.db, ops, { sync: true });
        this.batches.countMove(state, 1);
        this.usage.change('deadLetters', -1, -deadLetterSize(text));
        return true;
      },
      { retry: true },
    );
  }

  purge(id: string): Promise<void> {
    return this.handle.run(
      async () => {
        const text = await this.stores.deadLetters.get(id);
        await commit(this.handle.db, this.deleteOps(id), { sync: false });
        if (text !== undefined) this.usage.change('deadLetters', -1, -deadLetterSize(text));
      },
      { retry: true },
    );
  }

  private deleteOps(id: string) {
    return [del(this.stores.deadLetters, id), del(this.stores.deadBodies, id)];
  }
}
