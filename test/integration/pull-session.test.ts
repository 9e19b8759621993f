import { AckPolicy, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, nanos, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAckSubject } from '../../src/ingress/delivery-facts.js';
import {
  PullSession,
  PullSessionError,
  type PulledHandler,
  type SessionTrouble,
} from '../../src/ingress/pull-session.js';
import { deferred } from '../../src/util/deferred.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { publishInOrder, utf8 } from '../../harness/nats-publish.js';

/**
 * PullSession against a real nats-server: the order of receipts, the bound on what it holds, the
 * statuses that end it, a pull lost to a restarted server, and the messages it lets go at stop().
 * Every wait is on a condition (the session's counters, the consumer's info), never a bare sleep.
 */

const STREAM = 'PS';

let nats: NatsServerHandle | undefined;
const sessions: PullSession[] = [];
const connections: NatsConnection[] = [];
/** handlings the tests hold: let go before the connections close */
const holds: Array<() => void> = [];

afterEach(async () => {
  for (const release of holds.splice(0)) release();
  for (const s of sessions.splice(0)) s.stop();
  for (const nc of connections.splice(0)) await nc.close().catch(() => undefined);
  await nats?.stop();
  nats = undefined;
});

async function until(ok: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // a JetStream API request can time out just after a server restart: ask again
  while (
    !(await Promise.resolve()
      .then(ok)
      .catch(() => false))
  ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const observe = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function client(url: string): Promise<NatsConnection> {
  const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  connections.push(nc);
  return nc;
}

async function setUp(url: string, durable: string, ackWaitMs = 60_000): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(await client(url), { timeout: 1_000 });
  await jsm.streams.add({ name: STREAM, subjects: ['ps.>'] }).catch(() => undefined);
  await jsm.consumers.add(STREAM, {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(ackWaitMs),
    max_ack_pending: 10_000,
  });
  return jsm;
}

function publish(url: string, count: number, from = 1): Promise<number[]> {
  return publishInOrder(
    { servers: url },
    Array.from({ length: count }, (_, i) => ({ subject: 'ps.m', payload: utf8(`m-${from + i}`) })),
  );
}

const seqOf = (msg: Msg): number => parseAckSubject(msg.reply ?? '')?.seq ?? -1;
const ack = (nc: NatsConnection, msg: Msg): void => nc.publish(msg.reply ?? '', '+ACK');

/** what the session holds: asked for plus received and not handed over (private, read for the bound) */
function held(session: PullSession): number {
  const s = session as unknown as { outstanding: number; waiting: unknown[]; next: number };
  return s.outstanding + s.waiting.length - s.next;
}

interface Started {
  session: PullSession;
  troubles: SessionTrouble[];
  letGo: Msg[];
}

function startSession(
  nc: NatsConnection,
  durable: string,
  handle: PulledHandler,
  opts: { maxMessages: number; expiresMs: number },
): Started {
  const troubles: SessionTrouble[] = [];
  const letGo: Msg[] = [];
  const session = new PullSession(
    nc,
    { stream: STREAM, consumer: durable, ...opts },
    {
      handle,
      // as the source does: come again once this session's pulls have expired
      letGo: (msg) => {
        letGo.push(msg);
        if (msg.reply) nc.publish(msg.reply, `-NAK {"delay":${nanos(opts.expiresMs)}}`);
      },
      troubled: (trouble) => troubles.push(trouble),
    },
  );
  sessions.push(session);
  session.start();
  return { session, troubles, letGo };
}

/** Tell the session of each reconnection, as JetStreamSource.watchStatus does; counts them. */
function wireReconnects(nc: NatsConnection, session: PullSession): { count: number } {
  const reconnects = { count: 0 };
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type !== 'reconnect') continue;
      reconnects.count++;
      session.reconnected();
    }
  })();
  return reconnects;
}

/** The consumer as the server sees it once every pull the session sent has been read. */
async function consumerInfo(nc: NatsConnection, jsm: JetStreamManager, durable: string) {
  await nc.flush();
  return jsm.consumers.info(STREAM, durable);
}

/** Nothing is on its way to the session: no pull waits, and every delivery reached it (or was let go). */
async function settled(
  nc: NatsConnection,
  jsm: JetStreamManager,
  durable: string,
  session: PullSession,
  letGo: Msg[] = [],
) {
  const info = await consumerInfo(nc, jsm, durable);
  return info.num_waiting === 0 && info.delivered.consumer_seq === session.received + letGo.length;
}

describe('PullSession on a real nats-server', () => {
  it('hands messages over in arrival order, receipts 1..n, with a handler that is sometimes async', async () => {
    nats = await startNats();
    await setUp(nats.url, 'order');
    await publish(nats.url, 300);
    const nc = await client(nats.url);
    const maxMessages = 20;
    const got: Array<{ receipt: number; seq: number }> = [];
    let maxHeld = 0;
    const { session } = startSession(
      nc,
      'order',
      (msg, receipt) => {
        got.push({ receipt, seq: seqOf(msg) });
        maxHeld = Math.max(maxHeld, held(session) + 1);
        ack(nc, msg);
        if (receipt % 7 === 0) return new Promise((r) => setTimeout(r, receipt % 3));
        if (receipt % 5 === 0) return Promise.resolve();
        return undefined;
      },
      { maxMessages, expiresMs: 2_000 },
    );
    await until(() => got.length === 300, 20_000, 'all 300 messages');
    expect(got.map((g) => g.receipt)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    // one session, first deliveries, nothing redelivered: arrival order is stream order
    expect(got.map((g) => g.seq)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(session.received).toBe(300);
    expect(maxHeld).toBeLessThanOrEqual(maxMessages);
  });

  it('a handling that never resolves holds at most maxMessages; the rest stays in the stream', async () => {
    nats = await startNats();
    const jsm = await setUp(nats.url, 'held');
    await publish(nats.url, 400);
    const nc = await client(nats.url);
    const maxMessages = 50;
    const gate = deferred();
    holds.push(() => gate.resolve());
    const handled: number[] = [];
    const { session } = startSession(
      nc,
      'held',
      (msg) => {
        handled.push(seqOf(msg));
        ack(nc, msg);
        return handled.length === 1 ? gate.promise : undefined;
      },
      { maxMessages, expiresMs: 2_000 },
    );
    await until(() => session.received >= maxMessages, 10_000, 'a first pull');
    await until(() => settled(nc, jsm, 'held', session), 10_000, 'no pull waiting');
    const info = await consumerInfo(nc, jsm, 'held');
    expect(handled).toEqual([1]);
    expect(session.received).toBe(maxMessages);
    expect(held(session) + 1).toBeLessThanOrEqual(maxMessages);
    expect(info.num_pending).toBe(400 - maxMessages);
    // and after two pull lives (heartbeat checks included: an observation window, not a wait)
    await observe(2 * 2_000);
    expect(session.received).toBe(maxMessages);
    expect((await consumerInfo(nc, jsm, 'held')).num_pending).toBe(400 - maxMessages);
    // let go: the rest comes, in order
    gate.resolve();
    await until(() => handled.length === 400, 20_000, 'the rest once the handling resolves');
    expect(handled).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
  });

  it('a consumer deleted under a waiting pull ends the session with a 409', async () => {
    nats = await startNats();
    const jsm = await setUp(nats.url, 'gone');
    const nc = await client(nats.url);
    const { session, troubles } = startSession(nc, 'gone', () => undefined, {
      maxMessages: 10,
      expiresMs: 10_000,
    });
    await until(async () => (await consumerInfo(nc, jsm, 'gone')).num_waiting === 1, 5_000, 'a pull waiting');
    await jsm.consumers.delete(STREAM, 'gone');
    const ended = await Promise.race([
      session.ended,
      new Promise<string>((r) => setTimeout(() => r('not ended'), 5_000)),
    ]);
    expect(ended).toBeInstanceOf(PullSessionError);
    expect((ended as PullSessionError).status).toBe(409);
    expect((ended as PullSessionError).message).toBe('consumer deleted');
    expect(troubles).toContain('consumer_deleted');
  });

  it('a pull lost to a restarted server is pulled again after missed heartbeats', async () => {
    nats = await startNats();
    const jsm = await setUp(nats.url, 'lost');
    await publish(nats.url, 5);
    const nc = await client(nats.url);
    const handled: number[] = [];
    const { troubles } = startSession(
      nc,
      'lost',
      (msg) => {
        handled.push(seqOf(msg));
        ack(nc, msg);
      },
      { maxMessages: 10, expiresMs: 2_000 },
    );
    await until(() => handled.length === 5, 5_000, 'the first five');
    await until(async () => (await consumerInfo(nc, jsm, 'lost')).num_waiting >= 1, 5_000, 'a pull waiting');
    // the session is not told of the reconnection: only the heartbeats can show the pull is gone
    await nats.restart();
    await until(() => troubles.includes('heartbeats_missed'), 15_000, 'heartbeats missed');
    await publish(nats.url, 5, 6);
    await until(() => handled.length === 10, 10_000, 'messages published after the restart');
    expect(handled).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('messages let go at stop() come again to a new session, after the pull life', async () => {
    nats = await startNats();
    await setUp(nats.url, 'again');
    await publish(nats.url, 30);
    const nc = await client(nats.url);
    const expiresMs = 2_000;
    const gate = deferred();
    holds.push(() => gate.resolve());
    const first = startSession(nc, 'again', () => gate.promise, { maxMessages: 50, expiresMs });
    await until(() => first.session.received === 30, 5_000, 'all 30 in the first session');
    first.session.stop();
    const stoppedAt = Date.now();
    expect(await first.session.ended).toBeUndefined();
    // the one in the handler is neither handled nor let go; the 29 behind it are let go
    expect(first.letGo.map(seqOf)).toEqual(Array.from({ length: 29 }, (_, i) => i + 2));

    const again: Array<{ seq: number; count: number; at: number }> = [];
    startSession(
      nc,
      'again',
      (msg) => {
        const d = parseAckSubject(msg.reply ?? '');
        again.push({ seq: d?.seq ?? -1, count: d?.deliveryCount ?? -1, at: Date.now() });
        ack(nc, msg);
      },
      { maxMessages: 50, expiresMs },
    );
    await until(() => again.length >= 29, 15_000, 'the 29 let go');
    expect(again.map((a) => a.seq).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 29 }, (_, i) => i + 2),
    );
    expect(again.every((a) => a.count === 2)).toBe(true);
    // not before the stopped session's pulls could have expired (a little slack for the clocks)
    expect(Math.min(...again.map((a) => a.at)) - stoppedAt).toBeGreaterThanOrEqual(expiresMs - 100);
  });

  it('an outage with a pull waiting does not leave pulls piling up for the reconnection', async () => {
    nats = await startNats();
    const jsm = await setUp(nats.url, 'outage');
    const nc = await client(nats.url);
    const maxMessages = 50;
    const gate = deferred();
    holds.push(() => gate.resolve());
    let calls = 0;
    const { session, troubles } = startSession(
      nc,
      'outage',
      () => (++calls === 1 ? gate.promise : undefined),
      {
        maxMessages,
        expiresMs: 2_000,
      },
    );
    const reconnects = wireReconnects(nc, session);
    await until(
      async () => (await consumerInfo(nc, jsm, 'outage')).num_waiting === 1,
      5_000,
      'a pull waiting',
    );
    await nats.stop();
    // an outage of six heartbeat periods (an observation window: the result must not depend on it)
    await observe(6_000);
    await nats.restart();
    await until(() => reconnects.count === 1, 10_000, 'the reconnection');
    await until(
      async () => (await consumerInfo(nc, jsm, 'outage')).num_waiting >= 1,
      5_000,
      'a pull waiting',
    );
    const waitingAfter = (await consumerInfo(nc, jsm, 'outage')).num_waiting;
    await publish(nats.url, 400);
    await until(() => session.received >= maxMessages, 10_000, 'a pull after the outage');
    await until(() => settled(nc, jsm, 'outage', session), 10_000, 'no pull waiting');
    expect(
      { received: session.received, waitingAfter },
      `troubles during the outage: ${troubles.join(', ')}`,
    ).toEqual({ received: maxMessages, waitingAfter: 1 });
    expect((await consumerInfo(nc, jsm, 'outage')).num_pending).toBe(400 - maxMessages);
  });

  it('a reconnection to the same server (the pull may live on there) does not double what is asked for', async () => {
    nats = await startNats();
    const jsm = await setUp(nats.url, 'blip');
    const nc = await client(nats.url);
    const maxMessages = 50;
    const gate = deferred();
    holds.push(() => gate.resolve());
    let calls = 0;
    const { session, letGo } = startSession(nc, 'blip', () => (++calls === 1 ? gate.promise : undefined), {
      maxMessages,
      expiresMs: 2_000,
    });
    const reconnects = wireReconnects(nc, session);
    await until(async () => (await consumerInfo(nc, jsm, 'blip')).num_waiting === 1, 5_000, 'a pull waiting');
    await nc.reconnect();
    await until(() => reconnects.count === 1, 10_000, 'the reconnection');
    await publish(nats.url, 400);
    await until(() => session.received >= maxMessages, 10_000, 'a pull after the reconnection');
    await until(() => settled(nc, jsm, 'blip', session, letGo), 10_000, 'no pull waiting');
    // what the pull from before the reconnection still sends is let go, not held
    expect(session.received).toBe(maxMessages);
    expect(letGo.length).toBeLessThanOrEqual(maxMessages);
    expect((await consumerInfo(nc, jsm, 'blip')).num_pending).toBe(400 - maxMessages - letGo.length);
  });
});
