import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, nanos } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/util/logger.js';
import { JetStreamSource, originOf, type Origin } from '../../src/ingress/jetstream-source.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { until } from '../../harness/emitter-probe.js';

/**
 * Issue 12, item 2, the race: a stream deleted and re-created (with the durable) while no pull is
 * waiting gets no 409, and the source later pulls from the namesake consumer of the new stream. With
 * the periodic check turned off, every message of the new stream must still be refused by
 * `confirm` (so its sequence is never looked up in the old stream's index), and the source binds
 * to the new stream, where the same messages come again and are confirmed.
 */

let nats: NatsServerHandle | undefined;
let source: JetStreamSource | undefined;

afterEach(async () => {
  await source?.close();
  await nats?.stop();
});

async function publish(url: string, texts: string[]): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const js = jetstream(nc);
    for (const text of texts) await js.publish('approved.finding', new TextEncoder().encode(text));
  } finally {
    await nc.close();
  }
}

async function replaceStreamAndDurable(url: string): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete('APPROVED');
    await jsm.streams.add({ name: 'APPROVED', subjects: ['approved.>'], storage: StorageType.File });
    await jsm.consumers.add('APPROVED', {
      durable_name: 'transmitter',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      // the source's own ack_wait (2 x 200 ms + 60 s): the source would update another, and an
      // update restarts the server's redelivery timers (what it let go would wait out ack_wait)
      ack_wait: nanos(60_400),
    });
  } finally {
    await nc.close();
  }
}

describe('a message of a re-created stream is never taken for one of the old stream', () => {
  it('no 409 (no pull waiting), the check turned off: confirm refuses the new stream messages, then the rebound source confirms them', async () => {
    nats = await startNats();
    const logger = createLogger('silent');
    source = await JetStreamSource.connect(
      {
        servers: [nats.url],
        stream: 'APPROVED',
        subjects: ['approved.>'],
        durable: 'transmitter',
        ackWaitMs: 30_000,
      },
      { batchSize: 100, intervalMs: 200, logger, watchMs: 1_000_000_000 },
    );
    const seen: Array<{ text: string; seq: number; origin: Origin; confirmed: boolean }> = [];
    const binds: string[] = [];
    let gate: (() => void) | undefined;
    const held = new Promise<void>((r) => (gate = r));
    const s = source;
    // what reached the session so far (the count a binding check covers)
    const arrived = () =>
      (s as unknown as { watch: { current?: { arrived: number } } }).watch.current?.arrived ?? 0;
    // one pull's worth (batchSize 100: max_messages 100): once all of it is here, no pull waits
    const old = Array.from({ length: 100 }, (_, i) => `old-${i + 1}`);
    await publish(nats.url, old);
    source.start(
      async (msg, delivery, from, receipt) => {
        if (seen.length === 0) await until(() => arrived() === old.length, 5_000, 'the whole first pull');
        const origin = originOf(from, receipt);
        const confirmed = await s.confirm(origin);
        seen.push({ text: msg.string(), seq: delivery.seq, origin, confirmed });
        // as the emitter does: a message not confirmed is let go, to come again to the new binding.
        // The old messages handled after the replacement are acked too: the gate must not send those
        // acks (the server reads only the sequences of an ack subject: they would ack new-1, new-2)
        if (confirmed) s.ackFor(delivery, origin.incarnation).ack();
        else s.nak(delivery);
        // the first message holds the session (like intake backpressure) until the stream is replaced
        if (seen.length === 1) await held;
      },
      (incarnation) => void binds.push(incarnation),
    );
    await until(() => seen.length === 1, 5_000, 'the first message');
    // its look at the stream covered the whole pull: the old messages are confirmed without another
    expect(seen[0]).toMatchObject({ text: 'old-1', seq: 1, confirmed: true });
    await replaceStreamAndDurable(nats.url);
    await publish(nats.url, ['new-1', 'new-2']);
    gate?.();

    await until(
      () => seen.filter((s) => s.text.startsWith('new') && s.confirmed).length === 2,
      15_000,
      'new-1, new-2 confirmed',
    );
    expect(seen.filter((m) => m.text.startsWith('old') && m.confirmed)).toHaveLength(old.length);
    // before the source knew, new-1 (sequence 1, like old-1) may have been handed over: never confirmed in that session
    const first = seen[0] as { origin: Origin };
    const early = seen.filter((m) => m.text.startsWith('new') && m.origin.session === first.origin.session);
    expect(early.length, JSON.stringify(seen)).toBeGreaterThan(0);
    for (const s of seen.filter((m) => m.text.startsWith('new'))) {
      if (s.origin.session === first.origin.session) expect(s.confirmed).toBe(false);
      else expect(s.origin.incarnation).not.toBe(first.origin.incarnation);
    }
    expect(binds).toHaveLength(2);
    expect(binds[1]).not.toBe(binds[0]);
  });
});
