import { stateOf } from './batch-state.js';
import type { SpoolHandle } from './handle.js';
import { commit, del, put, type Stores } from './stores.js';
import type { SpoolUsage, Tally } from './usage.js';

/**
 * The quarantine: batches set aside because they could not be read (a state record that does not
 * decode, a body missing or overwritten on disk), kept for inspection so the rest can flow.
 * A quarantined batch is never sent; only an operator deletes it.
 */

/** A batch set aside because it could not be read, as `Quarantine.takeBatch` kept it. */
export interface QuarantinedBatch {
  id: string;
  reason: string;
  /** the state record's text, when there was one */
  state?: string;
  /** the stored body, when there was one */
  bodyBase64?: string;
}

function parseQuarantined(id: string, text: string): QuarantinedBatch {
  try {
    const kept = JSON.parse(text) as { reason?: unknown; state?: unknown; bodyBase64?: unknown };
    return {
      id,
      reason: String(kept.reason ?? 'unknown'),
      state: typeof kept.state === 'string' ? kept.state : undefined,
      bodyBase64: typeof kept.bodyBase64 === 'string' ? kept.bodyBase64 : undefined,
    };
  } catch {
    return { id, reason: 'unknown' };
  }
}

export class Quarantine {
  constructor(
    private readonly handle: SpoolHandle,
    private readonly stores: Stores,
    private readonly usage: SpoolUsage,
  ) {}

  /** One scan of the records (what `usage` holds for the quarantine). */
  async recount(): Promise<void> {
    const tally: Tally = { count: 0, bytes: 0 };
    for await (const text of this.stores.quarantine.values()) {
      tally.count += 1;
      tally.bytes += Buffer.byteLength(text);
    }
    this.usage.set('quarantine', tally);
  }

  /** Set an unreadable batch aside, state record and body as they are, in one synced write. */
  takeBatch(id: string, reason: string): Promise<void> {
    return this.handle.run(
      async () => {
        const { states, bodies, quarantine } = this.stores;
        const [text, body] = await Promise.all([states.get(id), bodies.get(id)]);
        const kept = JSON.stringify({ reason, state: text, bodyBase64: body?.toString('base64') });
        const earlier = await quarantine.get(id);
        await commit(this.handle.db, [put(quarantine, id, kept), del(states, id), del(bodies, id)], {
          sync: true,
        });
        const counted = text === undefined ? undefined : stateOf(id, text);
        if (counted) this.usage.change('batches', -1, -counted.storedBytes);
        const replaced = earlier === undefined ? 0 : Buffer.byteLength(earlier);
        this.usage.change('quarantine', earlier === undefined ? 1 : 0, Buffer.byteLength(kept) - replaced);
      },
      { retry: true },
    );
  }

  /** The batches set aside, oldest id first, with what was kept of them. */
  list(): Promise<QuarantinedBatch[]> {
    return this.handle.run(
      async () => {
        const kept: QuarantinedBatch[] = [];
        for await (const [id, text] of this.stores.quarantine.iterator())
          kept.push(parseQuarantined(id, text));
        return kept;
      },
      { retry: true },
    );
  }

  /** Delete what was kept of a quarantined batch (an operator's decision: it is never sent). */
  purge(id: string): Promise<void> {
    return this.handle.run(
      async () => {
        const text = await this.stores.quarantine.get(id);
        await commit(this.handle.db, [del(this.stores.quarantine, id)], { sync: true });
        if (text !== undefined) this.usage.change('quarantine', -1, -Buffer.byteLength(text));
      },
      { retry: true },
    );
  }
}
