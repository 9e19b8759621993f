import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { toSpoolRecord } from '../../src/spool/batch-codec.js';
import type { Clock } from '../../src/util/clock.js';
import { loadConfig } from '../../src/config/index.js';
import { DeliveryQueue } from '../../src/delivery/queue.js';
import { Emitter } from '../../src/emitter.js';
import { EmitterEvents } from '../../src/observe/events.js';
import { uuidv7 } from '../../src/util/ids.js';
import { createLogger } from '../../src/util/logger.js';
import { Redactor } from '../../src/util/redact.js';
import { Spool } from '../../src/spool/spool.js';
import { createHttpTransport } from '../../src/delivery/http-transport.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { testEnv } from '../support/env.js';
import { tempDir } from '../../harness/workload.js';

/**
 * Retry waits are measured on the monotonic clock: setting the wall clock back must not hold a
 * parked batch, and a wall-clock notBefore read back from the spool after a restart is trusted
 * for at most the longest wait the emitter sets.
 */

const HOUR_MS = 3_600_000;
let sink: Sink;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink?.close();
});
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
  sink.respondWith(undefined);
  sink.clear();
});

/** One attempt per round, then parked for TRANSMITTER_RETRY_MAX_DELAY_S (1 s). */
function configFor(spoolDir: string) {
  return loadConfig(
    testEnv({
      sinkUrl: `${sink.url}/v1/batch`,
      spoolDir,
      extra: { TRANSMITTER_RETRY_MAX_ATTEMPTS: '1', TRANSMITTER_RETRY_MAX_DELAY_S: '1' },
    }),
  );
}

async function started(spoolDir: string): Promise<Emitter> {
  const emitter = new Emitter(configFor(spoolDir), {
    logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'),
  });
  await emitter.start();
  cleanups.push(() => emitter.close());
  return emitter;
}

async function until(ok: () => boolean, deadlineMs: number): Promise<void> {
  const started = performance.now();
  while (!ok() && performance.now() - started < deadlineMs) await new Promise((r) => setTimeout(r, 20));
}

function parked(emitter: Emitter): Promise<void> {
  return new Promise((resolve) =>
    emitter.events.on('finished', (e) => {
      if (e.result === 'parked') resolve();
    }),
  );
}

describe('retry waits use the monotonic clock', () => {
  it('a parked batch is retried when its 1 s wait is over although the wall clock was set back an hour', async () => {
    const dir = await tempDir('retry-clock');
    cleanups.push(() => dir.remove());
    const emitter = await started(dir.path);
    sink.failNext(1, 503);
    const parkedNow = parked(emitter);
    await emitter.add('approved.finding', { id: 'f1' });
    await emitter.flush();
    await parkedNow;
    const parkedAt = performance.now();
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() - HOUR_MS);

    await until(() => sink.requests.length >= 2, 5_000);
    const waited = performance.now() - parkedAt;
    expect(sink.requests).toHaveLength(2);
    expect(sink.requests[1]!.headers['idempotency-key']).toBe(sink.requests[0]!.headers['idempotency-key']);
    expect(waited).toBeGreaterThan(800);
    expect(waited).toBeLessThan(3_000);
    await emitter.wait();
    expect(emitter.stats).toMatchObject({ delivered: 1, spool: { batches: 0 } });
  });

  it('after a restart, a notBefore far in the future (clock was ahead) waits at most the max delay', async () => {
    const dir = await tempDir('retry-clock');
    cleanups.push(() => dir.remove());
    sink.respondWith(() => ({ status: 503 }));
    const first = new Emitter(configFor(dir.path), { logger: createLogger('silent') });
    await first.start();
    const parkedNow = parked(first);
    await first.add('approved.finding', { id: 'f1' });
    await first.flush();
    await parkedNow;
    await first.close();

    const spool = await Spool.open(dir.path);
    const [state] = await spool.batches.list();
    expect(state?.parked).toBe(true);
    await spool.batches.patchState(state!.id, { notBefore: Date.now() + 10 * HOUR_MS });
    await spool.close();

    sink.respondWith(undefined);
    sink.clear();
    const restartedAt = performance.now();
    const second = await started(dir.path);
    await until(() => sink.requests.length >= 1, 5_000);
    expect(sink.requests).toHaveLength(1);
    expect(performance.now() - restartedAt).toBeLessThan(3_000);
    await second.wait();
    expect(second.stats).toMatchObject({ delivered: 1, spool: { batches: 0 } });
  });
});

describe('the delivery queue with an injected clock', () => {
  it('decides on monoMs: a wall clock set back an hour after parking does not hold the batch', async () => {
    const dir = await tempDir('retry-clock');
    cleanups.push(() => dir.remove());
    const spool = await Spool.open(dir.path);
    cleanups.push(() => spool.close());
    const transport = createHttpTransport({
      url: `${sink.url}/v1/batch`,
      allowInsecureHttp: true,
      connectTimeoutMs: 1000,
      requestTimeoutMs: 2000,
      connections: 1,
      userAgent: 'batch-emitter/test',
    });
    cleanups.push(() => transport.close());
    let wallOffsetMs = 0;
    const clock: Clock = { wallMs: () => Date.now() + wallOffsetMs, monoMs: () => performance.now() };
    const events = new EmitterEvents();
    const queue = new DeliveryQueue({
      spool,
      transport,
      logger: createLogger('silent'),
      events,
      policy: { maxAttempts: 1, initialDelayMs: 50, multiplier: 2, maxDelayMs: 600, jitter: 0 },
      circuit: { failureThreshold: 5, resetTimeoutMs: 200 },
      concurrency: 1,
      compression: 'none',
      bodyFormat: 'batch',
      redactor: new Redactor([]),
      clock,
    });
    cleanups.push(() => queue.stop());
    const doc = {
      batch_id: uuidv7(),
      probe_id: 'p',
      run_id: 'r',
      created_at: new Date().toISOString(),
      nodes_domain: [],
      nodes_ip: [],
      nodes_cert: [],
      edges: [],
      events: [
        {
          subject: 'approved.x',
          seq: 1,
          msg_id: 'm1',
          published_at: new Date().toISOString(),
          data: { id: 'x' },
        },
      ],
    };
    const { state, body } = await toSpoolRecord(doc, 'identity', { subjects: ['approved.x'] });
    await spool.batches.put(state, body);
    sink.failNext(1, 503);
    const parkedNow = new Promise<void>((resolve) =>
      events.on('finished', (e) => {
        if (e.result === 'parked') resolve();
      }),
    );
    queue.start();
    await parkedNow;
    const parkedAt = performance.now();
    wallOffsetMs = -HOUR_MS;
    expect((await spool.batches.getState(state.id))?.notBefore).toBeGreaterThan(Date.now());

    await until(() => sink.requests.length >= 2, 4_000);
    const waited = performance.now() - parkedAt;
    expect(sink.requests).toHaveLength(2);
    expect(waited).toBeGreaterThan(450);
    expect(waited).toBeLessThan(2_000);
    await queue.idle();
    expect(spool.usage.batches.count).toBe(0);
  });
});
