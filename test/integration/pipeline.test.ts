import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { Emitter } from '../../src/emitter.js';
import { createLogger } from '../../src/util/logger.js';
import { BatchDocumentSchema } from '../../src/model.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { testEnv } from '../support/env.js';
import { deliveredKeys, publishAll, publishRaw, sampleMessages, tempDir } from '../../harness/workload.js';

let nats: NatsServerHandle;
let sink: Sink;

beforeAll(async () => {
  [nats, sink] = await Promise.all([startNats(), startSink()]);
});
afterAll(async () => {
  await Promise.all([nats?.stop(), sink?.close()]);
});

async function runEmitter(extra: Record<string, string>, spoolDir: string): Promise<Emitter> {
  const config = loadConfig(testEnv({ natsUrl: nats.url, sinkUrl: `${sink.url}/ingest`, spoolDir, extra }));
  const emitter = new Emitter(config, { logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'warn') });
  await emitter.start();
  return emitter;
}

describe('core pipeline against a real nats-server, LevelDB and HTTP sink', () => {
  it('delivers 20,000 published events exactly once, in batches within the limits, in the wire format', async () => {
    const spool = await tempDir('pipeline');
    const maxItems = 500;
    const maxBytes = 64 * 1024;
    const emitter = await runEmitter(
      {
        TRANSMITTER_BATCH_SIZE: String(maxItems),
        TRANSMITTER_BATCH_MAX_BYTES: String(maxBytes),
        TRANSMITTER_AUTH_TOKEN: 's3cret-token',
      },
      spool.path,
    );
    try {
      const messages = sampleMessages(20_000);
      await publishAll(nats.url, messages);
      const requests = await sink.waitFor((rs) => deliveredKeys(rs).length >= messages.length, 60_000);
      await emitter.wait();
      const keys = deliveredKeys(sink.requests);
      expect(keys.length).toBe(messages.length);
      expect(new Set(keys)).toEqual(new Set(messages.map((m) => m.key)));
      for (const r of requests) {
        expect(r.method).toBe('POST');
        expect(r.url).toBe('/ingest');
        expect(r.headers['content-type']).toBe('application/json');
        expect(r.headers['content-encoding']).toBe('gzip');
        expect(r.headers['user-agent']).toMatch(/^batch-emitter\/\d+\.\d+\.\d+/);
        expect(r.headers.authorization).toBe('Bearer s3cret-token');
        const doc = BatchDocumentSchema.parse(r.body);
        expect(r.headers['idempotency-key']).toBe(doc.batch_id);
        expect(doc.batch_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        expect(doc).toMatchObject({ probe_id: 'probe-test', run_id: 'run-test' });
        expect(Number.isNaN(Date.parse(doc.created_at))).toBe(false);
        const items =
          doc.nodes_domain.length +
          doc.nodes_ip.length +
          doc.nodes_cert.length +
          doc.edges.length +
          doc.events.length;
        expect(items).toBeLessThanOrEqual(maxItems);
        const raw = JSON.stringify(r.body);
        expect(Buffer.byteLength(raw)).toBeLessThanOrEqual(maxBytes);
      }
      for (const e of requests.flatMap(
        (r) => (r.body as { events: Array<Record<string, unknown>> }).events,
      )) {
        expect(e).toMatchObject({
          subject: 'approved.finding',
          msg_id: expect.any(String),
          published_at: expect.any(String),
        });
        expect(typeof e.seq).toBe('number');
      }
      expect(emitter.stats.spool.batches).toBe(0);
      expect(emitter.stats.received).toBe(messages.length);
      // every message was acknowledged (acks travel detached from their messages)
      let consumer = await emitter.statusSource().jetstreamPending?.();
      for (let i = 0; i < 50 && consumer?.ackPending !== 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        consumer = await emitter.statusSource().jetstreamPending?.();
      }
      expect(consumer).toMatchObject({ pending: 0, ackPending: 0 });
    } finally {
      await emitter.close();
      await spool.remove();
      sink.clear();
    }
  });

  it('dead-letters a malformed message with its reason and delivers the good ones around it', async () => {
    const spool = await tempDir('malformed');
    const emitter = await runEmitter({ TRANSMITTER_NATS_DURABLE: 'malformed' }, spool.path);
    try {
      const before = sampleMessages(3, 'before');
      const after = sampleMessages(3, 'after');
      await publishAll(nats.url, before);
      await publishRaw(nats.url, 'approved.domain', new TextEncoder().encode('{"host": 42'));
      await publishRaw(
        nats.url,
        'approved.ip',
        new TextEncoder().encode(
          '{"ip":"not-an-ip","first_seen":"2026-01-01T00:00:00Z","last_seen":"2026-01-01T00:00:00Z"}',
        ),
      );
      await publishAll(nats.url, after);
      const wanted = [...before, ...after].map((m) => m.key);
      await sink.waitFor((rs) => wanted.every((k) => deliveredKeys(rs).includes(k)), 20_000);
      await emitter.wait();
      const letters = await emitter.deadLetters();
      const reasons = letters.map((l) => l.reason);
      expect(reasons).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^invalid_json: /),
          expect.stringMatching(/^invalid_item: node_ip\.ip: /),
        ]),
      );
      const json = letters.find((l) => l.reason.startsWith('invalid_json'));
      expect(json?.message).toMatchObject({ subject: 'approved.domain', rawBytes: 11 });
      expect(Buffer.from(json?.message?.rawBase64 ?? '', 'base64').toString()).toBe('{"host": 42');
    } finally {
      await emitter.close();
      await spool.remove();
      sink.clear();
    }
  });
});

/**
 * JetStream sequences are 64-bit; a number is exact only up to 2^53. A stream purged to a first
 * sequence of 2^60 delivers messages whose sequences read as one number: none may be taken for
 * another's duplicate, and every one is acked only once delivered in a batch.
 */
describe('a stream whose sequences are beyond 2^53', () => {
  it('delivers every message, none taken for a duplicate, and leaves none unacked', async () => {
    const spool = await tempDir('big-seq');
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'BIG', subjects: ['big.>'] });
    await jsm.streams.purge('BIG', { seq: 2 ** 60 });
    const emitter = await runEmitter(
      { TRANSMITTER_NATS_STREAM: 'BIG', TRANSMITTER_NATS_SUBJECTS: 'big.>', TRANSMITTER_NATS_DURABLE: 'big' },
      spool.path,
    );
    try {
      const js = jetstream(nc);
      for (let i = 0; i < 5; i++) await js.publish('big.x', new TextEncoder().encode(JSON.stringify({ i })));
      type Events = { events: Array<{ subject: string; data: { i: number } }> };
      const delivered = () =>
        sink.requests.flatMap((r) =>
          (r.body as Events).events.filter((e) => e.subject === 'big.x').map((e) => e.data.i),
        );
      await sink.waitFor(() => delivered().length >= 5, 15_000);
      expect(delivered().sort()).toEqual([0, 1, 2, 3, 4]);
      await emitter.wait();
      // wait() promises delivery; the acks (sent once a batch is durable) follow a look at the
      // stream and reach the server on their own connection, so they are polled for
      const ackPending = async () => (await jsm.consumers.info('BIG', 'big')).num_ack_pending;
      await expect.poll(ackPending, { timeout: 10_000 }).toBe(0);
    } finally {
      await emitter.close();
      await nc.close();
      await spool.remove();
    }
  });
});
