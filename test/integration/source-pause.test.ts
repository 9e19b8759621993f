import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { JetStreamSource } from '../../src/ingress/jetstream-source.js';
import { createLogger } from '../../src/util/logger.js';

/**
 * The source takes messages through nats.js's consume callback, and nats.js pulls again as they
 * arrive, not as they are handled. A handler that waits longer than ack_wait (the intake paused,
 * e.g. on a full spool) must not let the messages waiting behind it be delivered again and pile
 * up: each must be handed over once.
 */

let nats: NatsServerHandle | undefined;
let source: JetStreamSource | undefined;

afterEach(async () => {
  await source?.close();
  await nats?.stop();
});

async function publish(url: string, count: number): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const js = jetstream(nc);
    for (let i = 1; i <= count; i++) await js.publish('approved.finding', new TextEncoder().encode(`m-${i}`));
  } finally {
    await nc.close();
  }
}

describe('a handler that waits longer than ack_wait', () => {
  it('is not followed by the same messages delivered again behind it', async () => {
    nats = await startNats();
    const ackWaitMs = 2_000;
    source = await JetStreamSource.connect(
      {
        servers: [nats.url],
        stream: 'APPROVED',
        subjects: ['approved.>'],
        durable: 'transmitter',
      },
      { batchSize: 100, intervalMs: 200, ackWaitMs, logger: createLogger('silent') },
    );
    const handedOver = new Map<number, number>();
    let release!: () => void;
    const paused = new Promise<void>((r) => (release = r));
    source.start((msg, delivery) => {
      handedOver.set(delivery.seq, (handedOver.get(delivery.seq) ?? 0) + 1);
      if (delivery.seq !== 1) return void msg.ack();
      // the first message holds the session two and a half ack_waits, as a long intake pause
      return paused.then(() => msg.ack());
    });
    await publish(nats.url, 300);
    await new Promise((r) => setTimeout(r, 2.5 * ackWaitMs));
    release();
    const deadline = Date.now() + 15_000;
    while (handedOver.size < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // time for any copy delivered again to arrive as well
    await new Promise((r) => setTimeout(r, ackWaitMs));
    expect(handedOver.size).toBe(300);
    // the held one was unacknowledged past ack_wait: it may come once more; no other may
    const twice = [...handedOver].filter(([seq, n]) => seq !== 1 && n > 1);
    expect(twice).toEqual([]);
  });
});
