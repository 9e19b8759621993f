import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmitter } from '../../src/index.js';
import { createLogger } from '../../src/util/logger.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { tempDir } from '../../harness/workload.js';

/** The summary log lines name the unit of every count: items beside items, batches beside batches. */

let sink: Sink;

beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink?.close();
});

describe('summary log lines', () => {
  it('the close line and the spool open line name items, batches and bytes', async () => {
    const spool = await tempDir('log-summary');
    const records: Array<Record<string, unknown>> = [];
    const logger = createLogger('info', {
      write: (line: string) => void records.push(JSON.parse(line) as Record<string, unknown>),
    });
    try {
      const emitter = createEmitter(
        { destinationUrl: `${sink.url}/v1`, spoolDir: spool.path, allowInsecureHttp: true, batchSize: 4 },
        { logger },
      );
      await emitter.start();
      // 10 items in batches of 4: 3 batches
      const adds = Array.from({ length: 10 }, (_, i) => emitter.add('approved.finding', { id: i }));
      await emitter.flush();
      await Promise.all(adds);
      await emitter.wait();
      await emitter.close();

      const opened = records.find((r) => r.msg === 'spool open');
      expect(opened).toMatchObject({ spool_batches: 0, spool_bytes: 0, spool_dead_letters: 0 });
      const closed = records.find((r) => r.msg === 'closed');
      expect(closed).toMatchObject({
        items_received: 10,
        items_rejected: 0,
        items_delivered: 10,
        batches_delivered: 3,
        batches_parked: 0,
        batches_dead_lettered: 0,
        batches_in_flight: 0,
        spool_batches: 0,
      });
      // no count without its unit
      for (const bare of [
        'received',
        'delivered',
        'rejected',
        'parked',
        'deadLettered',
        'inFlight',
        'queued',
      ]) {
        expect(closed, bare).not.toHaveProperty(bare);
      }
    } finally {
      await spool.remove();
    }
  });
});
