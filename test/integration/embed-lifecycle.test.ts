import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  createEmitter,
  EDGE_TYPES,
  EmitterNotStartedError,
  IntakeClosedError,
  InvalidItemError,
  type Edge,
  type Emitter,
  type EmbeddedConfig,
  type NodeDomain,
  type NodeIP,
} from '../../src/index.js';
import { BatchDocumentSchema } from '../../src/model.js';
import { Spool } from '../../src/spool/spool.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { tempDir } from '../../harness/workload.js';
import { deliveredEvents, embedOptions } from '../fixtures/embed-support.js';

let sink: Sink;
beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink?.close();
});

const T0 = Date.UTC(2026, 0, 1);
const iso = (ms: number) => new Date(T0 + ms).toISOString();
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An emitter from embedded options on a fresh temp spool; removed (closed first) after `body`. */
async function withEmitter(
  name: string,
  extra: Partial<EmbeddedConfig>,
  body: (emitter: Emitter, spoolDir: string) => Promise<void>,
): Promise<void> {
  const spool = await tempDir(name);
  const emitter = createEmitter(embedOptions(`${sink.url}/ingest`, spool.path, extra));
  try {
    await body(emitter, spool.path);
  } finally {
    await emitter.close();
    await spool.remove();
    sink.clear();
    sink.respondWith(undefined);
    await sink.up();
  }
}

function edge(i: number, overrides: Partial<Edge> = {}): Edge {
  return {
    type: 'RESOLVES_TO',
    source: `h${i}.example.test`,
    target: `10.0.${(i >> 8) & 255}.${i & 255}`,
    observed_at: iso(i * 1000),
    probe_id: 'probe-1',
    run_id: 'run-1',
    ...overrides,
  };
}

describe('embedded lifecycle (createEmitter, in-process input only)', () => {
  it('validates embedded options with errors naming the option', () => {
    expect(() => createEmitter({ destinationUrl: 'http://127.0.0.1:1/x', spoolDir: '/tmp/x' })).toThrow(
      /^destinationUrl: http:\/\/ is refused; use https:\/\/ or set allowInsecureHttp=true$/,
    );
    expect(() =>
      createEmitter({ destinationUrl: 'https://e.test/x', spoolDir: '/tmp/x', batchSize: 0 }),
    ).toThrow(ConfigError);
    expect(() =>
      createEmitter({ destinationUrl: 'https://e.test/x', spoolDir: '/tmp/x', batchSize: 0 }),
    ).toThrow(/^batchSize: /);
    expect(() =>
      createEmitter({ destinationUrl: 'https://e.test/x', spoolDir: '/tmp/x', bogus: 1 } as EmbeddedConfig),
    ).toThrow(/unknown option bogus/);
    expect(() =>
      createEmitter({ destinationUrl: 'https://e.test/x', spoolDir: '/tmp/x', authToken: '' }),
    ).toThrow(/^authToken: /);
    // NATS is off unless asked for; a record of TRANSMITTER_* strings works as well
    const embedded = createEmitter({ destinationUrl: 'https://e.test/x', spoolDir: '/tmp/x' });
    expect(embedded.config.nats).toBeUndefined();
    const fromEnv = createEmitter({
      TRANSMITTER_DESTINATION_URL: 'https://e.test/x',
      TRANSMITTER_SPOOL_DIR: '/tmp/x',
      TRANSMITTER_BATCH_SIZE: '7',
    });
    expect(fromEnv.config).toMatchObject({ nats: undefined, batch: { maxItems: 7 } });
    const withNats = createEmitter({
      destinationUrl: 'https://e.test/x',
      spoolDir: '/tmp/x',
      natsUrl: ['nats://127.0.0.1:4222', 'nats://127.0.0.1:4223'],
    });
    expect(withNats.config.nats?.servers).toEqual(['nats://127.0.0.1:4222', 'nats://127.0.0.1:4223']);
    expect(EDGE_TYPES).toContain('USES_CERT');
  });

  it('start twice is harmless; adding before start is refused', async () => {
    await withEmitter('embed-start', {}, async (emitter) => {
      await expect(emitter.add('t.x', { id: 'early' })).rejects.toBeInstanceOf(EmitterNotStartedError);
      await Promise.all([emitter.start(), emitter.start()]);
      await emitter.start();
      await emitter.add('t.x', { id: 'a' });
      await emitter.flush();
      await emitter.wait();
      expect(deliveredEvents(sink.requests).map((e) => e.data.id)).toEqual(['a']);
    });
  });

  it('flush resolves only once the batch is durable: it survives a close with the sink down', async () => {
    await withEmitter('embed-flush', { shutdownTimeoutS: 0.5, batchIntervalS: 60 }, async (emitter, dir) => {
      await sink.down();
      await emitter.start();
      const adds = Array.from({ length: 50 }, (_, i) => emitter.add('t.flush', { id: `f${i}` }));
      expect(emitter.stats.openItems).toBe(50);
      await emitter.flush();
      expect(emitter.stats.openItems).toBe(0);
      expect(emitter.stats.spool.batches).toBe(1);
      await Promise.all(adds); // group commit: every add resolved with the flush
      await emitter.close();

      const spool = await Spool.open(dir);
      try {
        const states = await spool.batches.list();
        expect(states.map((s) => s.itemCount)).toEqual([50]);
        const stored = await spool.batches.get(states[0]!.id);
        const doc = BatchDocumentSchema.parse(JSON.parse(gunzipSync(stored!.body).toString()));
        expect(doc.events.map((e) => e.data.id)).toEqual(Array.from({ length: 50 }, (_, i) => `f${i}`));
      } finally {
        await spool.close();
      }

      await sink.up();
      const next = createEmitter(embedOptions(`${sink.url}/ingest`, dir));
      try {
        await next.start();
        await next.wait();
        expect(deliveredEvents(sink.requests)).toHaveLength(50);
        expect(next.stats.spool.batches).toBe(0);
      } finally {
        await next.close();
      }
    });
  });

  it('wait resolves only after every sealed batch is delivered or dead-lettered', async () => {
    await withEmitter('embed-wait', { batchIntervalS: 60 }, async (emitter) => {
      await emitter.start();
      sink.respondWith(async (req) => {
        await delay(150);
        const rejected = deliveredEvents([req]).some((e) => e.subject === 't.reject');
        return rejected ? { status: 400, body: { error: 'no' } } : { status: 200, body: { ok: true } };
      });
      sink.failNext(2, 503);
      const ok = Array.from({ length: 20 }, (_, i) => emitter.add('t.ok', { id: `ok${i}` }));
      await emitter.flush();
      const bad = emitter.add('t.reject', { id: 'bad' });
      await emitter.flush();
      await Promise.all([...ok, bad]);
      await emitter.wait();
      const stats = emitter.stats;
      expect(stats).toMatchObject({ delivered: 1, deadLettered: 1, inFlight: 0, queued: 0 });
      expect(stats.spool.batches).toBe(0);
      expect(sink.requests.length).toBeGreaterThanOrEqual(4); // two 503s were retried
      const letters = await emitter.deadLetters();
      expect(letters).toHaveLength(1);
      expect(letters[0]).toMatchObject({ kind: 'batch', status: 400 });
      await emitter.wait(); // nothing pending: resolves at once
    });
  });

  it('close is idempotent; adds after close reject with IntakeClosedError', async () => {
    await withEmitter('embed-close', {}, async (emitter) => {
      await emitter.start();
      const pending = emitter.add('t.x', { id: 'last' });
      const first = emitter.close();
      const second = emitter.close();
      expect(second).toBe(first);
      await Promise.all([first, second, pending]);
      await emitter.close();
      expect(deliveredEvents(sink.requests).map((e) => e.data.id)).toEqual(['last']);
      await expect(emitter.add('t.x', { id: 'late' })).rejects.toBeInstanceOf(IntakeClosedError);
      await expect(emitter.addEdge(edge(1))).rejects.toThrow(/closed: no more items are accepted/);
      await expect(
        emitter.addNode({ ip: '10.0.0.1', first_seen: iso(0), last_seen: iso(0) }),
      ).rejects.toBeInstanceOf(IntakeClosedError);
      await expect(emitter.flush()).rejects.toBeInstanceOf(IntakeClosedError);
      await expect(emitter.start()).rejects.toBeInstanceOf(IntakeClosedError);
    });
  });

  it('an invalid item rejects with InvalidItemError naming the field', async () => {
    await withEmitter('embed-invalid', {}, async (emitter) => {
      await emitter.start();
      const badType = emitter.addEdge({ ...edge(1), type: 'KNOWS' });
      await expect(badType).rejects.toBeInstanceOf(InvalidItemError);
      await expect(badType).rejects.toMatchObject({
        field: 'edge.type',
        message: expect.stringMatching(/^edge\.type: expected one of RESOLVES_TO/),
      });
      await expect(emitter.addEdge({ ...edge(1), observed_at: 'yesterday' })).rejects.toMatchObject({
        field: 'edge.observed_at',
      });
      await expect(
        emitter.addNode({ ip: 'not-an-ip', first_seen: iso(0), last_seen: iso(0) }),
      ).rejects.toMatchObject({
        field: 'node_ip.ip',
      });
      await expect(
        emitter.addNode({ host: 'a.test', apex: 'test', first_seen: iso(1), last_seen: iso(0) }),
      ).rejects.toMatchObject({ field: 'node_domain.first_seen', reason: 'later than last_seen' });
      await expect(
        emitter.addEdge({ ...edge(1), observed_at: '9999-12-31T23:30:00-01:00' }),
      ).rejects.toMatchObject({ field: 'edge.observed_at', reason: 'outside years 0000-9999 in UTC' });
      await expect(emitter.addNode({ name: 'x' })).rejects.toMatchObject({ field: 'node' });
      await expect(emitter.add('t.x', 'not an object')).rejects.toMatchObject({ field: 'data' });
      await emitter.flush();
      expect(emitter.stats.spool.batches + sink.requests.length).toBe(0); // nothing was sealed
    });
  });

  it('probe-style run: 10,000 edges and nodes with duplicates arrive deduplicated and merged', async () => {
    await withEmitter(
      'embed-probe',
      { batchSize: 20_000, batchMaxBytes: 64 * 1024 * 1024, batchIntervalS: 600 },
      async (emitter) => {
        await emitter.start();
        const DISTINCT = 1000;
        const expectedEdges = new Map<string, string>();
        const expectedDomains = new Map<string, { first: string; last: string }>();
        const expectedIps = new Map<string, { first: string; last: string }>();
        const merge = (
          m: Map<string, { first: string; last: string }>,
          k: string,
          first: string,
          last: string,
        ) => {
          const had = m.get(k);
          m.set(k, {
            first: had && had.first < first ? had.first : first,
            last: had && had.last > last ? had.last : last,
          });
        };
        const adds: Promise<void>[] = [];
        for (let i = 0; i < 10_000; i++) {
          const k = i % DISTINCT;
          const t = ((i * 7919) % 10_007) * 1000; // scattered, so min/max are not first/last added
          if (i % 3 === 0) {
            const e = edge(k, { observed_at: iso(t) });
            const key = `${e.type}|${e.source}|${e.target}`;
            const had = expectedEdges.get(key);
            expectedEdges.set(key, had && had < e.observed_at ? had : e.observed_at);
            adds.push(emitter.addEdge(e));
          } else if (i % 3 === 1) {
            const n: NodeDomain = {
              host: `d${k}.example.test`,
              apex: 'example.test',
              first_seen: iso(t),
              last_seen: iso(t + 500),
            };
            merge(expectedDomains, n.host, n.first_seen, n.last_seen);
            adds.push(emitter.addNode(n));
          } else {
            const n: NodeIP = {
              ip: `10.1.${k >> 8}.${k & 255}`,
              first_seen: iso(t),
              last_seen: iso(t + 500),
            };
            merge(expectedIps, n.ip, n.first_seen, n.last_seen);
            adds.push(emitter.addNode(n));
          }
        }
        expect(emitter.stats.received).toBe(10_000);
        await emitter.flush();
        await Promise.all(adds);
        await emitter.wait();

        expect(sink.requests).toHaveLength(1);
        const doc = BatchDocumentSchema.parse(sink.requests[0]!.body);
        expect(doc.edges).toHaveLength(expectedEdges.size);
        expect(doc.nodes_domain).toHaveLength(expectedDomains.size);
        expect(doc.nodes_ip).toHaveLength(expectedIps.size);
        for (const e of doc.edges)
          expect(e.observed_at).toBe(expectedEdges.get(`${e.type}|${e.source}|${e.target}`));
        for (const n of doc.nodes_domain) {
          expect({ first: n.first_seen, last: n.last_seen }).toEqual(expectedDomains.get(n.host));
        }
        for (const n of doc.nodes_ip)
          expect({ first: n.first_seen, last: n.last_seen }).toEqual(expectedIps.get(n.ip));
      },
    );
  });

  it('gzipLevel sets the level of the bodies spooled and sent (the gzip header tells it: XFL 4 fastest, 2 smallest)', async () => {
    const xfl = new Map<number | undefined, number[]>();
    for (const gzipLevel of [6, undefined, 9]) {
      await withEmitter(
        `embed-gzip-${gzipLevel ?? 'default'}`,
        gzipLevel ? { gzipLevel } : {},
        async (emitter) => {
          await emitter.start();
          const adds = Array.from({ length: 200 }, (_, n) =>
            emitter.add('log.info', { n, msg: `line ${n}` }),
          );
          await emitter.flush();
          await Promise.all(adds);
          await emitter.wait();
          expect(deliveredEvents(sink.requests).length).toBe(200);
          xfl.set(
            gzipLevel,
            sink.requests.map((r) => r.raw[8] as number),
          );
        },
      );
    }
    // zlib writes XFL 4 for level 1 (the default), 2 for level 9, 0 for the levels between
    expect(
      Object.fromEntries([...xfl].map(([level, flags]) => [String(level), [...new Set(flags)]])),
    ).toEqual({
      '6': [0],
      undefined: [4],
      '9': [2],
    });
  });
});
