import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmitter } from '../../src/index.js';
import { embedOptions } from '../fixtures/embed-support.js';
import { tempDir } from '../../harness/workload.js';

/**
 * TRANSMITTER_CONCURRENCY=adaptive against a real loopback sink whose latency grows with its
 * concurrency: BASE_MS up to BEST requests at once, doubling with every request beyond. The
 * adaptive limiter must find that best concurrency by itself, from round trips alone.
 */

const BEST = 4;
const BASE_MS = 20;
const RUN_MS = 3_000;
const SETTLED_AFTER_MS = 1_500;

interface CongestedSink {
  url: string;
  /** [ms since start, requests in flight including this one] at each arrival */
  arrivals: Array<[number, number]>;
  /** ms since the sink started */
  elapsed(): number;
  close(): Promise<void>;
}

async function startCongestedSink(): Promise<CongestedSink> {
  const started = performance.now();
  const arrivals: Array<[number, number]> = [];
  let inFlight = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      inFlight += 1;
      arrivals.push([performance.now() - started, inFlight]);
      const latency = BASE_MS * 2 ** Math.max(0, inFlight - BEST);
      setTimeout(
        () => {
          inFlight -= 1;
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        },
        Math.min(latency, 2_000),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/ingest`,
    arrivals,
    elapsed: () => performance.now() - started,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let sink: CongestedSink;
beforeAll(async () => {
  sink = await startCongestedSink();
});
afterAll(async () => {
  await sink?.close();
});

describe('TRANSMITTER_CONCURRENCY=adaptive', () => {
  it(`settles near the sink's best concurrency (${BEST} ± 2) within ${SETTLED_AFTER_MS} ms`, async () => {
    const spool = await tempDir('adaptive');
    const emitter = createEmitter(
      embedOptions(sink.url, spool.path, {
        concurrency: 'adaptive',
        batchSize: 4,
        batchIntervalS: 0.05,
        shutdownTimeoutS: 0.2,
      }),
    );
    try {
      await emitter.start();

      // far more batches than the run can deliver: demand never runs out
      await Promise.all(Array.from({ length: 3_000 }, (_, i) => emitter.add('t.load', { id: i })));
      // from here on the process only delivers: round trips are the sink's, not the intake's
      const t0 = sink.elapsed();
      // the limit itself, sampled over the settled part (the breaker status reads it from the limiter)
      const limits: number[] = [];
      const sample = setInterval(() => {
        if (sink.elapsed() >= t0 + SETTLED_AFTER_MS)
          limits.push(emitter.statusSnapshot().breaker?.allowed ?? 0);
      }, 50);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, t0 + RUN_MS - sink.elapsed())));
      clearInterval(sample);

      const settled = sink.arrivals
        .filter(([at]) => at >= t0 + SETTLED_AFTER_MS && at <= t0 + RUN_MS)
        .map(([, n]) => n);
      expect(settled.length).toBeGreaterThan(50);
      const mean = settled.reduce((sum, n) => sum + n, 0) / settled.length;
      expect(mean).toBeGreaterThanOrEqual(BEST - 2);
      expect(mean).toBeLessThanOrEqual(BEST + 2);
      const meanLimit = limits.reduce((sum, n) => sum + n, 0) / limits.length;
      expect(limits.length).toBeGreaterThan(10);
      expect(meanLimit).toBeGreaterThanOrEqual(BEST - 2);
      expect(meanLimit).toBeLessThanOrEqual(BEST + 2);
    } finally {
      await emitter.close();
      await spool.remove();
    }
  }, 20_000);
});
