import { AckPolicy, DeliverPolicy, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, nanos } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/util/logger.js';
import { JetStreamSource, pullSize } from '../../src/ingress/jetstream-source.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { until } from '../../harness/emitter-probe.js';
import { publishInOrder, utf8 } from '../../harness/nats-publish.js';

/**
 * A durable consumer made by hand may limit a pull (`max_batch`, `max_expires`); nats-server refuses
 * a pull over either whole, so a source asking for more would never get a message.
 */

let nats: NatsServerHandle | undefined;
let source: JetStreamSource | undefined;

afterEach(async () => {
  await source?.close();
  source = undefined;
  await nats?.stop();
  nats = undefined;
});

describe('pull size', () => {
  it('asks for at most the batch size (100-1,000), within the consumer limits', () => {
    expect(pullSize(5_000, {})).toEqual({ maxMessages: 1000, expiresMs: 5_000 });
    expect(pullSize(10, {})).toEqual({ maxMessages: 100, expiresMs: 5_000 });
    expect(pullSize(1_000, { max_batch: 10, max_expires: nanos(2_000) })).toEqual({
      maxMessages: 10,
      expiresMs: 2_000,
    });
    expect(pullSize(1_000, { max_batch: 0, max_expires: nanos(60_000) })).toEqual({
      maxMessages: 1000,
      expiresMs: 5_000,
    });
  });

  it('takes every message from a durable made by hand with max_batch 10 and max_expires 2 s', async () => {
    nats = await startNats();
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: 'APPROVED', subjects: ['approved.>'], storage: StorageType.File });
      await jsm.consumers.add('APPROVED', {
        durable_name: 'limited',
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(60_400),
        max_ack_pending: 1000,
        max_batch: 10,
        max_expires: nanos(2_000),
      });
    } finally {
      await nc.close();
    }
    const total = 50;
    await publishInOrder(
      { servers: nats.url },
      Array.from({ length: total }, (_, i) => ({ subject: 'approved.finding', payload: utf8(`m-${i + 1}`) })),
    );
    source = await JetStreamSource.connect(
      { servers: [nats.url], stream: 'APPROVED', subjects: ['approved.>'], durable: 'limited' },
      { batchSize: 100, intervalMs: 200, logger: createLogger('silent') },
    );
    const seen = new Set<number>();
    const s = source;
    source.start((_msg, delivery, from) => {
      seen.add(delivery.seq);
      s.ackFor(delivery, from.incarnation).ack();
    });
    await until(() => seen.size === total, 10_000, `${total} messages (${seen.size} so far)`);
    expect(seen.size).toBe(total);
  });
});
