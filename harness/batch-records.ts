import type { BatchDocument } from '../src/model.js';
import { toSpoolRecord } from '../src/spool/batch-codec.js';
import type { BatchState, Spool } from '../src/spool/spool.js';
import { uuidv7 } from '../src/util/ids.js';

/** A batch document of `items` events on approved.x, each with a `pad` of about `itemBytes`. */
export function eventsDocument(items = 1, itemBytes = 16): BatchDocument {
  const now = new Date().toISOString();
  return {
    batch_id: uuidv7(),
    probe_id: 'p',
    run_id: 'r',
    created_at: now,
    nodes_domain: [],
    nodes_ip: [],
    nodes_cert: [],
    edges: [],
    events: Array.from({ length: items }, (_, i) => ({
      subject: 'approved.x',
      seq: i + 1,
      msg_id: `m${i}`,
      published_at: now,
      data: { id: `x${i}`, pad: 'p'.repeat(itemBytes) },
    })),
  };
}

/** A fresh spool record (state and uncompressed body) of such a document, not yet written. */
export function freshBatch(items = 1, itemBytes = 16): Promise<{ state: BatchState; body: Buffer }> {
  return toSpoolRecord(eventsDocument(items, itemBytes), 'identity', { subjects: ['approved.x'] });
}

/** Count the spool's batch reads (`get`: state and body, `getState`: the state alone) from now on. */
export function countBatchReads(spool: Spool): { get: number; getState: number } {
  const reads = { get: 0, getState: 0 };
  const get = spool.batches.get.bind(spool.batches);
  const getState = spool.batches.getState.bind(spool.batches);
  spool.batches.get = (id) => {
    reads.get += 1;
    return get(id);
  };
  spool.batches.getState = (id) => {
    reads.getState += 1;
    return getState(id);
  };
  return reads;
}
