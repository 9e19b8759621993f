import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it, vi } from 'vitest';
import { DeliveryQueue } from '../../src/delivery/queue.js';
import { EmitterEvents, type EmitterEventMap } from '../../src/observe/events.js';
import { countBatchReads, freshBatch } from '../../harness/batch-records.js';
import { Spool, type BatchState } from '../../src/spool/spool.js';
import { createLogger, type Logger } from '../../src/util/logger.js';
import { Redactor } from '../../src/util/redact.js';
import { useLoopbackDestination } from '../support/loopback-destination.js';
import { tempDir } from '../../harness/workload.js';

/** The delivery queue over a real spool and a loopback sink: what each attempt reports and records. */

const destination = useLoopbackDestination();

async function oneSpooledBatch(): Promise<{ spool: Spool; state: BatchState }> {
  const dir = await tempDir('delivery-queue');
  const spool = await Spool.open(dir.path);
  destination.cleanup(
    () => dir.remove(),
    () => spool.close(),
  );
  const { state, body } = await freshBatch();
  await spool.batches.put(state, body);
  return { spool, state };
}

/** An empty spool whose batch reads (state or body) are counted. */
async function countedSpool(): Promise<{ spool: Spool; reads: { get: number; getState: number } }> {
  const dir = await tempDir('delivery-queue');
  const spool = await Spool.open(dir.path);
  destination.cleanup(
    () => dir.remove(),
    () => spool.close(),
  );
  return { spool, reads: countBatchReads(spool) };
}

function queueOver(
  spool: Spool,
  events: EmitterEvents,
  maxAttempts: number,
  logger: Logger = createLogger('silent'),
): DeliveryQueue {
  const queue = new DeliveryQueue({
    spool,
    transport: destination.transport,
    logger,
    events,
    policy: { maxAttempts, initialDelayMs: 100, multiplier: 2, maxDelayMs: 5_000, jitter: 0 },
    circuit: { failureThreshold: 50, resetTimeoutMs: 200 },
    concurrency: 1,
    compression: 'none',
    bodyFormat: 'batch',
    redactor: new Redactor([]),
  });
  destination.cleanup(() => queue.stop());
  return queue;
}

function collect<K extends keyof EmitterEventMap>(events: EmitterEvents, name: K): Array<EmitterEventMap[K]> {
  const seen: Array<EmitterEventMap[K]> = [];
  events.on(name, (e) => seen.push(e));
  return seen;
}

describe('DeliveryQueue', () => {
  it("reports each attempt with the sender's round trip and delivers once the sink accepts", async () => {
    const { spool, state } = await oneSpooledBatch();
    destination.sink.respondWith(async (_req, index) => {
      await new Promise((resolve) => setTimeout(resolve, 120));
      return index === 0 ? { status: 503 } : { status: 200, body: { ok: true } };
    });
    const events = new EmitterEvents();
    const attempts = collect(events, 'attempt');
    const queue = queueOver(spool, events, 3);
    queue.start();
    await destination.sink.waitFor((r) => r.length >= 2, 5_000);
    await queue.idle();
    expect(attempts.map((a) => [a.batchId, a.attempt, a.outcome.kind])).toEqual([
      [state.id, 1, 'retryable'],
      [state.id, 2, 'success'],
    ]);
    for (const a of attempts) {
      expect(a.durationMs).toBeGreaterThanOrEqual(110);
      expect(a.durationMs).toBe(a.outcome.durationMs);
    }
    expect(spool.usage.batches.count).toBe(0);
  });

  it('records a failed attempt and a parked batch as changes to the record, its fixed fields kept', async () => {
    const { spool, state } = await oneSpooledBatch();
    destination.sink.respondWith(() => ({ status: 503 }));
    const events = new EmitterEvents();
    const finished = new Promise<void>((resolve) => events.on('finished', () => resolve()));
    const queue = queueOver(spool, events, 2);
    const before = Date.now();
    queue.start();
    await finished;
    const stored = await spool.batches.getState(state.id);
    const { attempts: _a, notBefore: _n, parked: _p, lastError: _l, ...fixed } = stored as BatchState;
    const { attempts: _a0, ...spooled } = state;
    expect(fixed).toEqual(spooled);
    expect(stored).toMatchObject({ attempts: 2, parked: true, lastError: 'http_503' });
    expect(stored?.notBefore).toBeGreaterThanOrEqual(before + 5_000);
    expect(queue.deliveries()).toEqual([]);
  });

  it('logs a spool scan that keeps failing once an outage, then at debug', async () => {
    const { spool } = await oneSpooledBatch();
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = createLogger('debug', {
      write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }),
    });
    const list = spool.batches.list.bind(spool.batches);
    let failing = true;
    spool.batches.list = (options) =>
      failing ? Promise.reject(new Error('ENOSPC: no space left on device')) : list(options);
    const queue = queueOver(spool, new EmitterEvents(), 1, logger);
    // scans driven one at a time, no sweep timer (start() is not called)
    const scanned = async () => {
      queue.rescan();
      await queue.idle();
    };
    await scanned();
    await scanned();
    await scanned();
    failing = false;
    await scanned();
    failing = true;
    await scanned();
    const said = lines.filter((l) => l.msg === 'spool scan failed').map((l) => l.level);
    // pino levels: 50 error, 20 debug; the outage ends with the scan that succeeds
    expect(said).toEqual([50, 20, 20, 50]);
  });

  it('sends a batch handed over as it became durable without reading it back; a retry reads the spool', async () => {
    const { spool, reads } = await countedSpool();
    destination.sink.respondWith((_req, index) => (index === 0 ? { status: 503 } : { status: 200 }));
    const events = new EmitterEvents();
    const attempts = collect(events, 'attempt');
    const queue = queueOver(spool, events, 3);
    const { state, body } = await freshBatch();
    queue.expectHandOver(state.id);
    const written = await spool.batches.put(state, body, [], { fresh: true });
    queue.handOver({ state, body, generation: written.generation });
    await destination.sink.waitFor((r) => r.length >= 2, 5_000);
    await queue.idle();
    expect(attempts.map((a) => [a.attempt, a.outcome.kind])).toEqual([
      [1, 'retryable'],
      [2, 'success'],
    ]);
    // the first attempt and its launch read nothing; the second read the batch, delete read nothing
    expect(reads).toEqual({ get: 1, getState: 0 });
    expect(destination.sink.requests.map((r) => r.body)).toEqual([
      JSON.parse(body.toString()),
      JSON.parse(body.toString()),
    ]);
    expect(spool.usage.batches).toEqual({ count: 0, bytes: 0 });
    expect(await spool.batches.ids()).toEqual([]);
  });

  it('leaves a batch being written to its hand-over: a scan meanwhile does not start it, so it goes out once', async () => {
    const { spool, reads } = await countedSpool();
    destination.sink.respondWith(() => ({ status: 200 }));
    const queue = queueOver(spool, new EmitterEvents(), 3);
    const { state, body } = await freshBatch();
    queue.expectHandOver(state.id);
    const written = await spool.batches.put(state, body, [], { fresh: true });
    queue.rescan();
    await queue.idle();
    expect(destination.sink.requests).toHaveLength(0);
    queue.handOver({ state, body, generation: written.generation });
    await destination.sink.waitFor((r) => r.length >= 1, 5_000);
    await queue.idle();
    // a scan after it finished, and a late second hand-over, find it gone
    queue.rescan();
    await queue.idle();
    queue.handOver({ state, body, generation: written.generation });
    await queue.idle();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(destination.sink.requests).toHaveLength(1);
    expect(spool.usage.batches).toEqual({ count: 0, bytes: 0 });
    expect(reads.get).toBe(0);
  });

  it('lets go of a handed-over body after its first attempt: a delivery waiting to retry holds none', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const { spool } = await countedSpool();
    destination.sink.respondWith(() => ({ status: 503 }));
    const events = new EmitterEvents();
    const attempts = collect(events, 'attempt');
    const queue = queueOver(spool, events, 50);
    // the body is reachable only through what the queue keeps
    const body = await (async () => {
      const { state, body } = await freshBatch();
      queue.expectHandOver(state.id);
      const written = await spool.batches.put(state, body, [], { fresh: true });
      queue.handOver({ state, body, generation: written.generation });
      return new WeakRef(body);
    })();
    await vi.waitFor(() => expect(attempts.length).toBeGreaterThanOrEqual(1), { timeout: 5_000 });
    expect(queue.activeCount).toBe(1);
    for (let k = 0; k < 3 && body.deref() !== undefined; k++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      gc();
    }
    // held for the first attempt only: with 5 MB bodies and 256 deliveries, over 1 GB otherwise
    expect(body.deref()).toBeUndefined();
    expect(queue.activeCount).toBe(1);
  });

  it('holds a body by the memory it keeps alive, and gives all of it back once delivered', async () => {
    const { spool, reads } = await countedSpool();
    destination.sink.respondWith(() => ({ status: 200 }));
    const queue = queueOver(spool, new EmitterEvents(), 3);
    /** the body as a view into a buffer of `size` bytes (as a body written in place is) */
    const viewOf = (body: Buffer, size: number) => {
      const buffer = Buffer.alloc(size);
      body.copy(buffer);
      return buffer.subarray(0, body.length);
    };
    // 6 MiB kept alive each, within the 16 MiB budget one at a time: held only if each gives
    // back what it took
    for (let i = 0; i < 5; i++) {
      const { state, body } = await freshBatch();
      queue.expectHandOver(state.id);
      const written = await spool.batches.put(state, body, [], { fresh: true });
      queue.handOver({ state, body: viewOf(body, 6 * 1024 * 1024), generation: written.generation });
      await destination.sink.waitFor((r) => r.length >= i + 1, 5_000);
      await queue.idle();
    }
    expect(reads.get).toBe(0);
    // a small body that keeps 20 MiB alive is over the budget: not held, read back from the spool
    const { state, body } = await freshBatch();
    queue.expectHandOver(state.id);
    const written = await spool.batches.put(state, body, [], { fresh: true });
    queue.handOver({ state, body: viewOf(body, 20 * 1024 * 1024), generation: written.generation });
    await destination.sink.waitFor((r) => r.length >= 6, 5_000);
    await queue.idle();
    expect(reads.get).toBe(1);
    expect(destination.sink.requests.at(-1)?.body).toEqual(JSON.parse(body.toString()));
  });

  it('reads back a batch whose hand-over was given up, once a scan finds it', async () => {
    const { spool } = await countedSpool();
    destination.sink.respondWith(() => ({ status: 200 }));
    const queue = queueOver(spool, new EmitterEvents(), 3);
    const { state, body } = await freshBatch();
    queue.expectHandOver(state.id);
    await spool.batches.put(state, body, [], { fresh: true });
    queue.handOverGivenUp(state.id);
    await destination.sink.waitFor((r) => r.length >= 1, 5_000);
    await queue.idle();
    expect(destination.sink.requests).toHaveLength(1);
    expect(spool.usage.batches.count).toBe(0);
  });
});
