import { register as globalRegister } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { EmitterEvents } from '../../src/observe/events.js';
import { statusClass } from '../../src/observe/counters.js';
import { createMetrics } from '../../src/observe/metrics.js';
import type { StatusSnapshot } from '../../src/observe/status.js';

// ---- a strict parser of the Prometheus text exposition format (0.0.4) ------------------------

type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Family {
  name: string;
  help?: string;
  type: MetricType;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** As Prometheus reads values (Go's strconv.ParseFloat: Inf/NaN spellings are case-insensitive). */
function parseValue(text: string, line: number): number {
  if (/^\+?(inf|infinity)$/i.test(text)) return Infinity;
  if (/^-(inf|infinity)$/i.test(text)) return -Infinity;
  if (/^nan$/i.test(text)) return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text))
    throw new Error(`line ${line}: bad value ${text}`);
  return Number(text);
}

/** `name{a="b",c="d"} value [timestamp]` */
function parseSample(text: string, line: number): Sample {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(text);
  if (!nameMatch) throw new Error(`line ${line}: no metric name`);
  const name = nameMatch[0];
  let i = name.length;
  const labels: Record<string, string> = {};
  if (text[i] === '{') {
    i += 1;
    while (text[i] !== '}') {
      const labelMatch = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(text.slice(i));
      if (!labelMatch) throw new Error(`line ${line}: bad label name at ${i}`);
      const label = labelMatch[0];
      if (!LABEL_NAME.test(label) || label in labels)
        throw new Error(`line ${line}: bad or repeated label ${label}`);
      i += label.length;
      if (text.slice(i, i + 2) !== '="') throw new Error(`line ${line}: expected =" after ${label}`);
      i += 2;
      let value = '';
      for (;;) {
        const ch = text[i];
        if (ch === undefined) throw new Error(`line ${line}: unterminated label value`);
        i += 1;
        if (ch === '"') break;
        if (ch === '\\') {
          const esc = text[i];
          i += 1;
          if (esc === 'n') value += '\n';
          else if (esc === '\\' || esc === '"') value += esc;
          else throw new Error(`line ${line}: bad escape \\${esc}`);
        } else value += ch;
      }
      labels[label] = value;
      if (text[i] === ',') i += 1;
      else if (text[i] !== '}') throw new Error(`line ${line}: expected , or } at ${i}`);
    }
    i += 1;
  }
  if (text[i] !== ' ') throw new Error(`line ${line}: expected a space before the value`);
  const rest = text.slice(i + 1).split(' ');
  if (rest.length < 1 || rest.length > 2 || rest[0] === '') throw new Error(`line ${line}: bad value part`);
  if (rest[1] !== undefined && !/^-?\d+$/.test(rest[1])) throw new Error(`line ${line}: bad timestamp`);
  return { name, labels, value: parseValue(rest[0] as string, line) };
}

function familyOf(sampleName: string, families: Map<string, Family>): Family | undefined {
  const exact = families.get(sampleName);
  if (exact) return exact;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sampleName.endsWith(suffix)) continue;
    const family = families.get(sampleName.slice(0, -suffix.length));
    if (family?.type === 'histogram') return family;
    if (family?.type === 'summary' && suffix !== '_bucket') return family;
  }
  return undefined;
}

function seriesKey(name: string, labels: Record<string, string>): string {
  return `${name}{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',')}}`;
}

function checkHistogram(family: Family): void {
  const groups = new Map<string, { buckets: Array<[number, number]>; sum?: number; count?: number }>();
  for (const s of family.samples) {
    const { le, ...rest } = s.labels;
    const key = seriesKey('', rest);
    const group = groups.get(key) ?? { buckets: [] };
    groups.set(key, group);
    if (s.name === `${family.name}_bucket`) {
      if (le === undefined) throw new Error(`${family.name}: bucket without le`);
      group.buckets.push([parseValue(le, 0), s.value]);
    } else if (le !== undefined) throw new Error(`${family.name}: le outside a bucket`);
    else if (s.name === `${family.name}_sum`) group.sum = s.value;
    else if (s.name === `${family.name}_count`) group.count = s.value;
    else throw new Error(`${family.name}: unexpected sample ${s.name}`);
  }
  for (const [key, g] of groups) {
    if (g.sum === undefined || g.count === undefined)
      throw new Error(`${family.name}${key}: _sum/_count missing`);
    const last = g.buckets[g.buckets.length - 1];
    if (!last || last[0] !== Infinity) throw new Error(`${family.name}${key}: no +Inf bucket`);
    for (let j = 1; j < g.buckets.length; j += 1) {
      const [prevLe, prevCount] = g.buckets[j - 1] as [number, number];
      const [le, count] = g.buckets[j] as [number, number];
      if (!(le > prevLe)) throw new Error(`${family.name}${key}: le not increasing`);
      if (count < prevCount) throw new Error(`${family.name}${key}: buckets not cumulative`);
    }
    if (last[1] !== g.count)
      throw new Error(`${family.name}${key}: +Inf bucket ${last[1]} != _count ${g.count}`);
  }
}

function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const families = new Map<string, Family>();
  const series = new Set<string>();
  const helps = new Map<string, string>();
  let currentFamily: Family | undefined;
  const finished = new Set<string>();
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') return;
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(raw);
      if (!m) return; // other comments are allowed
      const [, kind, name, rest = ''] = m as unknown as [string, string, string, string?];
      if (!NAME.test(name)) throw new Error(`line ${line}: bad metric name ${name}`);
      if (kind === 'HELP') {
        if (helps.has(name)) throw new Error(`line ${line}: second HELP for ${name}`);
        helps.set(name, rest);
        return;
      }
      if (families.has(name)) throw new Error(`line ${line}: second TYPE for ${name}`);
      if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) {
        throw new Error(`line ${line}: bad type ${rest}`);
      }
      if (currentFamily) finished.add(currentFamily.name);
      currentFamily = { name, type: rest as MetricType, samples: [], help: helps.get(name) };
      families.set(name, currentFamily);
      return;
    }
    const sample = parseSample(raw, line);
    const family = familyOf(sample.name, families);
    if (!family) throw new Error(`line ${line}: sample ${sample.name} before its TYPE`);
    if (family !== currentFamily || finished.has(family.name)) {
      throw new Error(`line ${line}: samples of ${family.name} are not contiguous`);
    }
    const key = seriesKey(sample.name, sample.labels);
    if (series.has(key)) throw new Error(`line ${line}: duplicate series ${key}`);
    series.add(key);
    family.samples.push(sample);
  });
  for (const family of families.values()) {
    if (family.type === 'histogram') checkHistogram(family);
    if (family.type === 'counter') {
      for (const s of family.samples) {
        if (!(s.value >= 0)) throw new Error(`${family.name}: negative or NaN counter`);
      }
    }
  }
  return families;
}

// ---- helpers -------------------------------------------------------------------------------

function value(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const family = familyOf(name, families);
  const sample = family?.samples.find(
    (s) =>
      s.name === name &&
      Object.keys(labels).every((k) => s.labels[k] === labels[k]) &&
      Object.keys(s.labels).length === Object.keys(labels).length,
  );
  return sample?.value;
}

function baseStatus(overrides: Partial<StatusSnapshot> = {}): StatusSnapshot {
  return {
    natsConnected: true,
    consumerBound: true,
    spool: { open: true, batches: 4, bytes: 4096, maxBytes: 1 << 20, deadLetters: 2 },
    deliveriesActive: 3,
    queued: 1,
    openItems: 250,
    maxItems: 1000,
    breaker: {
      origin: 'https://ingest.example:8443',
      state: 'closed',
      allowed: 2,
      inFlight: 1,
      consecutiveFailures: 0,
      resetTimeoutMs: 60_000,
    },
    shuttingDown: false,
    ...overrides,
  };
}

// ---- tests ---------------------------------------------------------------------------------

describe('parseExposition (the test parser itself)', () => {
  it('rejects malformed expositions', () => {
    expect(() => parseExposition('x 1')).toThrow(/newline/);
    expect(() => parseExposition('x 1\n')).toThrow(/before its TYPE/);
    expect(() => parseExposition('# TYPE x gauge\nx{a="1} 1\n')).toThrow();
    expect(() => parseExposition('# TYPE x gauge\nx 1\nx 2\n')).toThrow(/duplicate/);
    expect(() => parseExposition('# TYPE x gauge\nx abc\n')).toThrow(/bad value/);
    expect(() =>
      parseExposition('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'),
    ).toThrow(/cumulative/);
    expect(() => parseExposition('# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n')).toThrow(
      /_count/,
    );
    const ok = parseExposition(
      '# HELP x a "thing"\n# TYPE x gauge\nx{a="q\\"\\\\\\n"} 1.5e3\n# TYPE y_total counter\ny_total 3\n# TYPE z gauge\nz Nan\n',
    );
    expect(ok.get('x')?.samples[0]?.labels.a).toBe('q"\\\n');
    expect(ok.get('x')?.samples[0]?.value).toBe(1500);
  });
});

describe('createMetrics', () => {
  it('classifies status codes', () => {
    expect([200, 204, 413, 503, undefined, 0].map(statusClass)).toEqual([
      '2xx',
      '2xx',
      '4xx',
      '5xx',
      'none',
      'none',
    ]);
  });

  it('counts a known run from the events and reads gauges from the status at scrape time', async () => {
    const events = new EmitterEvents();
    let clock = 1_700_000_000_000;
    let status = baseStatus();
    const metrics = createMetrics(events, () => status, { now: () => clock });

    events.emit('received', { section: 'edges', source: 'jetstream', count: 2 });
    events.emit('received', { section: 'nodes_ip', source: 'api', count: 1 });
    events.emit('rejected', { reason: 'invalid_json', detail: 'invalid_json: Unexpected token' });
    events.emit('rejected', { reason: 'invalid_json', detail: 'invalid_json: x' });
    events.emit('rejected', { reason: 'invalid item!', detail: 'weird' });
    events.emit('sealed', {
      batchId: 'b1',
      trigger: 'size',
      items: 3,
      rawBytes: 2000,
      storedBytes: 500,
      oldestPublishedMs: clock - 5000,
    });
    events.emit('sealed', { batchId: 'b2', trigger: 'interval', items: 1, rawBytes: 100, storedBytes: 90 });
    events.emit('sealed', { batchId: 'b3', trigger: 'manual', items: 1, rawBytes: 100, storedBytes: 90 });
    const retry503 = { kind: 'retryable', status: 503, reason: 'http_503' } as const;
    const refused = { kind: 'retryable', reason: 'ECONNREFUSED' } as const;
    events.emit('attempt', {
      batchId: 'b1',
      attempt: 1,
      outcome: retry503,
      durationMs: 20,
      nextDelayMs: 1000,
    });
    events.emit('attempt', { batchId: 'b1', attempt: 2, outcome: refused, durationMs: 2, nextDelayMs: 2000 });
    clock += 3000;
    events.emit('attempt', {
      batchId: 'b1',
      attempt: 3,
      outcome: { kind: 'success', status: 200 },
      durationMs: 40,
    });
    events.emit('finished', {
      batchId: 'b1',
      result: 'delivered',
      attempts: 3,
      createdAtMs: clock - 1500,
      items: 3,
    });
    events.emit('attempt', {
      batchId: 'b2',
      attempt: 1,
      outcome: { kind: 'permanent', status: 400, reason: 'http_400' },
      durationMs: 5,
    });
    events.emit('finished', {
      batchId: 'b2',
      result: 'deadLettered',
      attempts: 1,
      createdAtMs: clock,
      items: 1,
    });
    events.emit('breaker', { origin: 'https://ingest.example:8443', from: 'closed', to: 'open' });
    events.emit('intake', { paused: true, reason: 'spool_full' });
    events.emit('intake', { paused: false });

    const text = await metrics.metrics();
    const f = parseExposition(text);

    // names follow the conventions; every family has HELP and a TYPE
    for (const family of f.values()) {
      expect(family.help, family.name).toBeTruthy();
      if (family.type === 'counter') expect(family.name).toMatch(/_total$/);
      if (family.name.startsWith('batch_emitter_') && /seconds|duration|latency/.test(family.name)) {
        expect(family.name).toMatch(/_seconds$/);
      }
    }
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);

    expect(value(f, 'batch_emitter_items_received_total', { section: 'edges', source: 'jetstream' })).toBe(2);
    expect(value(f, 'batch_emitter_items_received_total', { section: 'nodes_ip', source: 'api' })).toBe(1);
    expect(value(f, 'batch_emitter_items_received_total', { section: 'nodes_cert', source: 'api' })).toBe(0);
    expect(value(f, 'batch_emitter_items_rejected_total', { reason: 'invalid_json' })).toBe(2);
    expect(value(f, 'batch_emitter_items_rejected_total', { reason: 'invalid_item_' })).toBe(1);

    expect(value(f, 'batch_emitter_batches_sealed_total', { trigger: 'size' })).toBe(1);
    expect(value(f, 'batch_emitter_batches_sealed_total', { trigger: 'interval' })).toBe(1);
    expect(value(f, 'batch_emitter_batches_sealed_total', { trigger: 'manual' })).toBe(1);
    expect(value(f, 'batch_emitter_batches_sealed_total', { trigger: 'bytes' })).toBe(0);
    expect(value(f, 'batch_emitter_batches_sealed_total', { trigger: 'shutdown' })).toBe(0);
    expect(value(f, 'batch_emitter_batch_items_count')).toBe(3);
    expect(value(f, 'batch_emitter_batch_items_sum')).toBe(5);
    expect(value(f, 'batch_emitter_batch_uncompressed_bytes_sum')).toBe(2200);
    expect(value(f, 'batch_emitter_batch_stored_bytes_sum')).toBe(680);
    expect(value(f, 'batch_emitter_batch_stored_bytes_bucket', { le: '1024' })).toBe(3);

    expect(
      value(f, 'batch_emitter_delivery_attempts_total', { outcome: 'retryable', status_class: '5xx' }),
    ).toBe(1);
    expect(
      value(f, 'batch_emitter_delivery_attempts_total', { outcome: 'retryable', status_class: 'none' }),
    ).toBe(1);
    expect(
      value(f, 'batch_emitter_delivery_attempts_total', { outcome: 'success', status_class: '2xx' }),
    ).toBe(1);
    expect(
      value(f, 'batch_emitter_delivery_attempts_total', { outcome: 'permanent', status_class: '4xx' }),
    ).toBe(1);
    expect(value(f, 'batch_emitter_delivery_attempt_duration_seconds_count', { outcome: 'retryable' })).toBe(
      2,
    );
    expect(
      value(f, 'batch_emitter_delivery_attempt_duration_seconds_sum', { outcome: 'success' }),
    ).toBeCloseTo(0.04);

    // 2 failed attempts then 1 success: one observation of 3
    expect(value(f, 'batch_emitter_delivery_attempts_per_batch_count')).toBe(1);
    expect(value(f, 'batch_emitter_delivery_attempts_per_batch_sum')).toBe(3);
    expect(value(f, 'batch_emitter_delivery_attempts_per_batch_bucket', { le: '2' })).toBe(0);
    expect(value(f, 'batch_emitter_delivery_attempts_per_batch_bucket', { le: '3' })).toBe(1);

    expect(value(f, 'batch_emitter_seal_to_delivered_seconds_count')).toBe(1);
    expect(value(f, 'batch_emitter_seal_to_delivered_seconds_sum')).toBeCloseTo(1.5);
    expect(value(f, 'batch_emitter_publish_to_delivered_seconds_count')).toBe(1);
    expect(value(f, 'batch_emitter_publish_to_delivered_seconds_sum')).toBeCloseTo(8);

    expect(value(f, 'batch_emitter_batches_finished_total', { result: 'delivered' })).toBe(1);
    expect(value(f, 'batch_emitter_batches_finished_total', { result: 'dead_lettered' })).toBe(1);
    expect(value(f, 'batch_emitter_batches_finished_total', { result: 'parked' })).toBe(0);
    expect(value(f, 'batch_emitter_items_delivered_total')).toBe(3);
    const origin = 'https://ingest.example:8443';
    expect(value(f, 'batch_emitter_breaker_transitions_total', { origin, to: 'open' })).toBe(1);
    expect(value(f, 'batch_emitter_intake_pauses_total', { reason: 'spool_full' })).toBe(1);

    // gauges from the status
    expect(value(f, 'batch_emitter_spool_batches')).toBe(4);
    expect(value(f, 'batch_emitter_spool_bytes')).toBe(4096);
    expect(value(f, 'batch_emitter_dead_letters')).toBe(2);
    expect(value(f, 'batch_emitter_buffer_fill_ratio')).toBe(0.25);
    expect(value(f, 'batch_emitter_batches_in_flight')).toBe(3);
    expect(value(f, 'batch_emitter_breaker_state', { origin, state: 'closed' })).toBe(1);
    expect(value(f, 'batch_emitter_breaker_state', { origin, state: 'open' })).toBe(0);
    expect(value(f, 'batch_emitter_breaker_requests_in_flight', { origin })).toBe(1);
    // unknown values are left out rather than reported as 0
    expect(f.get('batch_emitter_jetstream_pending_messages')?.samples).toEqual([]);
    expect(f.get('batch_emitter_spool_oldest_batch_age_seconds')?.samples).toEqual([]);

    // default process metrics, in the same registry
    expect(f.has('process_cpu_user_seconds_total')).toBe(true);
    expect(f.has('nodejs_heap_size_used_bytes')).toBe(true);

    // gauges follow the status without anything being pushed
    status = baseStatus({
      spool: {
        open: true,
        batches: 9,
        bytes: 9000,
        maxBytes: 1 << 20,
        oldestCreatedAt: new Date(clock - 42_000).toISOString(),
      },
      openItems: 10,
      openBytes: 800,
      maxBytes: 1000,
      jetstream: { pending: 12, ackPending: 5 },
      breaker: { ...baseStatus().breaker!, state: 'open', inFlight: 0 },
    });
    const g = parseExposition(await metrics.metrics());
    expect(value(g, 'batch_emitter_spool_batches')).toBe(9);
    expect(value(g, 'batch_emitter_spool_oldest_batch_age_seconds')).toBe(42);
    expect(value(g, 'batch_emitter_buffer_fill_ratio')).toBe(0.8);
    expect(value(g, 'batch_emitter_jetstream_pending_messages')).toBe(12);
    expect(value(g, 'batch_emitter_jetstream_ack_pending_messages')).toBe(5);
    expect(value(g, 'batch_emitter_breaker_state', { origin, state: 'open' })).toBe(1);
    expect(value(g, 'batch_emitter_breaker_state', { origin, state: 'closed' })).toBe(0);
    expect(g.get('batch_emitter_dead_letters')?.samples).toEqual([]);

    // its own registry: nothing in prom-client's global one
    expect(await globalRegister.metrics()).not.toContain('batch_emitter_');
    metrics.close();
    events.emit('received', { section: 'edges', source: 'jetstream', count: 1 });
    const h = parseExposition(await metrics.metrics());
    expect(value(h, 'batch_emitter_items_received_total', { section: 'edges', source: 'jetstream' })).toBe(2);
  });

  it('publish latency survives a parked round, and is not observed for replayed batches', async () => {
    const events = new EmitterEvents();
    let clock = 1_000_000;
    const metrics = createMetrics(events, () => baseStatus(), { now: () => clock, defaultMetrics: false });
    events.emit('sealed', {
      batchId: 'p',
      trigger: 'size',
      items: 1,
      rawBytes: 1,
      storedBytes: 1,
      oldestPublishedMs: clock,
    });
    clock += 10_000;
    events.emit('finished', { batchId: 'p', result: 'parked', attempts: 10, createdAtMs: clock, items: 1 });
    clock += 10_000;
    events.emit('finished', {
      batchId: 'p',
      result: 'delivered',
      attempts: 11,
      createdAtMs: clock - 20_000,
      items: 1,
    });
    events.emit('finished', {
      batchId: 'replayed',
      result: 'delivered',
      attempts: 1,
      createdAtMs: clock,
      items: 1,
    });
    const f = parseExposition(await metrics.metrics());
    expect(value(f, 'batch_emitter_publish_to_delivered_seconds_count')).toBe(1);
    expect(value(f, 'batch_emitter_publish_to_delivered_seconds_sum')).toBe(20);
    expect(value(f, 'batch_emitter_seal_to_delivered_seconds_count')).toBe(2);
    expect(value(f, 'batch_emitter_delivery_attempts_per_batch_bucket', { le: '15' })).toBe(2);
    expect(f.has('process_cpu_user_seconds_total')).toBe(false);
    metrics.close();
  });

  it('caps rejection reasons, reads async figures once per scrape, and survives a failing status', async () => {
    const events = new EmitterEvents();
    let calls = 0;
    let fail = false;
    const metrics = createMetrics(
      events,
      () => {
        calls += 1;
        if (fail) throw new Error('not started');
        return baseStatus({ spool: { open: true, batches: 1, bytes: 1, maxBytes: 10 } });
      },
      {
        defaultMetrics: false,
        jetstreamPending: async () => ({ pending: 7, ackPending: 1 }),
        spoolStats: () => new Promise(() => undefined), // never answers: bounded by the timeout
        timeoutMs: 50,
      },
    );
    for (let i = 0; i < 40; i += 1) events.emit('rejected', { reason: `code${i}`, detail: '' });
    const f = parseExposition(await metrics.metrics());
    expect(calls).toBe(1);
    expect(f.get('batch_emitter_items_rejected_total')?.samples).toHaveLength(33);
    expect(value(f, 'batch_emitter_items_rejected_total', { reason: 'other' })).toBe(8);
    expect(value(f, 'batch_emitter_jetstream_pending_messages')).toBe(7);

    fail = true;
    const g = parseExposition(await metrics.metrics());
    expect(g.get('batch_emitter_spool_batches')?.samples).toEqual([]);
    expect(g.get('batch_emitter_breaker_state')?.samples).toEqual([]);
    metrics.close();
  });

  it('two instances in one process do not collide', async () => {
    const a = createMetrics(new EmitterEvents(), () => baseStatus());
    const b = createMetrics(new EmitterEvents(), () => baseStatus());
    parseExposition(await a.metrics());
    parseExposition(await b.metrics());
    a.close();
    b.close();
  });
});
