import { AckPolicy, DeliverPolicy, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { Emitter } from '../../src/emitter.js';
import { startServer, type RunningServer } from '../../src/observe/server.js';
import { createLogger } from '../../src/util/logger.js';
import { createMetrics } from '../../src/observe/metrics.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { testEnv } from '../support/env.js';
import { deliveredKeys, publishAll, tempDir, type Published } from '../../harness/workload.js';

/**
 * Issue 12, items 2 and 5: the JetStream stream and the durable consumer deleted (and re-created)
 * under a running emitter. A real nats-server, LevelDB and HTTP sink; the emitter embedded with
 * its HTTP server so /ready is read as an operator reads it.
 */

interface Running {
  emitter: Emitter;
  server: RunningServer;
  logs: string[];
}

let nats: NatsServerHandle | undefined;
let sink: Sink | undefined;
let running: Running | undefined;
let spool: { path: string; remove(): Promise<void> } | undefined;

afterEach(async () => {
  await running?.server.close();
  await running?.emitter.close();
  await Promise.all([nats?.stop(), sink?.close()]);
  await spool?.remove();
  running = undefined;
});

async function setUp(
  name: string,
  extra?: Record<string, string>,
): Promise<{ nats: NatsServerHandle; sink: Sink; run: Running }> {
  [nats, sink, spool] = await Promise.all([startNats(), startSink(), tempDir(name)]);
  const config = loadConfig(testEnv({ natsUrl: nats.url, sinkUrl: sink.url, spoolDir: spool.path, extra }));
  const logs: string[] = [];
  const logger = createLogger('info', { write: (line: string) => void logs.push(line) });
  const emitter = new Emitter(config, { logger });
  await emitter.start();
  const status = emitter.statusSource();
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    status,
    events: emitter.events,
    metrics: createMetrics(emitter.events, () => status.snapshot(), { defaultMetrics: false }),
    debug: false,
    logger,
  });
  running = { emitter, server, logs };
  return { nats, sink, run: running };
}

/** Generic events, one key each (sampled nodes of different prefixes may share keys). */
function findings(count: number, prefix: string): Published[] {
  return Array.from({ length: count }, (_, i) => ({
    subject: 'approved.finding',
    key: `v:${prefix}${i}`,
    data: { id: `${prefix}${i}`, severity: 'low' },
  }));
}

interface Ready {
  status: number;
  failing: string[];
  detail?: string;
}

async function getReady(server: RunningServer): Promise<Ready> {
  const res = await fetch(`${server.url}/ready`);
  const body = (await res.json()) as { failing?: string[]; checks?: Record<string, { detail?: string }> };
  return { status: res.status, failing: body.failing ?? [], detail: body.checks?.consumer_bound?.detail };
}

/** Poll /ready until `ok`, collecting every answer on the way. */
async function readyUntil(
  server: RunningServer,
  ok: (r: Ready) => boolean,
  deadlineMs: number,
): Promise<Ready[]> {
  const seen: Ready[] = [];
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const ready = await getReady(server);
    seen.push(ready);
    if (ok(ready)) return seen;
    if (Date.now() > deadline) throw new Error(`/ready never matched: ${JSON.stringify(seen.slice(-3))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves once every message's key was delivered; returns how often each key was. */
async function allDelivered(
  target: Sink,
  messages: Published[],
  timeoutMs = 30_000,
): Promise<Map<string, number>> {
  const wanted = messages.map((m) => m.key);
  await target
    .waitFor((rs) => {
      const got = new Set(deliveredKeys(rs));
      return wanted.every((k) => got.has(k));
    }, timeoutMs)
    .catch(() => {
      const got = new Set(deliveredKeys(target.requests));
      const missing = wanted.filter((k) => !got.has(k));
      throw new Error(
        `${missing.length} of ${wanted.length} never delivered, e.g. ${missing.slice(0, 3).join(', ')}`,
      );
    });
  const counts = new Map<string, number>();
  for (const key of deliveredKeys(target.requests)) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

function logged(run: Running, pattern: RegExp): boolean {
  return run.logs.some((line) => pattern.test((JSON.parse(line) as { msg?: string }).msg ?? ''));
}

async function waitLogged(run: Running, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!logged(run, pattern)) {
    if (Date.now() > deadline) throw new Error(`no log line matching ${pattern}:\n${run.logs.join('')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The stream and the durable as an operator re-creates them (the emitter's own settings). */
async function recreateStreamAndDurable(url: string, withDurable: boolean): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete('APPROVED');
    await jsm.streams.add({ name: 'APPROVED', subjects: ['approved.>'], storage: StorageType.File });
    if (withDurable) {
      await jsm.consumers.add('APPROVED', {
        durable_name: 'transmitter',
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
      });
    }
  } finally {
    await nc.close();
  }
}

async function withJsm<T>(
  url: string,
  work: (jsm: Awaited<ReturnType<typeof jetstreamManager>>) => Promise<T>,
): Promise<T> {
  const nc = await connect({ servers: url });
  try {
    return await work(await jetstreamManager(nc));
  } finally {
    await nc.close();
  }
}

async function settledConsumer(
  emitter: Emitter,
): Promise<{ pending: number; ackPending: number } | undefined> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const state = await emitter.statusSource().jetstreamPending?.();
    if ((state?.pending === 0 && state.ackPending === 0) || Date.now() > deadline) return state;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the stream and the durable consumer replaced under a running emitter', () => {
  it('100 published, APPROVED deleted and re-created with the durable, 150 published: all 250 arrive', async () => {
    const { nats, sink, run } = await setUp('stream-recreated');
    const before = findings(100, 'old');
    await publishAll(nats.url, before);
    await allDelivered(sink, before);
    await run.emitter.wait();

    await recreateStreamAndDurable(nats.url, true);
    // the new stream's sequences 1..150 cover the old stream's 1..100
    const after = findings(150, 'new');
    await publishAll(nats.url, after);
    const counts = await allDelivered(sink, [...before, ...after]);
    expect(counts.size).toBe(250);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    await waitLogged(run, /APPROVED was deleted and re-created/, 10_000);
    // nothing was acknowledged without its batch: the new consumer has nothing left
    expect(await settledConsumer(run.emitter)).toMatchObject({ pending: 0, ackPending: 0 });
    await run.emitter.wait();
    expect(run.emitter.stats.spool.batches).toBe(0);
  });

  it("APPROVED re-created while a batch of its messages is open: the new stream's 1..100 are not taken for the old ones", async () => {
    // a batch stays open 10 s: the new stream's first messages join the old stream's in it
    const { nats, sink, run } = await setUp('stream-recreated-open', {
      TRANSMITTER_BATCH_INTERVAL_S: '10',
      TRANSMITTER_NATS_ACK_WAIT_S: '60',
    });
    const before = findings(100, 'old');
    await publishAll(nats.url, before);
    const deadline = Date.now() + 10_000;
    while (run.emitter.stats.received < 100 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(sink.requests).toHaveLength(0);
    await recreateStreamAndDurable(nats.url, true);
    const after = findings(150, 'new');
    await publishAll(nats.url, after);
    const counts = await allDelivered(sink, [...before, ...after], 40_000);
    expect(counts.size).toBe(250);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  }, 60_000);

  it('the durable consumer deleted: logged, /ready 503 (consumer_bound) while missing, re-created, every message arrives', async () => {
    const { nats, sink, run } = await setUp('consumer-deleted');
    await readyUntil(run.server, (r) => r.status === 200, 10_000);
    const before = findings(50, 'before');
    await publishAll(nats.url, before);
    await allDelivered(sink, before);

    // every one acknowledged, and the emitter has seen the ack floor (it reads it with the counts)
    expect(await settledConsumer(run.emitter)).toMatchObject({ pending: 0, ackPending: 0, ackFloor: 50 });
    await withJsm(nats.url, (jsm) => jsm.consumers.delete('APPROVED', 'transmitter'));
    const during = findings(50, 'during');
    await publishAll(nats.url, during);
    const down = await readyUntil(run.server, (r) => r.status === 503, 5_000);
    expect(down.at(-1)?.failing).toContain('consumer_bound');
    expect(down.at(-1)?.detail).toMatch(/deleted/);
    await waitLogged(
      run,
      /^durable consumer transmitter on stream APPROVED was deleted; re-creating$/,
      5_000,
    );
    await readyUntil(run.server, (r) => r.status === 200, 10_000);
    // re-created after the old one's ack floor: the stream is not sent again from its start
    const recreated = await withJsm(nats.url, (jsm) => jsm.consumers.info('APPROVED', 'transmitter'));
    expect(recreated.config).toMatchObject({ deliver_policy: 'by_start_sequence', opt_start_seq: 51 });

    const after = findings(50, 'after');
    await publishAll(nats.url, after);
    const counts = await allDelivered(sink, [...before, ...during, ...after]);
    expect(counts.size).toBe(150);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(await settledConsumer(run.emitter)).toMatchObject({ pending: 0, ackPending: 0 });
  });

  it('the stream deleted and not re-created by anyone: the emitter re-creates it and consumes again', async () => {
    const { nats, sink, run } = await setUp('stream-deleted');
    const before = findings(60, 'before');
    await publishAll(nats.url, before);
    await allDelivered(sink, before);

    await withJsm(nats.url, (jsm) => jsm.streams.delete('APPROVED'));
    const down = await readyUntil(run.server, (r) => r.status === 503, 5_000);
    expect(down.at(-1)?.failing).toContain('consumer_bound');
    await waitLogged(
      run,
      /^stream APPROVED was deleted; re-creating it and durable consumer transmitter$/,
      5_000,
    );
    await readyUntil(run.server, (r) => r.status === 200, 10_000);
    const info = await withJsm(nats.url, (jsm) => jsm.streams.info('APPROVED'));
    expect(info.config.subjects).toEqual(['approved.>']);

    const after = findings(100, 'after');
    await publishAll(nats.url, after);
    const counts = await allDelivered(sink, [...before, ...after]);
    expect(counts.size).toBe(160);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(await settledConsumer(run.emitter)).toMatchObject({ pending: 0, ackPending: 0 });
  });
});
