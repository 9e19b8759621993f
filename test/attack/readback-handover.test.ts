import { readdir, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unacked, until } from '../../harness/emitter-probe.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { spawnEmitter } from '../../harness/process.js';
import { allDelivered, publishAll, sampleMessages } from '../../harness/workload.js';
import { testEnv } from '../support/env.js';
import { DeliveryQueue } from '../../src/delivery/queue.js';
import type { HeldBodies } from '../../src/delivery/held-bodies.js';
import { Intake } from '../../src/intake/intake.js';
import { EmitterEvents } from '../../src/observe/events.js';
import { countBatchReads, freshBatch } from '../../harness/batch-records.js';
import { Spool, type BatchState } from '../../src/spool/spool.js';
import { createLogger } from '../../src/util/logger.js';
import { Redactor } from '../../src/util/redact.js';
import { useLoopbackDestination } from '../support/loopback-destination.js';
import { tempDir } from '../../harness/workload.js';
import { approvedEvent, intakeOptions, intakeWithRedelivery } from '../../harness/intake-wiring.js';

/**
 * Attacks on the hand-over of just-durable batches to the delivery queue (bodies kept for the
 * first attempt, deletes and fresh puts that count without reading): real LevelDB spools, a real
 * loopback HTTP sink. Every test asserts that each batch goes out exactly once, with the bytes the
 * spool holds, and that the spool's counts end where its records are.
 */

const destination = useLoopbackDestination();

async function openSpool(onReopened?: () => void): Promise<Spool> {
  const dir = await tempDir('readback-attack');
  const spool = await Spool.open(dir.path, { onReopened: () => onReopened?.() });
  destination.cleanup(
    () => dir.remove(),
    () => spool.close(),
  );
  return spool;
}

function queueOver(spool: Spool, concurrency = 1): DeliveryQueue {
  const queue = new DeliveryQueue({
    spool,
    transport: destination.transport,
    logger: createLogger('silent'),
    events: new EmitterEvents(),
    policy: { maxAttempts: 5, initialDelayMs: 50, multiplier: 2, maxDelayMs: 1_000, jitter: 0 },
    circuit: { failureThreshold: 50, resetTimeoutMs: 200 },
    concurrency,
    compression: 'none',
    bodyFormat: 'batch',
    redactor: new Redactor([]),
  });
  destination.cleanup(() => queue.stop());
  return queue;
}

const heldOf = (queue: DeliveryQueue) => (queue as unknown as { held: HeldBodies }).held;

/** Fail the handle's current generation (as a failed LevelDB operation does) and wait for its reopen. */
async function forceReopen(spool: Spool): Promise<void> {
  const before = spool.handle.reopens;
  spool.handle.fail(spool.handle.generation, new Error('EIO: injected failure'));
  const deadline = Date.now() + 5_000;
  while (spool.handle.reopens === before) {
    if (Date.now() > deadline) throw new Error('the spool did not reopen');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** What the spool's records add up to, read from the records themselves. */
async function recordsTally(spool: Spool): Promise<{ count: number; bytes: number }> {
  const states = await spool.batches.list();
  return { count: states.length, bytes: states.reduce((n, s) => n + s.storedBytes, 0) };
}

const batchIdsSent = () =>
  destination.sink.requests.map((r) => (r.body as { batch_id: string } | undefined)?.batch_id);

function expectEachOnce(sent: Array<string | undefined>, ids: string[]): void {
  expect([...sent].sort()).toEqual([...ids].sort());
}

describe('attack: hand-over of just-durable batches (11c486b, 7dbcb0f, 5b7330f)', () => {
  it('a reopen between the hand-over and the first attempt: the body is read back, sent once, counts end at zero', async () => {
    const spool = await openSpool();
    const reads = countBatchReads(spool);
    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
    destination.sink.respondWith(async (_req, index) => {
      if (index === 0) await firstHeld;
      return { status: 200 };
    });
    const queue = queueOver(spool);
    const batches = [await freshBatch(3), await freshBatch(3)];
    for (const { state, body } of batches) {
      queue.expectHandOver(state.id);
      const written = await spool.batches.put(state, body, [], { fresh: true });
      queue.handOver({ state, body, generation: written.generation });
    }
    // the first batch holds the only permit; the second waits with its handed-over body
    await destination.sink.waitFor((r) => r.length >= 1, 5_000);
    await forceReopen(spool);
    expect(spool.usage.batches).toEqual(await recordsTally(spool));
    releaseFirst();
    await destination.sink.waitFor((r) => r.length >= 2, 5_000);
    await queue.idle();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expectEachOnce(
      batchIdsSent(),
      batches.map((b) => b.state.id),
    );
    // the second batch's first attempt came after the reopen: it read the spool back
    expect(reads.get).toBe(1);
    const second = batches[1];
    expect(destination.sink.requests[1]?.raw.equals(second?.body ?? Buffer.alloc(0))).toBe(true);
    expect(await spool.batches.ids()).toEqual([]);
    expect(spool.usage.batches).toEqual({ count: 0, bytes: 0 });
    expect(heldOf(queue).heldCount).toBe(0);
    expect(heldOf(queue).heldBytes).toBe(0);
  });

  it('a rewrite after a reopen (not fresh) is counted once, and its hand-over deletes it to zero', async () => {
    const spool = await openSpool();
    destination.sink.respondWith(() => ({ status: 200 }));
    const queue = queueOver(spool);
    const { state, body } = await freshBatch(2);
    queue.expectHandOver(state.id);
    await spool.batches.put(state, body, [], { fresh: true });
    // the write landed, then the handle failed: the intake writes it again on the new generation
    await forceReopen(spool);
    const written = await spool.batches.put(state, body, []);
    expect(spool.usage.batches).toEqual({ count: 1, bytes: state.storedBytes });
    expect(spool.usage.batches).toEqual(await recordsTally(spool));
    queue.handOver({ state, body, generation: written.generation });
    await destination.sink.waitFor((r) => r.length >= 1, 5_000);
    await queue.idle();
    queue.rescan();
    await queue.idle();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expectEachOnce(batchIdsSent(), [state.id]);
    expect(spool.usage.batches).toEqual({ count: 0, bytes: 0 });
    expect(await spool.batches.ids()).toEqual([]);
  });

  it('a handed-over batch answered 413 is split: each half goes out once, the parent never again, counts end at zero', async () => {
    const spool = await openSpool();
    destination.sink.respondWith((req) => {
      const doc = req.body as { events: unknown[] };
      return doc.events.length > 2 ? { status: 413 } : { status: 200 };
    });
    const queue = queueOver(spool);
    const { state, body } = await freshBatch(4);
    queue.expectHandOver(state.id);
    const written = await spool.batches.put(state, body, [], { fresh: true });
    queue.handOver({ state, body, generation: written.generation });
    await destination.sink.waitFor((r) => r.length >= 3, 5_000);
    await queue.idle();
    queue.rescan();
    await queue.idle();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const sent = destination.sink.requests.map((r) => r.body as { batch_id: string; events: unknown[] });
    expect(sent).toHaveLength(3);
    expect(sent[0]?.batch_id).toBe(state.id);
    const halves = sent.slice(1);
    expect(new Set(halves.map((h) => h.batch_id)).size).toBe(2);
    expect(halves.every((h) => h.batch_id !== state.id && h.events.length === 2)).toBe(true);
    expect(spool.usage.batches).toEqual({ count: 0, bytes: 0 });
    expect(await spool.batches.ids()).toEqual([]);
  });

  it('held bodies stay within 16 MiB behind a slow destination, all are let go, each batch goes out once as spooled', async () => {
    const spool = await openSpool();
    const queue = queueOver(spool);
    const held = heldOf(queue);
    let peak = 0;
    let allHanded!: () => void;
    const handedOver = new Promise<void>((resolve) => (allHanded = resolve));
    destination.sink.respondWith(async () => {
      peak = Math.max(peak, held.heldBytes);
      // the first request stays on the wire until every batch was handed over
      await handedOver;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return { status: 200 };
    });
    const batches: Array<{ state: BatchState; body: Buffer }> = [];
    // 10 bodies of ~3 MiB: 30 MiB handed over while the first is still on the wire
    for (let i = 0; i < 10; i++) {
      const batch = await freshBatch(3, 1 << 20);
      batches.push(batch);
      queue.expectHandOver(batch.state.id);
      const written = await spool.batches.put(batch.state, batch.body, [], { fresh: true });
      queue.handOver({ ...batch, generation: written.generation });
      peak = Math.max(peak, held.heldBytes);
    }
    allHanded();
    await destination.sink.waitFor((r) => r.length >= 10, 20_000);
    await queue.idle();
    await new Promise((resolve) => setTimeout(resolve, 50));
    // some were held (at least 4 bodies of ~3 MiB), never more than the budget
    expect(peak).toBeGreaterThan(12 * 1024 * 1024);
    expect(peak).toBeLessThanOrEqual(16 * 1024 * 1024);
    expect(held.heldCount).toBe(0);
    expect(held.heldBytes).toBe(0);
    expectEachOnce(
      batchIdsSent(),
      batches.map((b) => b.state.id),
    );
    const byId = new Map(batches.map((b) => [b.state.id, b.body]));
    for (const r of destination.sink.requests) {
      const id = (r.body as { batch_id: string }).batch_id;
      expect(r.raw.equals(byId.get(id) ?? Buffer.alloc(0))).toBe(true);
    }
    expect(spool.usage.batches).toEqual({ count: 0, bytes: 0 });
  }, 30_000);
});

describe('attack: the intake and the queue wired as the emitter wires them, with handle failures during writes', () => {
  it('every batch acknowledged goes out exactly once and the counts end at zero, though writes keep landing on failed generations', async () => {
    const wired: { queue?: DeliveryQueue } = {};
    const spool = await openSpool(() => wired.queue?.rescan());
    destination.sink.respondWith(async () => {
      await new Promise((resolve) => setTimeout(resolve, 2));
      return { status: 200 };
    });
    const queue = queueOver(spool, 2);
    wired.queue = queue;
    queue.start();
    // every third write lands, then its generation fails (a later operation's error): the intake
    // sees the write unsound and writes it again after the reopen
    const put = spool.batches.put.bind(spool.batches);
    let puts = 0;
    spool.batches.put = async (...args: Parameters<Spool['batches']['put']>) => {
      const written = await put(...args);
      puts += 1;
      if (puts % 3 === 0) spool.handle.fail(written.generation, new Error('EIO: injected failure'));
      return written;
    };
    const sealed: string[] = [];
    const intake = new Intake(
      intakeOptions(spool, {
        maxItems: 2,
        onWriting: (id) => queue.expectHandOver(id),
        onWriteGivenUp: (id) => queue.handOverGivenUp(id),
        onDurable: (state, { body, written }) => {
          sealed.push(state.id);
          queue.handOver({ state, body, generation: written.generation });
        },
      }),
    );
    destination.cleanup(() => intake.close());
    const accepted: Array<Promise<void>> = [];
    for (let n = 1; n <= 60; n++) {
      accepted.push(intake.offer(approvedEvent(n)));
      if (n % 4 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(accepted);
    await intake.flush();
    expect(spool.handle.reopens).toBeGreaterThan(3);
    await destination.sink.waitFor((r) => r.length >= sealed.length, 20_000);
    await queue.idle();
    queue.rescan();
    await queue.idle();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sealed).toHaveLength(30);
    expectEachOnce(batchIdsSent(), sealed);
    const events = destination.sink.requests.flatMap(
      (r) => (r.body as { events: Array<{ seq: number }> }).events,
    );
    expect(events.map((e) => e.seq).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 60 }, (_, i) => i + 1),
    );
    expect(await spool.batches.ids()).toEqual([]);
    expect(spool.usage.batches).toEqual({ count: 0, bytes: 0 });
    expect(heldOf(queue).heldCount).toBe(0);
  }, 30_000);
});

describe('attack: a redelivery looked up while the batch holding it became durable (09d0707), on a real spool', () => {
  it('the index read began before the batch was written and answers after it is durable: the batch is found, not taken again', async () => {
    const { intake, spool, redelivery, close } = await intakeWithRedelivery(2);
    destination.cleanup(close);
    await redelivery.rebind('S@1');
    const source = (seq: number) => ({ seq, incarnation: 'S@1', ack: () => undefined });
    // the first index read runs on LevelDB at once, its answer is held until released
    const batchOf = spool.seqIndex.batchOf.bind(spool.seqIndex);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let readDone!: () => void;
    const firstRead = new Promise<void>((resolve) => (readDone = resolve));
    let reads = 0;
    spool.seqIndex.batchOf = async (seq: number) => {
      reads += 1;
      const answer = await batchOf(seq);
      if (reads === 1) {
        readDone();
        await released;
      }
      return answer;
    };
    const first = intake.offer(approvedEvent(1), source(1));
    const lookup = redelivery.findSeq(1, 'S@1');
    await firstRead;
    // the batch holding seq 1 is sealed, written and durable while that read's answer is out
    await Promise.all([first, intake.offer(approvedEvent(2), source(2))]);
    release();
    const found = await lookup;
    expect(found).toBeDefined();
    expect(await spool.batches.getState(found?.batchId ?? '')).toMatchObject({ itemCount: 2 });
    expect(reads).toBe(2);
  });
});

describe('attack: a write-ahead log cut in the middle under a spool taking concurrent writes (fcb1884)', () => {
  it('every write that resolved is there after a close and a fresh open', async () => {
    const dir = await tempDir('readback-attack');
    destination.cleanup(() => dir.remove());
    let spool = await Spool.open(dir.path);
    const resolved: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { state, body } = await freshBatch(20, 200);
      await spool.batches.put(state, body, [], { fresh: true });
      resolved.push(state.id);
    }
    const logs = (await readdir(dir.path)).filter((name) => /^\d+\.log$/.test(name));
    expect(logs).toHaveLength(1);
    const log = join(dir.path, logs[0] ?? '');
    const size = (await stat(log)).size;
    // a clean-up cuts the live log to half; LevelDB goes on appending at its own offset
    await truncate(log, Math.floor(size / 2));
    const writes = await Promise.allSettled(
      Array.from({ length: 12 }, async () => {
        const { state, body } = await freshBatch(20, 200);
        await spool.batches.put(state, body, [], { fresh: true });
        return state.id;
      }),
    );
    for (const w of writes) if (w.status === 'fulfilled') resolved.push(w.value);
    await spool.close();
    spool = await Spool.open(dir.path);
    destination.cleanup(() => spool.close());
    const held = new Set(await spool.batches.ids());
    expect(resolved.filter((id) => !held.has(id))).toEqual([]);
    expect(spool.usage.batches.count).toBe(held.size);
  });
});

describe('attack: a running emitter whose write-ahead log is cut in the middle, then written on', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('every acknowledged message is delivered after a SIGTERM and a restart', async () => {
    const sink = destination.sink;
    const dir = await tempDir('attack-log-cut');
    const spoolDir = join(dir.path, 'spool');
    const durable = 'attack-log-cut';
    const env = testEnv({
      natsUrl: nats.url,
      sinkUrl: sink.url,
      spoolDir,
      extra: {
        TRANSMITTER_NATS_DURABLE: durable,
        TRANSMITTER_BATCH_SIZE: '50',
        TRANSMITTER_SHUTDOWN_TIMEOUT_S: '2',
      },
    });
    const before = sampleMessages(200, durable);
    const after = sampleMessages(200, `${durable}-after`);
    const first = spawnEmitter(env);
    try {
      await sink.down();
      await first.ready;
      await publishAll(nats.url, before);
      await until(async () => (await unacked(nc, durable)) === 0, 20_000, 'every message spooled and acked');
      // a clean-up cuts the live log to half its size; the emitter goes on spooling at once
      for (const name of await readdir(spoolDir)) {
        if (!name.endsWith('.log')) continue;
        const path = join(spoolDir, name);
        await truncate(path, Math.floor((await stat(path)).size / 2));
      }
      await publishAll(nats.url, after);
      await until(
        async () => (await unacked(nc, durable)) === 0,
        20_000,
        'the later messages spooled and acked',
      );
      first.kill('SIGTERM');
      await first.exited;

      await sink.up();
      const second = spawnEmitter(env);
      try {
        // on a failure, what both emitters logged (the cut seen or not, the heal, the recovery)
        await sink.waitFor(allDelivered([...before, ...after]), 30_000).catch((error: Error) => {
          throw new Error(
            `${error.message}\n--- first emitter:\n${first.output()}\n--- second:\n${second.output()}`,
          );
        });
      } finally {
        expect(await second.stop()).toBe(0);
      }
    } finally {
      first.kill('SIGKILL');
      await sink.up();
      await dir.remove();
    }
  }, 90_000);
});
