import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { deliveredKeys, publishAll, sampleMessages, tempDir } from '../../harness/workload.js';
import { spawnEmitter } from '../../harness/process.js';
import { parseAckSubject } from '../../src/ingress/delivery-facts.js';
import { testEnv } from '../support/env.js';

/**
 * Attack on the service path's CPU work (f-perf): the ack subject read in place, the events of the
 * open batch written straight into bytes (first of a key kept, duplicates only acked). Redelivery
 * and dedup rely on the stream sequence and delivery count read from the ack subject and on a
 * batch holding each message once. Real nats-server, real emitter process, real spool and sink.
 */

let nats: NatsServerHandle;
let sink: Sink;
beforeAll(async () => {
  [nats, sink] = await Promise.all([startNats(), startSink()]);
}, 60_000);
afterAll(async () => {
  await Promise.all([nats?.stop(), sink?.close()]);
});

describe('attack: the service path after the CPU work', () => {
  // Regression: what the in-place parse reads equals what the server says (nats.js's own parse),
  // for first deliveries and redeliveries, the publish time to the exact millisecond.
  it('the ack subject read in place gives the server-reported sequence, delivery count and publish ms', async () => {
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: 'ACKPARSE', subjects: ['ackparse.>'] });
      await jsm.consumers.add('ACKPARSE', { durable_name: 'p', ack_policy: AckPolicy.Explicit });
      const js = jetstream(nc);
      for (let i = 0; i < 50; i++) await js.publish(`ackparse.${i}`, new TextEncoder().encode(String(i)));
      const consumer = await js.consumers.get('ACKPARSE', 'p');
      let seen = 0;
      let redelivered = 0;
      const iter = await consumer.consume({ max_messages: 100 });
      for await (const msg of iter) {
        const reply = String((msg as unknown as { reply?: string }).reply);
        const parsed = parseAckSubject(reply);
        expect(parsed, reply).toBeDefined();
        expect(parsed!.seq).toBe(msg.info.streamSequence);
        expect(parsed!.deliveryCount).toBe(msg.info.deliveryCount);
        expect(parsed!.publishedMs).toBe(Number(BigInt(msg.info.timestampNanos) / 1_000_000n));
        if (msg.info.deliveryCount === 1 && msg.info.streamSequence % 5 === 0) msg.nak();
        else msg.ack();
        if (msg.info.deliveryCount > 1) redelivered += 1;
        seen += 1;
        if (seen === 60) break;
      }
      expect(redelivered).toBe(10);
    } finally {
      await nc.close();
    }
  }, 60_000);

  // Regression: JetStream redelivers every message while its batch is still open (ack wait 1 s,
  // batch interval 4 s): the batch holds each once, valid JSON, and every delivery is acked once
  // the batch is durable (nothing left pending, nothing delivered twice in one batch).
  it('redeliveries into the open batch: one copy per batch, all acked once durable', async () => {
    const spool = await tempDir('attack-perf-redeliver');
    const durable = 'perfredeliver';
    const env = testEnv({
      natsUrl: nats.url,
      sinkUrl: sink.url,
      spoolDir: spool.path,
      extra: {
        TRANSMITTER_NATS_DURABLE: durable,
        TRANSMITTER_NATS_ACK_WAIT_S: '1',
        TRANSMITTER_BATCH_INTERVAL_S: '4',
        TRANSMITTER_COMPRESSION: 'none',
      },
    });
    const proc = spawnEmitter(env);
    const messages = sampleMessages(60, 'rd');
    try {
      await proc.ready;
      await publishAll(nats.url, messages);
      const wanted = new Set(messages.map((m) => m.key));
      await sink.waitFor(
        (rs) => deliveredKeys(rs).filter((k) => wanted.has(k)).length >= wanted.size,
        60_000,
      );
      for (const request of sink.requests) {
        const keys = deliveredKeys([request]);
        expect(new Set(keys).size, 'a key twice in one batch').toBe(keys.length);
      }
      const nc = await connect({ servers: nats.url });
      try {
        const jsm = await jetstreamManager(nc);
        const deadline = Date.now() + 30_000;
        let info = await jsm.consumers.info('APPROVED', durable);
        while ((info.num_ack_pending > 0 || info.num_pending > 0) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 200));
          info = await jsm.consumers.info('APPROVED', durable);
        }
        expect({ ackPending: info.num_ack_pending, pending: info.num_pending }).toEqual({
          ackPending: 0,
          pending: 0,
        });
        // the attack needs JetStream to have redelivered while the batch was open
        expect(info.num_redelivered + info.delivered.consumer_seq).toBeGreaterThan(messages.length);
      } finally {
        await nc.close();
      }
    } finally {
      expect(await proc.stop()).toBe(0);
      sink.clear();
      await spool.remove();
    }
  }, 120_000);
});
