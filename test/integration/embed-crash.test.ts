import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmitter } from '../../src/index.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { tempDir } from '../../harness/workload.js';
import { deliveredEvents, embedOptions, spawnTs } from '../fixtures/embed-support.js';

let sink: Sink;
beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink?.close();
});

describe('an embedding process killed with SIGKILL', () => {
  it('loses none of its 1,000 awaited adds: a new emitter on the same spool delivers them all', async () => {
    const spool = await tempDir('embed-crash');
    try {
      // The sink is down while the child runs, so whatever it spooled can only arrive later.
      await sink.down();
      const options = embedOptions(`${sink.url}/ingest`, spool.path, { batchSize: 100 });
      const child = spawnTs('test/fixtures/embed-crash-child.ts', {
        EMBED_OPTIONS: JSON.stringify(options),
        EMBED_COUNT: '1000',
      });
      await child.saw('added');
      child.child.kill('SIGKILL');
      expect(await child.exited).toBe('SIGKILL');
      expect(sink.requests).toHaveLength(0);

      await sink.up();
      const emitter = createEmitter(options);
      try {
        await emitter.start();
        await emitter.wait();
        const ids = deliveredEvents(sink.requests).map((e) => e.data.id);
        expect(ids).toHaveLength(1000);
        expect(new Set(ids)).toEqual(new Set(Array.from({ length: 1000 }, (_, i) => `crash-${i}`)));
        expect(emitter.stats.spool.batches).toBe(0);
      } finally {
        await emitter.close();
      }
    } finally {
      await spool.remove();
      await sink.up();
      sink.clear();
    }
  });
});
