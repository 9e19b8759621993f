import type { Outcome } from '../../machines/outcome.js';
import { decodeBody, encodeBody, rawBody, toDiscoveries } from '../spool/batch-codec.js';
import type { BatchState, Spool, SpooledBatch } from '../spool/spool.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { Redactor } from '../util/redact.js';
import type { HttpTransport } from './http-transport.js';

/**
 * The batch sender: one attempt for one spooled batch, from the stored body to a timed `Outcome`
 * whose text holds no secret. It never writes to the spool, retries or decides what an outcome
 * means for the batch: that is the delivery machine's and the results' part.
 */

export interface WireFormat {
  compression: 'gzip' | 'none';
  /** gzip level of a body encoded again (default 1) */
  gzipLevel?: number;
  /** `discoveries` re-shapes each body as {"discoveries":[...]} for receivers that expect the transmitter service's body */
  bodyFormat: 'batch' | 'discoveries';
}

export interface BatchSenderOptions extends WireFormat {
  spool: Pick<Spool, 'batches'>;
  transport: Pick<HttpTransport, 'post'>;
  /** scrubs configured secrets (and bearer tokens, URL credentials) from what the destination answers */
  redactor: Redactor;
  /** the round trip is measured on `monoMs` (default: the system clocks) */
  clock?: Clock;
}

interface WireBody {
  body: Buffer;
  contentEncoding: 'gzip' | 'identity';
}

/** The stored body as it goes on the wire: as stored when possible, re-encoded otherwise. */
async function wireBody(state: BatchState, stored: Buffer, format: WireFormat): Promise<WireBody> {
  const wanted = format.compression === 'gzip' ? 'gzip' : 'identity';
  if (format.bodyFormat === 'discoveries') {
    const json = JSON.stringify(toDiscoveries(await decodeBody(state, stored)));
    return { body: await encodeBody(json, wanted, format.gzipLevel), contentEncoding: wanted };
  }
  if (state.encoding === wanted) return { body: stored, contentEncoding: wanted };
  return { body: await rawBody(state, stored), contentEncoding: 'identity' };
}

export const GONE_FROM_SPOOL: Outcome = {
  kind: 'permanent',
  status: 0,
  reason: 'batch no longer in the spool',
};

export class BatchSender {
  private readonly clock: Clock;

  constructor(private readonly options: BatchSenderOptions) {
    this.clock = options.clock ?? systemClock;
  }

  /**
   * One attempt: read the batch (an unreadable one is quarantined by the spool) unless it is
   * `handed` (just written, as it was written), post it, time it.
   */
  async send(batchId: string, signal?: AbortSignal, handed?: SpooledBatch): Promise<Outcome> {
    const batch = handed ?? (await this.options.spool.batches.get(batchId));
    if (!batch) return GONE_FROM_SPOOL;
    const { body, contentEncoding } = await wireBody(batch.state, batch.body, this.options);
    const meta = { batchId, contentEncoding, itemCount: batch.state.itemCount };
    const started = this.clock.monoMs();
    const outcome = await this.options.transport.post(body, meta, signal);
    return this.scrubbed({ ...outcome, durationMs: this.clock.monoMs() - started });
  }

  /** A careless receiver may echo our token back: scrub it before history, dead letters or logs see it. */
  private scrubbed(outcome: Outcome): Outcome {
    if (outcome.kind !== 'permanent' || outcome.bodyExcerpt === undefined) return outcome;
    return { ...outcome, bodyExcerpt: this.options.redactor.scrub(outcome.bodyExcerpt) };
  }
}
