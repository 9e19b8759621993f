import { describe, expect, it } from 'vitest';
import type { BatchDocument } from '../../src/model.js';
import { BatchSender, GONE_FROM_SPOOL, type WireFormat } from '../../src/delivery/batch-sender.js';
import { toSpoolRecord } from '../../src/spool/batch-codec.js';
import { Spool, type BatchState } from '../../src/spool/spool.js';
import type { Clock } from '../../src/util/clock.js';
import { uuidv7 } from '../../src/util/ids.js';
import { Redactor } from '../../src/util/redact.js';
import { useLoopbackDestination } from '../support/loopback-destination.js';
import { tempDir } from '../../harness/workload.js';

/** One attempt of the batch sender against a real loopback sink, over a real spool. */

const TOKEN = 'tok-never-kept-9f3a';
const DOMAIN = {
  host: 'www.example.org',
  apex: 'example.org',
  first_seen: '2026-11-30T10:00:00.000Z',
  last_seen: '2026-11-30T10:05:00.000Z',
};

const destination = useLoopbackDestination({ authToken: TOKEN });

function doc(): BatchDocument {
  const now = new Date().toISOString();
  return {
    batch_id: uuidv7(),
    probe_id: 'p',
    run_id: 'r',
    created_at: now,
    nodes_domain: [DOMAIN],
    nodes_ip: [],
    nodes_cert: [],
    edges: [],
    events: [{ subject: 'approved.x', seq: 1, msg_id: 'm1', published_at: now, data: { id: 'x' } }],
  };
}

async function spooled(encoding: BatchState['encoding']): Promise<{ spool: Spool; document: BatchDocument }> {
  const dir = await tempDir('batch-sender');
  const spool = await Spool.open(dir.path);
  destination.cleanup(
    () => dir.remove(),
    () => spool.close(),
  );
  const document = doc();
  const { state, body } = await toSpoolRecord(document, encoding, { subjects: ['approved.x'] });
  await spool.batches.put(state, body);
  return { spool, document };
}

function sender(spool: Spool, format: Partial<WireFormat> = {}, clock?: Clock): BatchSender {
  return new BatchSender({
    spool,
    transport: destination.transport,
    redactor: new Redactor([TOKEN]),
    compression: 'gzip',
    bodyFormat: 'batch',
    ...format,
    ...(clock ? { clock } : {}),
  });
}

describe('BatchSender', () => {
  it('posts a gzip-stored body as stored and answers a success with its duration', async () => {
    const { spool, document } = await spooled('gzip');
    const outcome = await sender(spool).send(document.batch_id);
    expect(outcome).toMatchObject({ kind: 'success', status: 200 });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(0);
    expect(destination.sink.requests).toHaveLength(1);
    expect(destination.sink.requests[0]?.headers['content-encoding']).toBe('gzip');
    expect(destination.sink.requests[0]?.headers['idempotency-key']).toBe(document.batch_id);
    expect(destination.sink.requests[0]?.body).toEqual(document);
  });

  it('measures the round trip on the injected monotonic clock', async () => {
    const { spool, document } = await spooled('gzip');
    const readings = [1_000, 1_042.5];
    const clock: Clock = { wallMs: () => Date.now(), monoMs: () => readings.shift() ?? Number.NaN };
    const outcome = await sender(spool, {}, clock).send(document.batch_id);
    expect(outcome.durationMs).toBe(42.5);
  });

  it('times a slow destination by its answer', async () => {
    const { spool, document } = await spooled('identity');
    destination.sink.respondWith(async () => {
      await new Promise((resolve) => setTimeout(resolve, 150));
      return { status: 503 };
    });
    const outcome = await sender(spool).send(document.batch_id);
    expect(outcome).toMatchObject({ kind: 'retryable', status: 503 });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(140);
  });

  it('sends a gzip-stored body uncompressed when compression is off', async () => {
    const { spool, document } = await spooled('gzip');
    await sender(spool, { compression: 'none' }).send(document.batch_id);
    expect(destination.sink.requests[0]?.headers['content-encoding']).toBeUndefined();
    expect(destination.sink.requests[0]?.body).toEqual(document);
  });

  it('re-shapes the body as {"discoveries": [...]} for seed receivers', async () => {
    const { spool, document } = await spooled('identity');
    await sender(spool, { bodyFormat: 'discoveries' }).send(document.batch_id);
    expect(destination.sink.requests[0]?.headers['content-encoding']).toBe('gzip');
    expect(destination.sink.requests[0]?.body).toEqual({ discoveries: [DOMAIN, { id: 'x' }] });
  });

  it('scrubs a token the destination echoes back before anyone keeps the outcome', async () => {
    const { spool, document } = await spooled('gzip');
    destination.sink.respondWith(() => ({
      status: 400,
      body: { error: `bad request from Bearer ${TOKEN}`, token: TOKEN },
    }));
    const outcome = await sender(spool).send(document.batch_id);
    expect(outcome).toMatchObject({ kind: 'permanent', status: 400 });
    expect(outcome.kind === 'permanent' && outcome.bodyExcerpt).toContain('[redacted]');
    expect(JSON.stringify(outcome)).not.toContain(TOKEN);
    expect(outcome.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('makes no request for a batch that left the spool, and reports no duration', async () => {
    const { spool } = await spooled('gzip');
    const outcome = await sender(spool).send(uuidv7());
    expect(outcome).toEqual(GONE_FROM_SPOOL);
    expect(outcome.durationMs).toBeUndefined();
    expect(destination.sink.requests).toHaveLength(0);
  });
});
