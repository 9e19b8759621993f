/** Part 1b, the raw limit of the sink: pre-built gzip batches posted by an undici pool of 4. */
import { Pool } from 'undici';
import { GZIP_LEVEL } from '../../src/spool/batch-codec.js';
import { progress } from './context.js';
import { gzipBatch } from './payload.js';
import { S } from './settings.js';
import type { Sink } from './sink-client.js';

export interface SinkLimitResult {
  batchesPerS: number;
  eventsPerS: number;
  wireMBps: number;
  batchBytes: number;
  statuses: Record<string, number>;
}

export async function sinkLimit(sink: Sink, seconds: number): Promise<SinkLimitResult> {
  const bodies = Array.from({ length: 16 }, (_, k) =>
    gzipBatch(`limit-${k}`, k * S.batchSize + 1, S.batchSize, GZIP_LEVEL),
  );
  const url = new URL(sink.url);
  const pool = new Pool(url.origin, { connections: 4, pipelining: 1 });
  await sink.reset();
  const statuses: Record<string, number> = {};
  let n = 0;
  let bytes = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const body = bodies[n % bodies.length] as Buffer;
      const key = `limit-${n++}`;
      const res = await pool.request({
        path: url.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'idempotency-key': key },
        body,
      });
      await res.body.dump();
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      bytes += body.length;
      progress.set({
        label: 'sink limit',
        done: performance.now() - started,
        total: seconds * 1000,
        unit: 'ms',
      });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const elapsed = (performance.now() - started) / 1000;
  await pool.close();
  const ok = statuses['200'] ?? 0;
  return {
    batchesPerS: ok / elapsed,
    eventsPerS: (ok * S.batchSize) / elapsed,
    wireMBps: bytes / 1e6 / elapsed,
    batchBytes: Math.round(bodies.reduce((a, b) => a + b.length, 0) / bodies.length),
    statuses,
  };
}
