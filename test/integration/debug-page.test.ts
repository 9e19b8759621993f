import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActor, fromPromise } from 'xstate';
import { bufferMachine } from '../../machines/buffer.js';
import { deliveryMachine, type SendInput } from '../../machines/delivery.js';
import type { Outcome } from '../../machines/outcome.js';
import { summariseDelivery } from '../../src/delivery/queue.js';
import { Gate } from '../../src/delivery/gate.js';
import { EmitterEvents } from '../../src/observe/events.js';
import { machinesView } from '../../src/observe/machines-view.js';
import { startServer, type RunningServer } from '../../src/observe/server.js';
import { createLogger } from '../../src/util/logger.js';
import { createMetrics, type Metrics } from '../../src/observe/metrics.js';
import type { StatusSnapshot, StatusSource } from '../../src/observe/status.js';
import { debugAppJs } from '../../src/observe/views/debug-page.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const SECRET = 'tok-SECRET-debug-77';
const ORIGIN = 'https://ingest.example:8443';

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

function call(
  base: string,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** Real actors of the four machines, in known states: buffer filling, breaker open, deliveries. */
function liveActors() {
  const buffer = createActor(bufferMachine, { input: { intervalMs: 60_000 } });
  buffer.start();
  buffer.send({ type: 'FIRST_ITEM' });
  const changes: Array<(e: { origin: string; from: string; to: string }) => void> = [];
  const gate = new Gate({
    breaker: { origin: ORIGIN, failureThreshold: 1, resetTimeoutMs: 60_000, maxResetTimeoutMs: 60_000 },
    concurrency: 2,
    onCircuitChange: (e) => changes.forEach((listener) => listener(e)),
  });
  const pending: Array<(o: Outcome) => void> = [];
  const machine = deliveryMachine.provide({
    actors: {
      send: fromPromise<Outcome, SendInput>(() => new Promise<Outcome>((resolve) => pending.push(resolve))),
    },
  });
  const policy = { maxAttempts: 10, initialDelayMs: 60_000, multiplier: 2, maxDelayMs: 60_000, jitter: 0 };
  const deliveries = ['batch-1', 'batch-2', 'batch-3'].map((batchId) => {
    const actor = createActor(machine, { input: { batchId, attempts: 0, limiter: gate.permits, policy } });
    actor.start();
    return actor;
  });
  return { buffer, gate, changes, deliveries, pending };
}

const status: StatusSnapshot = {
  natsConnected: true,
  consumerBound: true,
  spool: { open: true, batches: 0, bytes: 0, maxBytes: 1000 },
  deliveriesActive: 0,
  queued: 0,
  openItems: 0,
  maxItems: 100,
  shuttingDown: false,
};

const logger = createLogger('silent');
let actors: ReturnType<typeof liveActors>;
let events: EmitterEvents;
let metrics: Metrics;
let on: RunningServer;
let off: RunningServer;

beforeAll(async () => {
  actors = liveActors();
  events = new EmitterEvents();
  const source: StatusSource = {
    snapshot: () => status,
    machines: () => ({
      ...machinesView({
        buffer: {
          value: actors.buffer.getSnapshot().value,
          context: { count: 3, bytes: 300, maxItems: 100, maxBatchBytes: 4096, intervalMs: 60_000 },
        },
        deliveries: actors.deliveries.map(summariseDelivery),
        breaker: actors.gate.breaker.getSnapshot(),
        limiter: actors.gate.limiter.getSnapshot(),
      }),
      note: `Bearer ${SECRET}`,
    }),
  };
  // the gate reports the breaker's state changes the way the delivery queue does
  actors.changes.push((e) => events.emit('breaker', { origin: e.origin, from: e.from, to: e.to }));
  metrics = createMetrics(events, () => status, { defaultMetrics: false });
  const common = { host: '127.0.0.1', port: 0, status: source, events, metrics, logger, redact: [SECRET] };
  on = await startServer({ ...common, debug: true });
  off = await startServer({ ...common, debug: false });

  // two deliveries hold permits and are sending; the first fails (retryable): the breaker opens
  // (threshold 1) and that delivery backs off for 60 s; the third waits for a permit
  const first = actors.pending.shift();
  const outcome: Outcome = { kind: 'retryable', reason: 'http_503', status: 503 };
  first?.(outcome);
  await new Promise((r) => setTimeout(r, 20));
  events.emit('attempt', { batchId: 'batch-1', attempt: 1, outcome, durationMs: 1, nextDelayMs: 60_000 });
});

afterAll(async () => {
  await Promise.all([on?.close(), off?.close()]);
  metrics?.close();
  for (const a of actors?.deliveries ?? []) a.stop();
  actors?.gate.stop();
  actors?.buffer.stop();
});

describe('GET /debug (TRANSMITTER_DEBUG=true)', () => {
  it('serves an HTML page with the four statecharts as SVG, under a self-only CSP', async () => {
    const res = await call(on.url, '/debug', { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:|\*/);
    expect(res.text.startsWith('<!doctype html>')).toBe(true);
    for (const id of ['buffer', 'delivery', 'breaker', 'limiter']) {
      expect(res.text).toContain(
        `<svg xmlns="http://www.w3.org/2000/svg" class="statechart" data-machine="${id}"`,
      );
    }
    expect((res.text.match(/<svg /g) ?? []).length).toBe(4);
    for (const state of [
      'empty',
      'filling',
      'closed',
      'waiting',
      'backoff',
      'halfOpen',
      'paused',
      'flowing',
      'held',
    ]) {
      expect(res.text).toContain(`data-state="${state}"`);
    }
    // no inline script or style, nothing from another origin, no secret
    expect(res.text).not.toMatch(/<script>|<style|\sstyle=|\son\w+=/i);
    expect(res.text).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(res.text).not.toContain(SECRET);

    // without an Accept header (curl, scripts) it is the page too
    expect((await call(on.url, '/debug')).headers['content-type']).toBe('text/html; charset=utf-8');
    // asking for JSON gives the index of the debug endpoints
    const index = await call(on.url, '/debug', { accept: 'application/json' });
    expect(JSON.parse(index.text).endpoints).toContain('/debug/machines');
  });

  it('serves the script and the stylesheet the page loads', async () => {
    const js = await call(on.url, '/debug/app.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.text).toBe(debugAppJs());
    const css = await call(on.url, '/debug/app.css');
    expect(css.status).toBe(200);
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(css.text).toContain('g.state.active');
    const head = await call(on.url, '/debug', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
  });

  it('/debug/machines: live snapshots, graphs, wall-clock times; ?view=live without definitions', async () => {
    const res = await call(on.url, '/debug/machines');
    expect(res.status).toBe(200);
    const view = JSON.parse(res.text);
    expect(Object.keys(view.definitions)).toEqual(['buffer', 'delivery', 'breaker', 'limiter']);
    expect(Object.keys(view.graphs)).toEqual(['buffer', 'delivery', 'breaker', 'limiter']);
    expect(view.graphs.delivery.initial).toBe('start');
    expect(view.live.buffer).toEqual({
      state: 'filling',
      count: 3,
      bytes: 300,
      maxItems: 100,
      maxBatchBytes: 4096,
      intervalMs: 60_000,
    });
    expect(view.live.deliveries.active).toBe(3);
    expect(view.live.deliveries.listed).toEqual([
      { batchId: 'batch-1', state: 'backoff', attempts: 1, nextDelayMs: expect.any(Number) },
      { batchId: 'batch-2', state: 'sending', attempts: 0, nextDelayMs: null },
      { batchId: 'batch-3', state: 'waiting', attempts: 0, nextDelayMs: null },
    ]);
    expect(view.live.breaker).toMatchObject({
      origin: ORIGIN,
      state: 'open',
      allowed: 2,
      inFlight: 1,
      waiting: 1,
      consecutiveFailures: 1,
      resetTimeoutMs: 60_000,
    });
    expect(view.live.limiter).toEqual({
      state: 'held',
      mode: 'fixed',
      limit: 2,
      maxConcurrency: 2,
      inFlight: 1,
      waiting: 1,
    });
    const retryAt = Date.parse(view.times.nextRetryAt['batch-1']);
    expect(retryAt).toBeGreaterThan(Date.now() + 50_000);
    expect(Object.keys(view.times.nextRetryAt)).toEqual(['batch-1']);
    const since = Date.parse(view.times.breaker.since);
    expect(Date.now() - since).toBeLessThan(30_000);
    expect(Date.parse(view.times.breaker.reopenAt)).toBe(since + 60_000);
    // the recent past: batch-1's failed attempt, the breaker's change, the attempt's bucket
    expect(view.history.batches['batch-1'].attempts).toEqual([
      {
        batchId: 'batch-1',
        attempt: 1,
        startedAt: expect.any(Number),
        durationMs: 1,
        outcome: 'retryable',
        status: 503,
        reason: 'http_503',
      },
    ]);
    expect(view.history.batches['batch-2']).toEqual({ attempts: [] });
    expect(view.history.origin.breaker).toEqual([{ at: expect.any(Number), from: 'closed', to: 'open' }]);
    expect(view.history.origin.buckets.map((b: { retryable: number }) => b.retryable)).toEqual([1]);
    expect(view.note).toBe('Bearer [redacted]');
    expect(res.text).not.toContain(SECRET);

    const live = JSON.parse((await call(on.url, '/debug/machines?view=live')).text);
    expect(live.definitions).toBeUndefined();
    expect(live.graphs).toBeUndefined();
    expect(live.live.breaker.state).toBe('open');
    expect(live.times.nextRetryAt['batch-1']).toBe(view.times.nextRetryAt['batch-1']);
  });

  it('the page script renders the live view: facts filled in, live states highlighted', async () => {
    const view = JSON.parse((await call(on.url, '/debug/machines?view=live')).text);
    const html = (await call(on.url, '/debug')).text;
    const dom = fakeDom(html);
    let polled = '';
    let next: (() => void) | undefined;
    const fetchStub = (url: string) => {
      polled = url;
      return Promise.resolve({ ok: true, status: 200, json: () => Promise.resolve(view) });
    };
    new Function('document', 'fetch', 'setTimeout', debugAppJs())(
      dom.document,
      fetchStub,
      (fn: () => void) => {
        next = fn;
      },
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(polled).toBe('debug/machines?view=live');
    expect(next).toBeTypeOf('function'); // polls again
    expect(dom.text('buffer-state')).toBe('filling');
    expect(dom.text('buffer-count')).toBe('3 / 100');
    expect(dom.text('breaker-state')).toBe('open');
    expect(dom.text('breaker-failures')).toBe('1');
    expect(dom.text('breaker-reopen')).toMatch(/UTC \(in \d+\.\d s\)$/);
    expect(dom.text('deliveries-active')).toBe('3');
    expect(dom.rows()).toEqual([
      ['batch-1', 'backoff', '1', expect.stringMatching(/UTC \(in (5\d|60)\.\d s\)$/), '503 · 1 ms'],
      ['batch-2', 'sending', '1 (sending)', '–', '–'],
      ['batch-3', 'waiting', '0', '–', '–'],
    ]);
    // the origin strip: a band per breaker state (closed, then open), the bar of the failed attempt
    const strip = dom.strip();
    expect(strip.filter((e) => e.name === 'rect' && e.cls.startsWith('band')).map((e) => e.cls)).toEqual([
      'band band-closed',
      'band band-open',
    ]);
    expect(strip.filter((e) => e.name === 'rect' && e.cls.startsWith('bar')).map((e) => e.cls)).toEqual([
      'bar retryable',
    ]);
    expect(dom.text('origin-peak')).toBe('(bars: attempts per 10 s, highest 1)');
    // the retry is 60 s after an attempt made moments ago: (50, 60] s remain, 60.0 on a fast machine
    const remaining = Number(/in (\d+\.\d) s\)$/.exec(dom.rows()[0]?.[3] ?? '')?.[1]);
    expect(remaining).toBeGreaterThan(50);
    expect(remaining).toBeLessThanOrEqual(60);
    expect(dom.active('buffer')).toEqual(['filling']);
    expect(dom.active('breaker')).toEqual(['open']);
    expect(dom.text('limiter-state')).toBe('held');
    expect(dom.text('limiter-limit')).toBe('2 of 2');
    expect(dom.active('limiter')).toEqual(['held']);
    expect(dom.active('delivery').sort()).toEqual(['backoff', 'sending', 'waiting']);
    expect(dom.text('status')).toMatch(/^live, updated/);
  });
});

describe('GET /debug with debug off', () => {
  it('is 404, like every debug route', async () => {
    for (const path of ['/debug', '/debug/machines', '/debug/app.js', '/debug/app.css']) {
      expect((await call(off.url, path, { accept: 'text/html' })).status, path).toBe(404);
    }
  });
});

describe('batch-emitter machines (CLI)', () => {
  function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/bin.ts', 'machines', ...args], {
        cwd: REPO,
        // no TRANSMITTER_* variable at all
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.once('error', reject);
      child.once('exit', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('--format mermaid prints four titled stateDiagram-v2 documents, exit 0', async () => {
    const { code, stdout, stderr } = await cli(['--format', 'mermaid']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect((stdout.match(/^stateDiagram-v2$/gm) ?? []).length).toBe(4);
    expect(stdout).toMatch(/^---\ntitle: buffer — /);
    expect(stdout).toContain('title: delivery — ');
    expect(stdout).toContain('title: breaker — ');
    expect(stdout).toContain('title: limiter — ');
    expect(stdout).toContain('  [*] --> flowing\n');
    expect(stdout).toContain('  [*] --> empty\n');
    expect(stdout).toContain('  [*] --> start\n');
    expect(stdout).toContain('  [*] --> closed\n');
    expect(stdout).toContain('  backoff --> waiting : after retryDelay\n');
  });

  it('--format json prints the graphs', async () => {
    const { code, stdout } = await cli(['--format=json', '--machine', 'breaker,buffer']);
    expect(code).toBe(0);
    const graphs = JSON.parse(stdout);
    expect(Object.keys(graphs)).toEqual(['buffer', 'breaker']);
    expect(graphs.breaker.states.map((s: { id: string }) => s.id)).toEqual([
      'closed',
      'open',
      'halfOpen',
      'paused',
    ]);
  });

  it('a bad --format exits 2 with one line', async () => {
    const { code, stdout, stderr } = await cli(['--format', 'svg']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/--format must be mermaid or json/);
  });
});

/** Just enough DOM for the page script: elements by id, the SVG state groups, the deliveries table. */
function fakeDom(html: string) {
  class El {
    textContent = '';
    className = '';
    title = '';
    colSpan = 0;
    max = 1;
    value = 0;
    children: El[] = [];
    private classes = new Set<string>();
    constructor(readonly attrs: Record<string, string> = {}) {}
    classList = {
      add: (c: string) => this.classes.add(c),
      remove: (c: string) => this.classes.delete(c),
      contains: (c: string) => this.classes.has(c),
    };
    getAttribute(name: string) {
      return this.attrs[name] ?? null;
    }
    setAttribute(name: string, value: string) {
      this.attrs[name] = value;
    }
    get firstChild(): El | null {
      return this.children[0] ?? null;
    }
    appendChild(c: El) {
      this.children.push(c);
      return c;
    }
    removeChild(c: El) {
      this.children = this.children.filter((x) => x !== c);
      return c;
    }
    badge = { textContent: '' };
    querySelector(sel: string) {
      return sel === 'text.badge' ? this.badge : null;
    }
    groups: El[] = [];
    querySelectorAll() {
      return this.groups;
    }
  }
  const created: Array<{ name: string; el: El }> = [];
  const byId = new Map<string, El>();
  for (const m of html.matchAll(/id="([\w-]+)"/g)) byId.set(m[1] as string, new El());
  const svgs = new Map<string, El>();
  for (const m of html.matchAll(/<svg [^>]*data-machine="(\w+)"[^>]*>([\s\S]*?)<\/svg>/g)) {
    const svg = new El();
    for (const g of (m[2] as string).matchAll(/<g class="state [^"]*" data-state="([\w.]+)">/g)) {
      svg.groups.push(new El({ 'data-state': g[1] as string }));
    }
    svgs.set(m[1] as string, svg);
  }
  const tbody = new El();
  const document = {
    getElementById: (id: string) => byId.get(id) ?? null,
    querySelector: (sel: string) => {
      if (sel === '#deliveries tbody') return tbody;
      const m = /data-machine="(\w+)"/.exec(sel);
      return m ? (svgs.get(m[1] as string) ?? null) : null;
    },
    createElement: () => new El(),
    createElementNS: (_ns: string, name: string) => {
      const el = new El();
      created.push({ name, el });
      return el;
    },
  };
  return {
    document,
    text: (id: string) => byId.get(id)?.textContent,
    rows: () =>
      tbody.children.map((tr) =>
        tr.children.map((td) => td.textContent || td.children.map((c) => c.textContent).join(' ')),
      ),
    /** the SVG elements the script drew into the origin strip: name and class */
    strip: () =>
      (byId.get('origin-strip')?.children ?? [])
        .flatMap((svg) => svg.children)
        .map((el) => ({ name: created.find((c) => c.el === el)?.name ?? '?', cls: el.attrs.class ?? '' })),
    active: (machine: string) =>
      (svgs.get(machine)?.groups ?? [])
        .filter((g) => g.classList.contains('active'))
        .map((g) => g.attrs['data-state']),
  };
}
