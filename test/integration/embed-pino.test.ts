import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSink, type Sink } from '../../harness/sink.js';
import { tempDir } from '../../harness/workload.js';
import { createEmitter } from '../../src/index.js';
import { deliveredEvents, embedOptions, spawnTs } from '../fixtures/embed-support.js';

let sink: Sink;
beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink?.close();
});

describe('pino transport (plugins/pino.ts) in a child process', () => {
  it('turns 10,000 log lines into log.<level> events, all delivered by the time the process exits', async () => {
    const spool = await tempDir('embed-pino');
    try {
      const options = embedOptions(`${sink.url}/logs`, spool.path, { batchSize: 1000 });
      const child = spawnTs('test/fixtures/embed-pino-child.ts', {
        EMBED_OPTIONS: JSON.stringify(options),
        EMBED_LINES: '10000',
      });
      expect(await child.exited, child.output()).toBe(0);
      expect(child.output()).toContain('logged');
      const events = deliveredEvents(sink.requests);
      const seen = new Set(events.map((e) => e.data.n));
      expect(seen.size).toBe(10_000);
      expect(events.length).toBe(10_000);
      const bySubject = new Map<string, number>();
      for (const e of events) bySubject.set(e.subject, (bySubject.get(e.subject) ?? 0) + 1);
      expect(Object.fromEntries(bySubject)).toEqual({
        'log.info': 2500,
        'log.warn': 2500,
        'log.error': 2500,
        'log.debug': 2500,
      });
      const sample = events.find((e) => e.data.n === 7);
      expect(sample?.data).toMatchObject({ msg: 'line 7', level: 20, n: 7 });
    } finally {
      await spool.remove();
      sink.clear();
    }
  });

  it("names a custom level's events by the label pino sends the worker (log.audit)", async () => {
    const spool = await tempDir('embed-pino-levels');
    try {
      const options = embedOptions(`${sink.url}/logs`, spool.path, { batchSize: 1000 });
      const child = spawnTs('test/fixtures/embed-pino-child.ts', {
        EMBED_OPTIONS: JSON.stringify(options),
        EMBED_LINES: '4',
        EMBED_AUDIT_LINES: '3',
      });
      expect(await child.exited, child.output()).toBe(0);
      const bySubject = new Map<string, number>();
      for (const e of deliveredEvents(sink.requests))
        bySubject.set(e.subject, (bySubject.get(e.subject) ?? 0) + 1);
      expect(Object.fromEntries(bySubject)).toEqual({
        'log.info': 1,
        'log.warn': 1,
        'log.error': 1,
        'log.debug': 1,
        'log.audit': 3,
      });
    } finally {
      await spool.remove();
      sink.clear();
    }
  });

  it('loses no line of a burst at a normal exit with the endpoint down: all are in the spool, delivered by the next start', async () => {
    const spool = await tempDir('embed-pino-exit');
    const lines = 50_000;
    let endpointDown = false;
    try {
      await sink.down();
      endpointDown = true;
      const options = embedOptions(`${sink.url}/logs`, spool.path, { batchSize: 1000 });
      const child = spawnTs('test/fixtures/embed-pino-child.ts', {
        EMBED_OPTIONS: JSON.stringify({ ...options, closeTimeoutS: 1 }),
        EMBED_LINES: String(lines),
      });
      expect(await child.exited, child.output()).toBe(0);
      expect(child.output()).not.toContain('not accepted');
      await sink.up();
      endpointDown = false;
      const next = createEmitter(options);
      await next.start();
      try {
        const all = (r: typeof sink.requests) =>
          new Set(deliveredEvents(r).map((e) => e.data.n)).size === lines;
        await sink.waitFor(all, 120_000);
      } finally {
        await next.close();
      }
    } finally {
      if (endpointDown) await sink.up();
      await spool.remove();
      sink.clear();
    }
  }, 180_000);
});
