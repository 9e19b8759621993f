import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmitterEvents } from '../../src/observe/events.js';
import { machinesView } from '../../src/observe/machines-view.js';
import { readiness, startServer, type RunningServer } from '../../src/observe/server.js';
import { StatsCollector } from '../../src/observe/stats-collector.js';
import { createLogger } from '../../src/util/logger.js';
import { createMetrics } from '../../src/observe/metrics.js';
import type { StatusSnapshot, StatusSource } from '../../src/observe/status.js';

const AUTH_TOKEN = 'tok-SECRET-a1b2c3';
const NATS_PASSWORD = 'pw-SECRET-d4e5f6';
const NATS_TOKEN = 'nt-SECRET-g7h8i9';
const SECRETS = [AUTH_TOKEN, NATS_PASSWORD, NATS_TOKEN];
const ORIGIN = 'https://ingest.example:8443';

function healthyStatus(): StatusSnapshot {
  return {
    natsConnected: true,
    consumerBound: true,
    spool: { open: true, batches: 2, bytes: 2048, maxBytes: 1_000_000 },
    deliveriesActive: 1,
    queued: 0,
    openItems: 5,
    maxItems: 100,
    breaker: {
      origin: ORIGIN,
      state: 'closed',
      allowed: 2,
      inFlight: 1,
      consecutiveFailures: 0,
      resetTimeoutMs: 60_000,
    },
    shuttingDown: false,
  };
}

/** A hand-made status source whose snapshot the tests change between requests. */
class FakeSource implements StatusSource {
  current = healthyStatus();
  pendingCalls = 0;
  snapshot(): StatusSnapshot {
    return structuredClone(this.current);
  }
  async jetstreamPending() {
    this.pendingCalls += 1;
    return { pending: 1234, ackPending: 56 };
  }
  async spoolStats() {
    return { oldestCreatedAt: new Date(Date.now() - 30_000).toISOString(), deadLetters: 3 };
  }
  machines() {
    const actorRef = { id: 'delivery-1', sessionId: 'x:1', send: () => undefined, token: NATS_TOKEN };
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    return {
      ...machinesView({
        buffer: {
          value: 'filling',
          context: { count: 5, bytes: 900, maxItems: 100, maxBatchBytes: 4096, intervalMs: 30_000 },
        },
        deliveries: [{ batchId: 'b-1', state: 'backoff', attempts: 2, nextDelayMs: 2000 }],
        breaker: {
          value: 'closed',
          context: { origin: ORIGIN, consecutiveFailures: 0, resetTimeoutMs: 60_000 },
        },
        limiter: {
          value: 'flowing',
          context: { mode: 'fixed', limit: 2, maxConcurrency: 2, holders: [actorRef], queue: [] },
        },
      }),
      extra: {
        holder: actorRef,
        cyclic,
        note: `Bearer ${AUTH_TOKEN}`,
        bare: `pw=${NATS_PASSWORD}`,
        [NATS_TOKEN]: 1,
      },
    };
  }
}

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json?: Record<string, unknown>;
}

const responses: string[] = [];

function call(base: string, path: string, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        responses.push(text, JSON.stringify(res.headers));
        let json: Record<string, unknown> | undefined;
        if (String(res.headers['content-type']).startsWith('application/json') && text) {
          json = JSON.parse(text) as Record<string, unknown>;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, ...(json ? { json } : {}) });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const logger = createLogger('silent');
let source: FakeSource;
let events: EmitterEvents;
let server: RunningServer;
let debugServer: RunningServer;
let clock = 1_700_000_000_000;

beforeAll(async () => {
  source = new FakeSource();
  events = new EmitterEvents();
  const metrics = createMetrics(events, () => source.snapshot(), {
    jetstreamPending: () => source.jetstreamPending(),
    defaultMetrics: false,
  });
  const common = { host: '127.0.0.1', port: 0, status: source, events, metrics, logger, redact: SECRETS };
  server = await startServer({ ...common, debug: false });
  debugServer = await startServer({
    ...common,
    debug: true,
    stats: new StatsCollector(events, { now: () => clock }),
  });
});

afterAll(async () => {
  await Promise.all([server?.close(), debugServer?.close()]);
});

describe('HTTP server', () => {
  it('listens on a free port picked by the OS', () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    expect(debugServer.port).not.toBe(server.port);
  });

  it('GET /health: 200 while alive, 503 while shutting down; HEAD has no body', async () => {
    const ok = await call(server.url, '/health');
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ status: 'ok', version: expect.any(String) });
    expect(ok.headers['cache-control']).toBe('no-store');

    const head = await call(server.url, '/health', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect(Number(head.headers['content-length'])).toBe(Buffer.byteLength(ok.text));

    source.current = { ...healthyStatus(), shuttingDown: true };
    const down = await call(server.url, '/health');
    expect(down.status).toBe(503);
    expect(down.json?.status).toBe('shutting_down');
    source.current = healthyStatus();
  });

  it('GET /ready: 200 when every check passes, else 503 naming the failing checks', async () => {
    const ok = await call(server.url, '/ready');
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ status: 'ready', ready: true, failing: [] });

    const cases: Array<[Partial<StatusSnapshot>, string]> = [
      [{ natsConnected: false }, 'nats_connected'],
      [{ consumerBound: false }, 'consumer_bound'],
      [{ spool: { open: false, batches: 0, bytes: 0, maxBytes: 10 } }, 'spool_open'],
      [{ spool: { open: true, batches: 9, bytes: 10, maxBytes: 10 } }, 'spool_under_limit'],
      [
        { spool: { open: true, replaced: '/spool no longer exists', batches: 0, bytes: 0, maxBytes: 10 } },
        'spool_in_place',
      ],
      [{ intakePaused: 'seals_pending' }, 'intake_running'],
      [{ shuttingDown: true }, 'shutting_down'],
    ];
    for (const [change, check] of cases) {
      source.current = { ...healthyStatus(), ...change };
      const res = await call(server.url, '/ready');
      expect(res.status, check).toBe(503);
      expect(res.json?.ready).toBe(false);
      expect(res.json?.failing).toEqual([check]);
      const checks = res.json?.checks as Record<string, { ok: boolean; detail?: string }>;
      expect(checks[check]).toMatchObject({ ok: false, detail: expect.any(String) });
      expect((res.json?.reasons as string[])[0]).toBe(checks[check]?.detail);
    }

    source.current = {
      ...healthyStatus(),
      natsConnected: false,
      consumerBound: false,
      intakePaused: 'spool_full',
    };
    const several = await call(server.url, '/ready');
    expect(several.json?.failing).toEqual(['nats_connected', 'consumer_bound', 'intake_running']);
    expect((several.json?.reasons as string[])[2]).toContain('spool_full');

    // without NATS (in-process adds only) the NATS checks do not apply
    source.current = { ...healthyStatus(), natsEnabled: false, natsConnected: false, consumerBound: false };
    expect((await call(server.url, '/ready')).status).toBe(200);
    source.current = healthyStatus();
  });

  it('GET /api/v1/stats: totals, rates, spool, breaker, JetStream pending, last error, throughput', async () => {
    const before = await call(debugServer.url, '/api/v1/stats');
    expect(before.status).toBe(200);
    expect(before.json?.successRate).toBeNull();

    for (let i = 0; i < 30; i += 1)
      events.emit('received', { section: 'edges', source: 'jetstream', count: 1 });
    events.emit('received', { section: 'nodes_domain', source: 'api', count: 1 });
    events.emit('rejected', { reason: 'invalid_json', detail: 'invalid_json: Unexpected token' });
    events.emit('sealed', { batchId: 'b1', trigger: 'size', items: 20, rawBytes: 4000, storedBytes: 800 });
    events.emit('sealed', { batchId: 'b2', trigger: 'manual', items: 11, rawBytes: 2000, storedBytes: 500 });
    const retry = { kind: 'retryable', status: 503, reason: 'http_503' } as const;
    events.emit('attempt', { batchId: 'b1', attempt: 1, outcome: retry, durationMs: 10, nextDelayMs: 1000 });
    events.emit('attempt', { batchId: 'b1', attempt: 2, outcome: retry, durationMs: 10, nextDelayMs: 2000 });
    events.emit('attempt', {
      batchId: 'b1',
      attempt: 3,
      outcome: { kind: 'success', status: 200 },
      durationMs: 10,
    });
    events.emit('finished', {
      batchId: 'b1',
      result: 'delivered',
      attempts: 3,
      createdAtMs: clock,
      items: 20,
    });
    clock += 1000;
    events.emit('attempt', {
      batchId: 'b2',
      attempt: 1,
      outcome: { kind: 'retryable', reason: `ECONNREFUSED nats://user:${NATS_PASSWORD}@10.0.0.1:4222` },
      durationMs: 1,
      nextDelayMs: 1000,
    });
    events.emit('finished', { batchId: 'b2', result: 'parked', attempts: 10, createdAtMs: clock, items: 11 });
    clock += 1000;

    const res = await call(debugServer.url, '/api/v1/stats');
    expect(res.status).toBe(200);
    const s = res.json as Record<string, Record<string, unknown>> & Record<string, unknown>;
    expect(s.status).toBe('ok');
    expect(s.items).toMatchObject({
      received: 31,
      receivedBySection: { edges: 30, nodes_domain: 1 },
      rejected: 1,
      rejectedByReason: { invalid_json: 1 },
      delivered: 20,
      open: 5,
      maxPerBatch: 100,
    });
    expect(s.batches).toMatchObject({
      sealed: 2,
      sealedByTrigger: { size: 1, manual: 1, bytes: 0, interval: 0, shutdown: 0 },
      delivered: 1,
      retried: 2,
      parked: 1,
      deadLettered: 0,
      deliveriesActive: 1,
      inFlight: 1,
      queued: 0,
    });
    expect(s.attempts).toEqual({ total: 4, byOutcome: { retryable: 3, success: 1 } });
    expect(s.successRate).toBe(0.5);
    expect(s.attemptSuccessRate).toBe(0.25);
    expect(s.spool).toMatchObject({
      open: true,
      batches: 2,
      bytes: 2048,
      maxBytes: 1_000_000,
      deadLetters: 3,
    });
    expect(s.spool?.oldestAgeSeconds).toBeGreaterThanOrEqual(29);
    expect(s.spool?.oldestCreatedAt).toEqual(expect.any(String));
    expect(s.breaker).toMatchObject({ origin: ORIGIN, state: 'closed', allowed: 2, inFlight: 1 });
    expect(s.jetstream).toEqual({ pending: 1234, ackPending: 56 });
    expect(s.intake).toEqual({ paused: false, reason: null });
    const lastError = s.lastError as { message: string; at: string };
    expect(lastError.message).toContain(
      'batch parked after 10 attempts: ECONNREFUSED nats://[redacted]@10.0.0.1',
    );
    expect(lastError.at).toBe(new Date(clock - 1000).toISOString());
    expect(s.throughput).toMatchObject({
      windowSeconds: 60,
      itemsReceivedPerSecond: 15.5,
      batchesDeliveredPerSecond: 0.5,
    });

    // past the window the rate falls back to zero, totals stay
    clock += 120_000;
    const later = (await call(debugServer.url, '/api/v1/stats')).json as Record<
      string,
      Record<string, unknown>
    >;
    expect(later.throughput?.itemsReceivedPerSecond).toBe(0);
    expect(later.items?.received).toBe(31);

    // the server's own collector (no `stats` option) counted the same events
    const own = (await call(server.url, '/api/v1/stats')).json as Record<string, Record<string, unknown>>;
    expect(own.items?.received).toBe(31);
  });

  it('GET /metrics: Prometheus text from its own registry', async () => {
    source.current = {
      ...healthyStatus(),
      spool: { open: true, batches: 7, bytes: 7000, maxBytes: 1_000_000 },
    };
    const res = await call(server.url, '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.text).toMatch(/^batch_emitter_spool_batches 7$/m);
    expect(res.text).toMatch(/^batch_emitter_jetstream_pending_messages 1234$/m);
    expect(res.text).toMatch(
      /^batch_emitter_items_received_total\{section="edges",source="jetstream"\} 30$/m,
    );
    expect(res.text).toMatch(/^batch_emitter_delivery_attempts_per_batch_count 1$/m);
    expect(res.text).toMatch(
      /^batch_emitter_breaker_state\{origin="https:\/\/ingest.example:8443",state="closed"\} 1$/m,
    );
    source.current = healthyStatus();
  });

  it('GET /debug and /debug/machines: 404 unless debug is on, with a hint how to turn it on', async () => {
    for (const path of ['/debug', '/debug/machines', '/debug/app.js']) {
      const off = await call(server.url, path);
      expect(off.status, path).toBe(404);
      expect(off.json, path).toEqual({
        error: 'not found',
        hint: 'the debug view is off: set TRANSMITTER_DEBUG=true to serve /debug and /debug/machines',
      });
    }
    // other unknown paths get no debug hint
    expect((await call(server.url, '/debugger')).json).toEqual({ error: 'not found' });

    const index = await call(debugServer.url, '/debug');
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');

    const res = await call(debugServer.url, '/debug/machines');
    expect(res.status).toBe(200);
    const view = res.json as {
      definitions: Record<string, { id: string; states: Record<string, unknown> }>;
      live: Record<string, unknown>;
      extra: { holder: unknown; cyclic: { self: unknown }; note: string; bare: string } & Record<
        string,
        unknown
      >;
    };
    expect(Object.keys(view.definitions)).toEqual(['buffer', 'delivery', 'breaker', 'limiter']);
    expect(view.definitions.buffer?.id).toBe('buffer');
    expect(Object.keys(view.definitions.breaker?.states ?? {})).toEqual(
      expect.arrayContaining(['closed', 'open', 'halfOpen']),
    );
    // serialised fully, as JSON.stringify would: no depth placeholder, transitions with their targets
    expect(JSON.stringify(view.definitions)).not.toContain('[too deep]');
    expect(view.definitions).toEqual(JSON.parse(JSON.stringify(machinesView().definitions)));
    const empty = view.definitions.buffer?.states.empty as { on: Record<string, unknown[]> };
    expect(empty.on.FIRST_ITEM).toEqual([
      {
        target: ['#buffer.filling'],
        actions: [],
        source: '#buffer.empty',
        reenter: false,
        eventType: 'FIRST_ITEM',
      },
    ]);
    expect(view.live.buffer).toMatchObject({ state: 'filling', count: 5, bytes: 900 });
    expect(view.live.deliveries).toEqual({
      active: 1,
      listed: [{ batchId: 'b-1', state: 'backoff', attempts: 2, nextDelayMs: 2000 }],
    });
    expect(view.live.breaker).toMatchObject({
      state: 'closed',
      allowed: 2,
      inFlight: 1,
      consecutiveFailures: 0,
    });
    // the limiter's holder refs never leave the process: only their count
    expect(view.live.limiter).toEqual({
      state: 'flowing',
      mode: 'fixed',
      limit: 2,
      maxConcurrency: 2,
      inFlight: 1,
      waiting: 0,
    });
    expect(view.extra.holder).toEqual({ actor: 'delivery-1' });
    expect(view.extra.cyclic.self).toBe('[circular]');
    expect(view.extra.note).toBe('Bearer [redacted]');
    expect(view.extra.bare).toBe('pw=[redacted]');
    expect(view.extra['[redacted]']).toBe(1);
  });

  it('unknown paths are 404, methods other than GET/HEAD are 405', async () => {
    for (const path of ['/', '/nope', '/api/v1', '/api/v1/stats/x', '/metrics/', '/health/../ready/x']) {
      const res = await call(server.url, path);
      expect(res.status, path).toBe(404);
      expect(res.json).toEqual({ error: 'not found' });
    }
    for (const [method, path] of [
      ['POST', '/health'],
      ['PUT', '/ready'],
      ['DELETE', '/api/v1/stats'],
      ['PATCH', '/metrics'],
      ['POST', '/debug/machines'],
      ['OPTIONS', '/health'],
    ] as const) {
      const res = await call(debugServer.url, path, method);
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.allow).toBe('GET, HEAD');
    }
    // the query string does not matter
    expect((await call(server.url, '/health?verbose=1')).status).toBe(200);
  });

  it('a failing status source gives 500 without details', async () => {
    const broken: StatusSource = {
      snapshot: () => {
        throw new Error(`spool exploded with ${AUTH_TOKEN}`);
      },
    };
    const metrics = createMetrics(new EmitterEvents(), () => broken.snapshot(), { defaultMetrics: false });
    const s = await startServer({
      host: '127.0.0.1',
      port: 0,
      status: broken,
      events: new EmitterEvents(),
      metrics,
      debug: false,
      logger,
      redact: SECRETS,
    });
    try {
      expect((await call(s.url, '/health')).status).toBe(200);
      const ready = await call(s.url, '/ready');
      expect(ready.status).toBe(500);
      expect(ready.json).toEqual({ error: 'internal error' });
      expect((await call(s.url, '/api/v1/stats')).status).toBe(500);
      expect((await call(s.url, '/metrics')).status).toBe(200);
    } finally {
      await s.close();
      metrics.close();
    }
  });

  it('readiness() is a pure function of the snapshot', () => {
    expect(readiness(healthyStatus()).ready).toBe(true);
    expect(
      readiness({ ...healthyStatus(), spool: { ...healthyStatus().spool, bytes: 2_000_000 } }).failing,
    ).toEqual(['spool_under_limit']);
  });

  it('no response ever contains a secret', () => {
    expect(responses.length).toBeGreaterThan(40);
    for (const text of responses) for (const secret of SECRETS) expect(text).not.toContain(secret);
    expect(responses.join('\n')).not.toContain('SECRET');
  });

  /** A server of its own on a free port (debug off), with its own metrics view. */
  async function ownServer(extra: { idleTimeoutMs?: number } = {}) {
    const metrics = createMetrics(events, () => source.snapshot(), { defaultMetrics: false });
    const s = await startServer({
      host: '127.0.0.1',
      port: 0,
      status: source,
      events,
      metrics,
      debug: false,
      logger,
      ...extra,
    });
    return { s, metrics };
  }

  it('close() stops listening and is idempotent', async () => {
    const { s, metrics } = await ownServer();
    await call(s.url, '/health');
    await Promise.all([s.close(), s.close()]);
    await expect(call(s.url, '/health')).rejects.toThrow(/ECONNREFUSED/);
    metrics.close();
  });

  it('closes sockets that stay silent (opened, no request) after the idle timeout', async () => {
    const { s, metrics } = await ownServer({ idleTimeoutMs: 300 });
    try {
      const openedAt = Date.now();
      const closedAfter = await Promise.all(
        Array.from(
          { length: 5 },
          () =>
            new Promise<number>((resolve) => {
              const socket = connect(s.port, '127.0.0.1');
              socket.on('error', () => undefined);
              socket.once('close', () => resolve(Date.now() - openedAt));
              // still open after 3 s: give up on it (and fail below)
              setTimeout(() => {
                resolve(Infinity);
                socket.destroy();
              }, 3000).unref();
            }),
        ),
      );
      // closed by the server (the test never closes them), after the idle time
      for (const ms of closedAfter) expect(ms).toBeGreaterThanOrEqual(250);
      expect(Math.max(...closedAfter)).toBeLessThan(3000);
      expect((await call(s.url, '/health')).status).toBe(200);
    } finally {
      await s.close();
      metrics.close();
    }
  });

  it('a taken port is an error at start', async () => {
    const metrics = createMetrics(events, () => source.snapshot(), { defaultMetrics: false });
    await expect(
      startServer({
        host: '127.0.0.1',
        port: server.port,
        status: source,
        events,
        metrics,
        debug: false,
        logger,
      }),
    ).rejects.toThrow(/EADDRINUSE/);
    metrics.close();
  });
});
