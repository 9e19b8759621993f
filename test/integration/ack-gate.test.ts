import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { AckGate, lookAtStream } from '../../src/ingress/ack-gate.js';
import { AckPublisher } from '../../src/ingress/jetstream-ack-publisher.js';
import { createLogger } from '../../src/util/logger.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';

/**
 * An ack subject does not say which incarnation of the stream it is for: after the stream and its
 * durable are deleted and re-created, an ack of an old message acks the new message of the same
 * sequence. The gate sends acks and terms only to the incarnation they belong to.
 */

let nats: NatsServerHandle | undefined;
const connections: NatsConnection[] = [];

afterEach(async () => {
  for (const nc of connections.splice(0)) await nc.close().catch(() => undefined);
  await nats?.stop();
  nats = undefined;
});

/** (Re-)create the stream and its durable, publish `texts`, take them (unacked): their ack subjects. */
async function streamWith(
  nc: NatsConnection,
  texts: string[],
): Promise<{ incarnation: string; replies: string[] }> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete('GATE').catch(() => undefined);
  const info = await jsm.streams.add({ name: 'GATE', subjects: ['gate.>'], storage: StorageType.File });
  await jsm.consumers.add('GATE', {
    durable_name: 'gated',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: 60_000_000_000,
  });
  const js = jetstream(nc);
  for (const text of texts) await js.publish('gate.one', new TextEncoder().encode(text));
  const batch = await (
    await js.consumers.get('GATE', 'gated')
  ).fetch({ max_messages: texts.length, expires: 5_000 });
  const replies: string[] = [];
  for await (const msg of batch) replies.push((msg as unknown as { reply: string }).reply);
  expect(replies).toHaveLength(texts.length);
  return { incarnation: `GATE@${info.created}`, replies };
}

async function ackPending(nc: NatsConnection): Promise<number> {
  return (await (await jetstreamManager(nc)).consumers.info('GATE', 'gated')).num_ack_pending;
}

async function setUp(): Promise<NatsConnection> {
  nats = await startNats();
  const nc = await connect({ servers: nats.url });
  connections.push(nc);
  return nc;
}

describe('AckGate', () => {
  it('an ack of a replaced stream, sent bare, acks the new message of that sequence (why the gate is there)', async () => {
    const nc = await setUp();
    const old = await streamWith(nc, ['old-1', 'old-2']);
    await streamWith(nc, ['new-1', 'new-2']);
    expect(await ackPending(nc)).toBe(2);
    const bare = new AckPublisher(nc);
    for (const reply of old.replies) bare.ack(reply);
    await nc.flush();
    expect(await ackPending(nc)).toBe(0);
  });

  it("sends no ack or term of a replaced stream's messages, and those of the stream there now", async () => {
    const nc = await setUp();
    const gate = new AckGate(nc, new AckPublisher(nc), lookAtStream(nc, 'GATE'), createLogger('silent'));
    const old = await streamWith(nc, ['old-1', 'old-2', 'old-3']);
    const now = await streamWith(nc, ['new-1', 'new-2', 'new-3']);
    // two acks and a term (a dead-lettered message) of each stream
    const settle = async ({ replies, incarnation }: typeof old) => {
      replies.forEach((reply, i) => (i < 2 ? gate.ack(reply, incarnation) : gate.term(reply, incarnation)));
      await gate.settled();
      await nc.flush();
      return ackPending(nc);
    };
    expect(await settle(old)).toBe(3);
    expect(await settle(now)).toBe(0);
  });

  it('holds acks back while the stream cannot be looked at, or is gone', async () => {
    const nc = await setUp();
    const gate = new AckGate(nc, new AckPublisher(nc), lookAtStream(nc, 'GATE'), createLogger('silent'));
    const { incarnation, replies } = await streamWith(nc, ['a', 'b']);
    const failing = new AckGate(
      nc,
      new AckPublisher(nc),
      () => Promise.reject(new Error('timeout')),
      createLogger('silent'),
    );
    failing.ack(replies[0] as string, incarnation);
    await failing.settled();
    await nc.flush();
    expect(await ackPending(nc)).toBe(2);
    gate.ack(replies[0] as string, incarnation);
    await gate.settled();
    await nc.flush();
    expect(await ackPending(nc)).toBe(1);
    await (await jetstreamManager(nc)).streams.delete('GATE');
    expect(await lookAtStream(nc, 'GATE')()).toBeUndefined();
  });
});
