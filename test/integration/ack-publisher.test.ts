import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { AckPublisher } from '../../src/ingress/jetstream-ack-publisher.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';

/**
 * The acks of a durable batch leave in one write of PUB commands: each message is acked on its
 * own ack subject (never AckAll), only the messages asked for are acked, and a connection without
 * nats.js's protocol writer, or a closed one, is handled without throwing.
 */

let nats: NatsServerHandle | undefined;
const connections: NatsConnection[] = [];

afterEach(async () => {
  for (const nc of connections.splice(0)) await nc.close().catch(() => undefined);
  await nats?.stop();
});

async function setUp(count: number): Promise<{ nc: NatsConnection; messages: JsMsg[] }> {
  nats = await startNats();
  const nc = await connect({ servers: nats.url });
  connections.push(nc);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'ACKS', subjects: ['acks.>'] });
  await jsm.consumers.add('ACKS', {
    durable_name: 'acker',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: 60_000_000_000,
  });
  const js = jetstream(nc);
  for (let i = 0; i < count; i++) await js.publish('acks.one', new TextEncoder().encode(`${i}`));
  const consumer = await js.consumers.get('ACKS', 'acker');
  const batch = await consumer.fetch({ max_messages: count, expires: 5_000 });
  const messages: JsMsg[] = [];
  for await (const msg of batch) messages.push(msg);
  expect(messages).toHaveLength(count);
  return { nc, messages };
}

const replyOf = (msg: JsMsg) => (msg as unknown as { reply: string }).reply;

async function ackState(nc: NatsConnection) {
  const info = await (await jetstreamManager(nc)).consumers.info('ACKS', 'acker');
  return { ackPending: info.num_ack_pending, ackFloor: info.ack_floor.stream_seq };
}

describe('AckPublisher', () => {
  it('acks exactly the messages asked for, each on its own subject, in one write', async () => {
    const { nc, messages } = await setUp(1000);
    type Send = (cmd: string | Uint8Array, ...payloads: Uint8Array[]) => void;
    const protocol = (nc as unknown as { protocol: { sendCommand: Send } }).protocol;
    const send = protocol.sendCommand.bind(protocol);
    let ackWrites = 0;
    protocol.sendCommand = (cmd, ...payloads) => {
      if (typeof cmd !== 'string' && Buffer.from(cmd).includes('+ACK')) ackWrites += 1;
      send(cmd, ...payloads);
    };
    const publisher = new AckPublisher(nc);
    // every other message: an AckAll or a cumulative ack would take the ones between too
    for (const msg of messages.filter((m) => m.seq % 2 === 1)) publisher.ack(replyOf(msg));
    await nc.flush();
    expect(ackWrites).toBe(1);
    expect(await ackState(nc)).toEqual({ ackPending: 500, ackFloor: 1 });
    for (const msg of messages.filter((m) => m.seq % 2 === 0)) publisher.ack(replyOf(msg));
    await nc.flush();
    expect(await ackState(nc)).toEqual({ ackPending: 0, ackFloor: 1000 });
  });

  it("falls back to nats.js's publish when the protocol writer is not there", async () => {
    const { nc, messages } = await setUp(10);
    const bare = {
      isClosed: () => nc.isClosed(),
      publish: (subject: string, data: Uint8Array) => nc.publish(subject, data),
    } as unknown as NatsConnection;
    const publisher = new AckPublisher(bare);
    for (const msg of messages.slice(0, 4)) publisher.ack(replyOf(msg));
    await nc.flush();
    expect(await ackState(nc)).toEqual({ ackPending: 6, ackFloor: 4 });
  });

  it('drops the acks without throwing once the connection is closed or draining', async () => {
    const { nc, messages } = await setUp(4);
    const draining = await connect({ servers: (nats as NatsServerHandle).url });
    const drainingPublisher = new AckPublisher(draining);
    const drained = draining.drain();
    drainingPublisher.ack(replyOf(messages[0] as JsMsg));
    await drained;
    const closedPublisher = new AckPublisher(draining);
    closedPublisher.ack(replyOf(messages[1] as JsMsg));
    // the acks are written at the end of this turn: let it end, then look
    await new Promise((r) => setImmediate(r));
    expect(await ackState(nc)).toEqual({ ackPending: 4, ackFloor: 0 });
  });
});
