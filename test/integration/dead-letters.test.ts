import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { deadLetterMessage } from '../../src/delivery/results.js';
import { Emitter } from '../../src/emitter.js';
import { startServer, type RunningServer } from '../../src/observe/server.js';
import { createLogger } from '../../src/util/logger.js';
import { createMetrics } from '../../src/observe/metrics.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { testEnv } from '../support/env.js';
import { tempDir } from '../../harness/workload.js';

/**
 * Dead letters take room in the spool like live batches: they count toward
 * TRANSMITTER_SPOOL_MAX_BYTES (intake pauses), show in /metrics and /api/v1/stats, and a
 * destination that refuses everything fails /ready until it accepts a batch again.
 */

let sink: Sink;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink?.close();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  sink.respondWith(undefined);
  sink.clear();
});

async function running(extra: Record<string, string>): Promise<{ emitter: Emitter; http: RunningServer }> {
  const spool = await tempDir('dead-letters');
  const config = loadConfig(testEnv({ sinkUrl: `${sink.url}/v1/batch`, spoolDir: spool.path, extra }));
  const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  const emitter = new Emitter(config, { logger });
  await emitter.start();
  const source = emitter.statusSource();
  const metrics = createMetrics(emitter.events, () => emitter.statusSnapshot(), { defaultMetrics: false });
  const http = await startServer({
    host: '127.0.0.1',
    port: 0,
    status: source,
    events: emitter.events,
    metrics,
    debug: false,
    logger,
  });
  cleanups.push(async () => {
    await http.close();
    metrics.close();
    await emitter.close();
    await spool.remove();
  });
  return { emitter, http };
}

/** One batch of one item with an incompressible payload of about `bytes`. */
async function oneBatch(emitter: Emitter, n: number, bytes = 100_000): Promise<void> {
  await emitter.add('approved.finding', {
    id: `f${n}`,
    pad: randomBytes((bytes * 3) / 4).toString('base64'),
  });
  await emitter.flush();
  await emitter.wait();
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function gaugeValue(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('dead letters count toward the spool limit and are visible', () => {
  it('all answered 400: the spool stays near its limit, intake pauses, /ready names destination_rejecting', async () => {
    sink.respondWith(() => ({ status: 400, body: 'no' }));
    const maxBytes = 1_048_576;
    const { emitter, http } = await running({ TRANSMITTER_SPOOL_MAX_BYTES: String(maxBytes) });
    let sent = 0;
    while (!emitter.statusSnapshot().intakePaused && sent < 60) {
      await oneBatch(emitter, sent);
      sent += 1;
    }
    const s = emitter.statusSnapshot();
    expect(s.intakePaused).toBe('spool_full');
    expect(sent).toBeGreaterThan(5);
    expect(sent).toBeLessThan(30);
    expect(s.spool).toMatchObject({ batches: 0, bytes: 0, deadLetters: sent });
    expect(s.spool.deadLetterBytes).toBeGreaterThanOrEqual(maxBytes);
    expect(s.spool.deadLetterBytes).toBeLessThan(maxBytes + 110_000);
    expect((await emitter.deadLetters()).length).toBe(sent);

    const ready = await getJson(`${http.url}/ready`);
    expect(ready.status).toBe(503);
    expect(JSON.stringify(ready.body)).toContain('the destination refused the last');
    const stats = await getJson(`${http.url}/api/v1/stats`);
    expect(stats.body.notReady).toEqual(
      expect.arrayContaining(['spool_under_limit', 'intake_running', 'destination_rejecting']),
    );
    expect(stats.body.spool).toMatchObject({
      deadLetters: sent,
      deadLetterBytes: s.spool.deadLetterBytes,
      usedBytes: s.spool.deadLetterBytes,
      quarantined: 0,
      quarantinedBytes: 0,
    });
    expect(stats.body.destination).toMatchObject({ rejecting: { consecutive: sent, lastStatus: 400 } });
    const metrics = await (await fetch(`${http.url}/metrics`)).text();
    expect(gaugeValue(metrics, 'batch_emitter_dead_letters')).toBe(sent);
    expect(gaugeValue(metrics, 'batch_emitter_dead_letter_bytes')).toBe(s.spool.deadLetterBytes);
    expect(gaugeValue(metrics, 'batch_emitter_quarantined')).toBe(0);
    expect(gaugeValue(metrics, 'batch_emitter_destination_rejecting')).toBe(1);
  });

  it('a destination that refuses everything fails /ready; one accepted batch clears it', async () => {
    const { emitter, http } = await running({});
    sink.failNext(5, 400);
    for (let n = 0; n < 4; n += 1) await oneBatch(emitter, n, 100);
    expect(emitter.statusSnapshot().destinationRejecting).toBeUndefined();
    await oneBatch(emitter, 4, 100);
    expect(emitter.statusSnapshot().destinationRejecting).toEqual({ consecutive: 5, lastStatus: 400 });
    expect((await getJson(`${http.url}/ready`)).status).toBe(503);
    await oneBatch(emitter, 5, 100);
    expect(emitter.statusSnapshot().destinationRejecting).toBeUndefined();
    expect((await getJson(`${http.url}/ready`)).status).toBe(200);
  });

  it('a refused credential (401/403) says what to check', () => {
    expect(deadLetterMessage(401)).toContain(
      'destination refused the credentials (401): check TRANSMITTER_AUTH_TOKEN / client certificate',
    );
    expect(deadLetterMessage(403)).toContain('(403)');
    expect(deadLetterMessage(400)).not.toContain('credentials');
  });
});
