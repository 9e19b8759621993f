import v8 from 'node:v8';
import vm from 'node:vm';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type Msg } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/util/logger.js';
import { JetStreamSource, type ConsumerSession } from '../../src/ingress/jetstream-source.js';
import type { Delivery } from '../../src/ingress/delivery-facts.js';
import { deferred } from '../../src/util/deferred.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { until } from '../../harness/emitter-probe.js';
import { publishInOrder, utf8 } from '../../harness/nats-publish.js';

/**
 * What a paused source holds: the pull session sends the next pull only once the handler has
 * caught up, so while a handling is pending (the intake paused: a full spool, seals waiting) the
 * session takes at most one pull's messages and leaves the rest in the stream. These held when the
 * source took messages through nats.js's consume callback (tried and dropped: it pulls again as
 * messages arrive, whatever the handler's pace):
 *
 * 1. Redeliveries: the server sends an unacknowledged message again every ack_wait, and every copy
 *    came to the paused session and waited in memory.
 * 2. Handled messages must not be kept while a backlog keeps messages coming.
 * 3. Peers: max_ack_pending is the consumer's, shared by every instance on the durable: an instance
 *    that keeps pulling behind a paused intake takes all of it, and its peers get nothing.
 * 4. Brief pauses that add up past ack_wait must not let copies pile up either.
 *
 * The source takes batchSize 100 here: max_messages 100, max_ack_pending 1000.
 */

const MAX_ACK_PENDING = 1000;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

let nats: NatsServerHandle | undefined;
let source: JetStreamSource | undefined;
let peer: JetStreamSource | undefined;
/** lets go of a handling the test holds, so that close() does not wait for it */
let release: (() => void) | undefined;

afterEach(async () => {
  release?.();
  release = undefined;
  await source?.close();
  source = undefined;
  await peer?.close();
  peer = undefined;
  await nats?.stop();
  nats = undefined;
});

async function deliveredSoFar(url: string, durable: string): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    return (await jsm.consumers.info('APPROVED', durable)).delivered.consumer_seq;
  } finally {
    await nc.close();
  }
}

/** The consumer's delivery sequence, from the ack subject (the token after the stream sequence). */
function deliverySeqOf(msg: Msg): number {
  const tokens = (msg.reply ?? '').split('.');
  return Number(tokens[tokens.length === 9 ? 6 : 8]);
}

/** Ack as the emitter does: through the source, for the stream incarnation the session is bound to. */
const ack = (source: JetStreamSource | undefined, delivery: Delivery, from: ConsumerSession) =>
  source?.ackFor(delivery, from.incarnation).ack();

async function connectSource(url: string, durable: string, ackWaitMs: number): Promise<JetStreamSource> {
  return JetStreamSource.connect(
    { servers: [url], stream: 'APPROVED', subjects: ['approved.>'], durable },
    { batchSize: 100, intervalMs: 200, ackWaitMs, logger: createLogger('silent'), watchMs: 1_000_000_000 },
  );
}

function publishMany(url: string, count: number): Promise<number[]> {
  return publishInOrder(
    { servers: url },
    Array.from({ length: count }, (_, i) => ({ subject: 'approved.finding', payload: utf8(`m-${i + 1}`) })),
  );
}

describe('messages waiting behind a pending handling', () => {
  it('a handling pending for several ack_waits does not pile up more than max_ack_pending copies', async () => {
    nats = await startNats();
    source = await connectSource(nats.url, 'held', 1_000);
    await publishMany(nats.url, 300);
    const handed: Array<{ seq: number; deliverySeq: number }> = [];
    const seen = new Set<number>();
    const held = deferred();
    release = () => held.resolve();
    source.start((msg, delivery, from) => {
      handed.push({ seq: delivery.seq, deliverySeq: deliverySeqOf(msg) });
      seen.add(delivery.seq);
      // the first message holds the session, as the intake does while the spool is full
      if (handed.length === 1) return held.promise.then(() => ack(source, delivery, from));
      ack(source, delivery, from);
      return undefined;
    });
    await until(() => handed.length === 1, 10_000, 'the first message');
    // the intake stays paused for six ack_waits (a sink down for a while: minutes, in production)
    await new Promise((r) => setTimeout(r, 6_000));
    expect(handed.length).toBe(1);
    const deliveredWhileHeld = await deliveredSoFar(nats.url, 'held');
    held.resolve();
    await until(() => seen.size === 300, 20_000, 'every message handed over once the intake accepts');
    // every copy the server had sent by then and that was handed over after was held in memory
    const keptInMemory = handed.filter((h, i) => i > 0 && h.deliverySeq <= deliveredWhileHeld).length;
    expect(
      keptInMemory,
      `${deliveredWhileHeld} deliveries while held; copies handed over after: ${keptInMemory}`,
    ).toBeLessThanOrEqual(MAX_ACK_PENDING);
  }, 60_000);

  it('messages already handled are not kept while a backlog keeps the feed from emptying', async () => {
    nats = await startNats();
    source = await connectSource(nats.url, 'backlog', 30_000);
    const total = 3_000;
    await publishMany(nats.url, total);
    const s = source;
    // what reached the session so far (the count binding checks cover)
    const arrived = () =>
      (s as unknown as { watch: { current?: { arrived: number } } }).watch.current?.arrived ?? 0;
    const handled: Array<WeakRef<Msg>> = [];
    const stopAt = total - 100;
    const parked = deferred();
    release = () => parked.resolve();
    source.start((msg, delivery, from) => {
      handled.push(new WeakRef(msg));
      ack(source, delivery, from);
      const n = handled.length;
      if (n === stopAt) return parked.promise;
      // the intake's pace at full speed: go on only once 50 more have come (never empty)
      const target = Math.min(n + 50, total);
      if (arrived() >= target) return undefined;
      return new Promise<void>((resolve) => {
        const look = () => (arrived() >= target ? resolve() : setImmediate(look));
        look();
      });
    });
    await until(() => handled.length === stopAt, 30_000, `${stopAt} messages handed over`);
    await new Promise((r) => setImmediate(r));
    gc();
    const kept = handled.slice(0, -1).filter((ref) => ref.deref() !== undefined).length;
    parked.resolve();
    expect(kept, `${kept} of ${stopAt - 1} handled messages still reachable`).toBeLessThanOrEqual(
      MAX_ACK_PENDING,
    );
  }, 60_000);

  it('an instance whose intake is paused does not take the messages its peers on the durable could handle', async () => {
    nats = await startNats();
    // A: its intake paused (its spool full or failing); B: a healthy peer on the same durable
    source = await connectSource(nats.url, 'shared', 30_000);
    peer = await connectSource(nats.url, 'shared', 30_000);
    const paused = deferred();
    release = () => paused.resolve();
    let takenByA = 0;
    source.start(() => {
      takenByA += 1;
      return takenByA === 1 ? paused.promise : undefined;
    });
    const total = 3_000;
    await publishMany(nats.url, total);
    await until(() => takenByA === 1, 10_000, 'A holding its first message');
    const byB = new Set<number>();
    peer.start((_msg, delivery, from) => {
      ack(peer, delivery, from);
      byB.add(delivery.seq);
      return undefined;
    });
    // A may keep what it pulled before (one pull: max_messages 100) until its ack_wait (30 s)
    // ends; everything else is B's to take now (20 s: past A's hold limit, half of ack_wait)
    const outcome = await until(() => byB.size >= total - 100, 20_000, 'B taking the rest').then(
      () => 'taken',
      (error: Error) => error.message,
    );
    expect(outcome, `B took ${byB.size} of ${total}`).toBe('taken');
  }, 60_000);

  it('an intake that pauses briefly but often does not let copies pile up behind it', async () => {
    nats = await startNats();
    const ackWaitMs = 2_000;
    source = await connectSource(nats.url, 'slow', ackWaitMs);
    await publishMany(nats.url, 300);
    const handed: Array<{ seq: number; deliverySeq: number }> = [];
    const seen = new Set<number>();
    let slow = true;
    // every handling waits 100 ms (well under half of ack_wait): the intake admitting 10 a second
    source.start((msg, delivery, from) => {
      handed.push({ seq: delivery.seq, deliverySeq: deliverySeqOf(msg) });
      seen.add(delivery.seq);
      ack(source, delivery, from);
      return slow ? new Promise<void>((resolve) => setTimeout(resolve, 100)) : undefined;
    });
    await until(() => handed.length > 0, 10_000, 'the first message');
    // five ack_waits of that pace
    await new Promise((r) => setTimeout(r, 5 * ackWaitMs));
    const delivered = await deliveredSoFar(nats.url, 'slow');
    const handedBefore = handed.length;
    // then the intake keeps up: what the server had sent by now and is handed over after was held
    slow = false;
    await until(() => seen.size === 300, 20_000, 'every message handed over');
    const held = handed.slice(handedBefore).filter((h) => h.deliverySeq <= delivered).length;
    expect(held, `${delivered} deliveries, ${handedBefore} handed over slowly`).toBeLessThanOrEqual(
      MAX_ACK_PENDING,
    );
  }, 60_000);
});
