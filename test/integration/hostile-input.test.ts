import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { Emitter } from '../../src/emitter.js';
import { startServer } from '../../src/observe/server.js';
import { createLogger } from '../../src/util/logger.js';
import { createMetrics } from '../../src/observe/metrics.js';
import type { DeadLetter } from '../../src/spool/spool.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { testEnv } from '../support/env.js';
import { json, publishInOrder, utf8, type RawMessage } from '../../harness/nats-publish.js';
import { deliveredKeys, sampleMessages, tempDir } from '../../harness/workload.js';

/**
 * Issue 7, scenario 6: hostile input on approved.* subjects, interleaved with good messages.
 * Every hostile message is dead-lettered with a reason (and terminated in JetStream), nothing
 * crashes or pollutes prototypes, the consumer never has to re-bind, and every good message is
 * delivered exactly once. Inputs the data model documents as acceptable (extra fields on typed
 * schemas are stripped; any JSON object is a generic event; more subject tokens route to events)
 * are asserted as delivered, in the form the model gives them.
 */

const MAX_BYTES = 64 * 1024;
const EXCERPT = 4096;
const T = '2026-01-01T00:00:00Z';
/** short, so a message that was not really terminated comes back while the test watches */
const ACK_WAIT_S = 1;

const DOMAIN = { host: 'h.hostile.test', apex: 'hostile.test', first_seen: T, last_seen: T };
const IP = { ip: '192.0.2.1', first_seen: T, last_seen: T };
const CERT = {
  spki_sha256: 'ab'.repeat(32),
  subject_cn: 'h.hostile.test',
  issuer_cn: 'CA',
  not_before: T,
  not_after: T,
};
const EDGE = {
  type: 'RESOLVES_TO',
  source: 'h.hostile.test',
  target: '192.0.2.1',
  observed_at: T,
  probe_id: 'probe-1',
  run_id: 'run-1',
};

const SCHEMAS = {
  domain: { subject: 'approved.domain', path: 'node_domain', base: DOMAIN },
  ip: { subject: 'approved.ip', path: 'node_ip', base: IP },
  cert: { subject: 'approved.cert', path: 'node_cert', base: CERT },
  edge: { subject: 'approved.edge', path: 'edge', base: EDGE },
} as const;

/** A value of the wrong JSON type for a field (all fields are strings), varied per field. */
const WRONG = [42, true, { nested: 'object' }, ['array'], null, 1.5e300];

interface HostileCase {
  name: string;
  subject: string;
  payload: Uint8Array;
  msgId?: string;
  /** dead: must be dead-lettered with a reason matching `reason` */
  expect: 'dead';
  reason: RegExp;
}

interface AcceptedCase {
  name: string;
  subject: string;
  payload: Uint8Array;
  msgId?: string;
  expect: 'delivered';
  /** the delivered key (see deliveredKeys) */
  key: string;
}

type Case = HostileCase | AcceptedCase;

const bytes = (...parts: Array<string | number[]>): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

function deepObject(depth: number): string {
  return `{"id":"deep-${depth}","deep":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
}

function hostileCases(): HostileCase[] {
  const cases: HostileCase[] = [];
  const dead = (name: string, subject: string, payload: Uint8Array, reason: RegExp, msgId?: string) =>
    cases.push({ name, subject, payload, reason, expect: 'dead', ...(msgId ? { msgId } : {}) });

  // --- bytes and syntax
  dead('invalid JSON', 'approved.domain', utf8('{"host": 42'), /^invalid_json: /);
  dead('invalid JSON (not JSON at all)', 'approved.finding', utf8('hello, world'), /^invalid_json: /);
  dead(
    'truncated JSON (domain)',
    'approved.domain',
    utf8(JSON.stringify(DOMAIN).slice(0, 40)),
    /^invalid_json: /,
  );
  dead('truncated JSON (edge)', 'approved.edge', utf8(JSON.stringify(EDGE).slice(0, -1)), /^invalid_json: /);
  dead('trailing garbage', 'approved.ip', utf8(`${JSON.stringify(IP)}}`), /^invalid_json: /);
  dead('empty body (typed)', 'approved.domain', new Uint8Array(0), /^invalid_json: /);
  dead('empty body (generic)', 'approved.finding', new Uint8Array(0), /^invalid_json: /);
  dead('whitespace-only body', 'approved.cert', utf8(' \n\t '), /^invalid_json: /);
  dead('NaN literal', 'approved.finding', utf8('{"id":"nan","v":NaN}'), /^invalid_json: /);
  dead(
    'invalid UTF-8 (0xff 0xfe)',
    'approved.finding',
    bytes('{"id":"', [0xff, 0xfe], '"}'),
    /^invalid_utf8: /,
  );
  dead(
    'invalid UTF-8 (overlong 0xc0 0xaf)',
    'approved.domain',
    bytes('{"host":"a', [0xc0, 0xaf], '"}'),
    /^invalid_utf8: /,
  );
  dead(
    'invalid UTF-8 (CESU surrogate)',
    'approved.edge',
    bytes('{"type":"', [0xed, 0xa0, 0x80], '"}'),
    /^invalid_utf8: /,
  );
  dead(
    'invalid UTF-8 (cut multibyte)',
    'approved.finding',
    bytes('{"id":"x', [0xe2, 0x82]),
    /^invalid_utf8: /,
  );
  dead(
    'two UTF-8 BOMs',
    'approved.finding',
    bytes([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf], '{"id":"bom2"}'),
    /^invalid_json: /,
  );
  dead(
    'Nats-Msg-Id header on invalid JSON',
    'approved.finding',
    utf8('{oops'),
    /^invalid_json: /,
    'hostile-msg-id-1',
  );

  // --- top-level values that are not objects
  const topLevel: Array<[string, string]> = [
    ['null', 'null'],
    ['array', '[1,2,3]'],
    ['number', '42'],
    ['string', '"hello"'],
    ['boolean', 'true'],
  ];
  for (const [kind, text] of topLevel) {
    dead(
      `top-level ${kind} (generic)`,
      'approved.finding',
      utf8(text),
      /^invalid_item: data: expected a JSON object/,
    );
  }
  dead('top-level null (domain)', 'approved.domain', utf8('null'), /^invalid_item: node_domain: /);
  dead('top-level array (ip)', 'approved.ip', utf8(`[${JSON.stringify(IP)}]`), /^invalid_item: node_ip: /);
  dead('top-level number (cert)', 'approved.cert', utf8('7'), /^invalid_item: node_cert: /);
  dead('top-level string (edge)', 'approved.edge', utf8('"RESOLVES_TO"'), /^invalid_item: edge: /);
  dead(
    'top-level array on approved.domain.extra (generic)',
    'approved.domain.extra',
    utf8('[]'),
    /^invalid_item: data: /,
  );

  // --- every field of every schema: wrong type, then missing
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    Object.keys(schema.base).forEach((field, i) => {
      const wrong = WRONG[i % WRONG.length];
      dead(
        `${name}.${field} wrong type (${JSON.stringify(wrong)})`,
        schema.subject,
        json({ ...schema.base, [field]: wrong }),
        new RegExp(`^invalid_item: ${schema.path}\\.${field}: `),
      );
      const missing: Record<string, unknown> = { ...schema.base };
      delete missing[field];
      dead(
        `${name}.${field} missing`,
        schema.subject,
        json(missing),
        new RegExp(`^invalid_item: ${schema.path}\\.${field}: `),
      );
    });
  }

  // --- values out of range
  const ts = (name: string, value: string) =>
    dead(
      `timestamp ${name}`,
      'approved.domain',
      json({ ...DOMAIN, last_seen: value }),
      /^invalid_item: node_domain\.last_seen: /,
    );
  ts('year 10000', '10000-01-01T00:00:00Z');
  ts('2024-13-45', '2024-13-45T00:00:00Z');
  ts('2024-02-30', '2024-02-30T00:00:00Z');
  ts('offset pushing past 9999', '9999-12-31T23:59:59-01:00');
  ts('date only', '2024-01-01');
  ts('leading space', ' 2024-01-01T00:00:00Z');
  // times out of order, and a valid time whose UTC form leaves years 0000-9999 (issue 12, item 15)
  dead(
    'domain first_seen after last_seen',
    'approved.domain',
    json({ ...DOMAIN, first_seen: '2026-01-02T00:00:00Z' }),
    /^invalid_item: node_domain\.first_seen: later than last_seen$/,
  );
  dead(
    'ip first_seen after last_seen (by offset)',
    'approved.ip',
    json({ ...IP, first_seen: '2025-12-31T23:30:00-01:00' }),
    /^invalid_item: node_ip\.first_seen: later than last_seen$/,
  );
  dead(
    'cert not_after before not_before',
    'approved.cert',
    json({ ...CERT, not_after: '2025-12-31T23:59:59Z' }),
    /^invalid_item: node_cert\.not_after: earlier than not_before$/,
  );
  dead(
    'edge observed_at at year -1 in UTC',
    'approved.edge',
    json({ ...EDGE, observed_at: '0000-01-01T00:30:00+01:00' }),
    /^invalid_item: edge\.observed_at: outside years 0000-9999 in UTC$/,
  );
  dead(
    'domain last_seen at year 10000 in UTC',
    'approved.domain',
    json({ ...DOMAIN, last_seen: '9999-12-31T23:30:00-01:00' }),
    /^invalid_item: node_domain\.last_seen: outside years 0000-9999 in UTC$/,
  );
  const badIp = (value: string) =>
    dead(
      `invalid IP ${JSON.stringify(value)}`,
      'approved.ip',
      json({ ...IP, ip: value }),
      /^invalid_item: node_ip\.ip: /,
    );
  badIp('999.1.1.1');
  badIp('not-an-ip');
  badIp('10.0.0.1:80');
  badIp(':::1');
  badIp('10.0.0.0/8');
  for (const type of ['OWNS', 'resolves_to', '']) {
    dead(
      `edge type ${JSON.stringify(type)} not in the enum`,
      'approved.edge',
      json({ ...EDGE, type }),
      /^invalid_item: edge\.type: /,
    );
  }
  dead(
    'cert spki_sha256 too short',
    'approved.cert',
    json({ ...CERT, spki_sha256: 'abc' }),
    /^invalid_item: node_cert\.spki_sha256: /,
  );
  dead(
    'cert spki_sha256 with spaces',
    'approved.cert',
    json({ ...CERT, spki_sha256: `${'a'.repeat(30)} ${'b'.repeat(30)}` }),
    /^invalid_item: node_cert\.spki_sha256: /,
  );
  dead(
    'cert subject_cn of 2,000 chars',
    'approved.cert',
    json({ ...CERT, subject_cn: 'x'.repeat(2000) }),
    /^invalid_item: node_cert\.subject_cn: /,
  );
  dead('empty host', 'approved.domain', json({ ...DOMAIN, host: '' }), /^invalid_item: node_domain\.host: /);

  // --- size and depth
  dead(
    'huge string: 900 KB host',
    'approved.domain',
    json({ ...DOMAIN, host: 'h'.repeat(900 * 1024) }),
    /^invalid_item: node_domain\.host: /,
  );
  dead(
    'huge generic event (900 KB)',
    'approved.finding',
    json({ id: 'huge-900k', blob: 'x'.repeat(900 * 1024) }),
    /^ITEM_TOO_LARGE: /,
  );
  dead(
    'generic event over TRANSMITTER_BATCH_MAX_BYTES (100 KB)',
    'approved.finding',
    json({ id: 'over-100k', blob: 'x'.repeat(100 * 1024) }),
    /^ITEM_TOO_LARGE: /,
  );
  dead(
    'deeply nested object, depth 10,000 (generic)',
    'approved.finding',
    utf8(deepObject(10_000)),
    /depth|nest|call stack/i,
  );
  dead(
    'deeply nested arrays, depth 100,000 (generic)',
    'approved.finding',
    utf8(`{"id":"deep-arrays","d":${'['.repeat(100_000)}${']'.repeat(100_000)}}`),
    /depth|nest|call stack|ITEM_TOO_LARGE/i,
  );
  dead(
    'depth 100 hidden by a duplicate key (generic)',
    'approved.finding',
    utf8(`{"id":"dup-deep","d":${deepObject(100)},"d":1}`),
    /^invalid_item: data: nested deeper than 64 levels/,
  );
  dead(
    'deeply nested host (domain)',
    'approved.domain',
    utf8(`{"host":${'['.repeat(10_000)}${']'.repeat(10_000)}}`),
    /^invalid_item: node_domain\.host: /,
  );

  // --- prototype keys that must not stand in for the real fields
  dead(
    '__proto__ carrying every field (edge)',
    'approved.edge',
    utf8(`{"__proto__":${JSON.stringify(EDGE)}}`),
    /^invalid_item: edge\.type: /,
  );
  dead(
    'constructor.prototype carrying the fields (domain)',
    'approved.domain',
    utf8(`{"constructor":{"prototype":${JSON.stringify(DOMAIN)}}}`),
    /^invalid_item: node_domain\.host: /,
  );
  return cases;
}

const PROTO_EVENT =
  '{"id":"proto-event","__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"}}';
const NEAR_LIMIT_EVENT = { id: 'near-limit', blob: 'n'.repeat(MAX_BYTES - 1024) };

function acceptedCases(): AcceptedCase[] {
  return [
    {
      name: 'extra fields on a typed schema (stripped)',
      subject: 'approved.domain',
      payload: json({
        ...DOMAIN,
        host: 'extra-fields.hostile.test',
        evil: true,
        nested: { deep: [1, 2] },
        score: 9,
      }),
      expect: 'delivered',
      key: 'd:extra-fields.hostile.test',
    },
    {
      name: '__proto__ / constructor / prototype keys on a typed schema (stripped)',
      subject: 'approved.edge',
      payload: utf8(
        `{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"},${JSON.stringify({ ...EDGE, source: 'proto.hostile.test' }).slice(1)}`,
      ),
      expect: 'delivered',
      key: 'e:RESOLVES_TO|proto.hostile.test|192.0.2.1',
    },
    {
      name: '__proto__ / constructor / prototype keys in a generic event (kept as data)',
      subject: 'approved.finding',
      payload: utf8(PROTO_EVENT),
      expect: 'delivered',
      key: 'v:proto-event',
    },
    {
      name: 'approved.domain.extra (more tokens) goes to events',
      subject: 'approved.domain.extra',
      payload: json({ ...DOMAIN, id: 'more-tokens' }),
      expect: 'delivered',
      key: 'v:more-tokens',
    },
    {
      name: 'approved.constructor (an Object.prototype name) goes to events',
      subject: 'approved.constructor',
      payload: json({ id: 'subject-constructor' }),
      expect: 'delivered',
      key: 'v:subject-constructor',
    },
    {
      name: 'approved.__proto__ goes to events',
      subject: 'approved.__proto__',
      payload: json({ id: 'subject-proto' }),
      expect: 'delivered',
      key: 'v:subject-proto',
    },
    {
      name: 'approved.DOMAIN (case differs) goes to events',
      subject: 'approved.DOMAIN',
      payload: json({ id: 'upper-case-subject' }),
      expect: 'delivered',
      key: 'v:upper-case-subject',
    },
    {
      name: 'one UTF-8 BOM (ignored, RFC 8259 section 8.1)',
      subject: 'approved.finding',
      payload: bytes([0xef, 0xbb, 0xbf], '{"id":"bom1"}'),
      expect: 'delivered',
      key: 'v:bom1',
    },
    {
      name: 'Nats-Msg-Id header on a good event (becomes msg_id)',
      subject: 'approved.finding',
      payload: json({ id: 'with-msg-id' }),
      msgId: 'custom-"id"-<script>',
      expect: 'delivered',
      key: 'v:with-msg-id',
    },
    {
      name: 'generic event just under TRANSMITTER_BATCH_MAX_BYTES',
      subject: 'approved.finding',
      payload: json(NEAR_LIMIT_EVENT),
      expect: 'delivered',
      key: 'v:near-limit',
    },
    {
      name: 'nested object, depth 20 (generic)',
      subject: 'approved.finding',
      payload: utf8(deepObject(20)),
      expect: 'delivered',
      key: 'v:deep-20',
    },
  ];
}

let nats: NatsServerHandle;
let sink: Sink;

beforeAll(async () => {
  [nats, sink] = await Promise.all([startNats(), startSink()]);
});
afterAll(async () => {
  await Promise.all([nats?.stop(), sink?.close()]);
});

describe('hostile input on approved.* (issue 7, scenario 6)', () => {
  it('dead-letters every hostile message with a reason, delivers every good one, and never crashes', async () => {
    const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort();
    const crashes: unknown[] = [];
    const onCrash = (error: unknown) => crashes.push(error);
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);

    const logLines: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
    const logStream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
        done();
      },
    });
    const spool = await tempDir('hostile');
    const config = loadConfig(
      testEnv({
        natsUrl: nats.url,
        sinkUrl: `${sink.url}/ingest`,
        spoolDir: spool.path,
        extra: {
          TRANSMITTER_NATS_DURABLE: 'hostile',
          TRANSMITTER_BATCH_MAX_BYTES: String(MAX_BYTES),
          TRANSMITTER_BATCH_SIZE: '100',
          TRANSMITTER_NATS_ACK_WAIT_S: String(ACK_WAIT_S),
        },
      }),
    );
    const emitter = new Emitter(config, { logger: createLogger('info', logStream) });
    await emitter.start();
    try {
      const hostile = hostileCases();
      const accepted = acceptedCases();
      const good = sampleMessages(hostile.length + accepted.length, 'good');
      expect(hostile.length).toBeGreaterThanOrEqual(50);

      // good, odd, good, odd, ...
      const odd: Case[] = [...hostile, ...accepted].sort((a, b) => a.name.localeCompare(b.name));
      const messages: RawMessage[] = [];
      const oddAt = new Map<number, Case>();
      odd.forEach((c, i) => {
        const g = good[i];
        if (g) messages.push({ subject: g.subject, payload: json(g.data) });
        oddAt.set(messages.length, c);
        messages.push({ subject: c.subject, payload: c.payload, ...(c.msgId ? { msgId: c.msgId } : {}) });
      });
      const seqs = await publishInOrder({ servers: nats.url }, messages);
      const seqOf = new Map<Case, number>();
      for (const [index, c] of oddAt) seqOf.set(c, seqs[index] as number);

      const wanted = [...good.map((g) => g.key), ...accepted.map((c) => c.key)];
      await sink
        .waitFor((rs) => {
          const got = new Set(deliveredKeys(rs));
          return wanted.every((k) => got.has(k));
        }, 20_000)
        .catch(() => undefined); // asserted below, case by case
      let letters: DeadLetter[] = [];
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        letters = await emitter.deadLetters();
        if (letters.length >= hostile.length) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await emitter.wait();
      letters = await emitter.deadLetters();
      const letterBySeq = new Map(letters.map((l) => [l.message?.seq, l]));
      const delivered = deliveredKeys(sink.requests);

      const rows = odd.map((c) => {
        const letter = letterBySeq.get(seqOf.get(c));
        const count = c.expect === 'delivered' ? delivered.filter((k) => k === c.key).length : 0;
        const outcome = letter ? 'dead-lettered' : count > 0 ? `delivered x${count}` : 'LOST';
        return {
          case: c.name.slice(0, 70),
          expected: c.expect === 'dead' ? 'dead-lettered' : 'delivered x1',
          outcome,
          reason: letter ? letter.reason.slice(0, 110) : '',
        };
      });
      console.table(rows);

      // every hostile message: dead-lettered, with its reason, its subject and its raw bytes
      for (const c of hostile) {
        const letter = letterBySeq.get(seqOf.get(c));
        expect.soft(letter, `${c.name}: dead-lettered`).toBeDefined();
        if (!letter) continue;
        expect.soft(letter.kind).toBe('message');
        expect.soft(letter.reason, c.name).toMatch(c.reason);
        expect.soft(letter.message?.subject).toBe(c.subject);
        expect.soft(letter.message?.rawBytes, c.name).toBe(c.payload.length);
        expect.soft(letter.message?.truncated).toBe(c.payload.length > EXCERPT);
        const raw = Buffer.from(letter.message?.rawBase64 ?? '', 'base64');
        expect
          .soft(raw.equals(Buffer.from(c.payload.subarray(0, EXCERPT))), `${c.name}: raw excerpt`)
          .toBe(true);
      }
      // nothing else was dead-lettered
      const hostileSeqs = new Set(hostile.map((c) => seqOf.get(c)));
      expect
        .soft(letters.filter((l) => !hostileSeqs.has(l.message?.seq ?? -1)).map((l) => l.reason))
        .toEqual([]);
      expect.soft(emitter.stats.rejected).toBe(hostile.length);

      // every good message and every acceptable odd one: delivered exactly once
      const counts = new Map<string, number>();
      for (const k of delivered) counts.set(k, (counts.get(k) ?? 0) + 1);
      expect.soft(wanted.filter((k) => counts.get(k) !== 1)).toEqual([]);

      // the documented shapes of the acceptable odd ones
      const bodies = sink.requests.map((r) => r.body as Record<string, Array<Record<string, unknown>>>);
      const domains = bodies.flatMap((b) => b.nodes_domain ?? []);
      const edges = bodies.flatMap((b) => b.edges ?? []);
      const events = bodies.flatMap((b) => b.events ?? []);
      const extra = domains.find((d) => d.host === 'extra-fields.hostile.test');
      expect.soft(Object.keys(extra ?? {}).sort()).toEqual(['apex', 'first_seen', 'host', 'last_seen']);
      const protoEdge = edges.find((e) => e.source === 'proto.hostile.test');
      expect
        .soft(Object.keys(protoEdge ?? {}).sort())
        .toEqual(['observed_at', 'probe_id', 'run_id', 'source', 'target', 'type']);
      const eventOf = (id: string) => events.find((e) => (e.data as { id?: unknown }).id === id);
      expect.soft(JSON.stringify(eventOf('proto-event')?.data)).toBe(PROTO_EVENT);
      expect.soft(eventOf('more-tokens')?.subject).toBe('approved.domain.extra');
      expect.soft(eventOf('upper-case-subject')?.subject).toBe('approved.DOMAIN');
      expect.soft(eventOf('with-msg-id')?.msg_id).toBe('custom-"id"-<script>');
      expect.soft(eventOf('bom1')?.data).toEqual({ id: 'bom1' });
      expect.soft(eventOf('near-limit')?.data).toEqual(NEAR_LIMIT_EVENT);
      for (const r of sink.requests)
        expect.soft(Buffer.byteLength(JSON.stringify(r.body))).toBeLessThanOrEqual(MAX_BYTES);

      // no prototype pollution, here or in anything the batch passed through
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoBefore);
      expect(Object.prototype.constructor).toBe(Object);

      // nothing crashed, the consumer never failed over, and JetStream holds nothing unacknowledged
      expect(crashes).toEqual([]);
      expect(logLines.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([]);
      expect(logLines.filter((l) => /consumer failed/.test(String(l.msg)))).toEqual([]);
      expect(emitter.stats.natsConnected && emitter.stats.consumerBound).toBe(true);
      // a terminated message never comes back: after a few ack waits, still one letter per message
      await new Promise((r) => setTimeout(r, ACK_WAIT_S * 2500));
      const perSeq = new Map<number, number>();
      for (const l of await emitter.deadLetters()) {
        const seq = l.message?.seq ?? -1;
        perSeq.set(seq, (perSeq.get(seq) ?? 0) + 1);
      }
      const repeated = [...perSeq].filter(([, n]) => n > 1);
      expect.soft(repeated, 'messages dead-lettered more than once (redelivered after term)').toEqual([]);
      let pending = await emitter.statusSource().jetstreamPending?.();
      for (let i = 0; i < 20 && (pending?.ackPending ?? 1) + (pending?.pending ?? 1) > 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        pending = await emitter.statusSource().jetstreamPending?.();
      }
      expect(pending).toMatchObject({ pending: 0, ackPending: 0 });
    } finally {
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
      await emitter.close();
      await spool.remove();
      sink.clear();
    }
  });
});

/** A secret-looking marker, put into the body of a message in every shape that is refused. */
const MARKER = 'hunter2SECRET';

function secretMessages(): RawMessage[] {
  const later = '2026-01-02T00:00:00Z';
  const cases: Array<[string, Uint8Array]> = [
    ['approved.finding', utf8(MARKER)], // not JSON: the whole body is the secret
    ['approved.domain', utf8(`password=${MARKER}`)],
    ['approved.finding', utf8(`{"password":${MARKER}}`)],
    ['approved.edge', json({ ...EDGE, type: MARKER })], // not in the enum
    ['approved.domain', json({ ...DOMAIN, last_seen: MARKER })], // not a time
    ['approved.domain', json({ ...DOMAIN, host: MARKER, first_seen: later })], // times out of order
    ['approved.ip', json({ ...IP, ip: MARKER })],
    ['approved.domain', json({ ...DOMAIN, host: MARKER.repeat(30) })], // too long
    ['approved.domain', json({ [MARKER]: DOMAIN })], // the secret as a key
    ['approved.finding', utf8(`{"password":"${MARKER}","d":${deepObject(100)}}`)], // too deep
    ['approved.finding', bytes(`{"password":"${MARKER}`, [0xff], '"}')], // not UTF-8
    ['approved.finding', json(MARKER)], // not an object
    ['approved.cert', json([MARKER])],
    ['approved.finding', json({ password: MARKER, blob: 'x'.repeat(MAX_BYTES) })], // too large
  ];
  return cases.map(([subject, payload]) => ({ subject, payload }));
}

describe('refusals never show message content (issue 12, item 14)', () => {
  it('keeps a secret in refused bodies out of /api/v1/stats, /metrics, the logs and dead-letter reasons', async () => {
    const logText: string[] = [];
    const logStream = new Writable({
      write(chunk: Buffer, _enc, done) {
        logText.push(chunk.toString());
        done();
      },
    });
    // a server of its own: the stream starts empty, so every refusal counted here is one of these
    const ownNats = await startNats();
    const spool = await tempDir('hostile-secret');
    const config = loadConfig(
      testEnv({
        natsUrl: ownNats.url,
        sinkUrl: `${sink.url}/ingest`,
        spoolDir: spool.path,
        extra: { TRANSMITTER_NATS_DURABLE: 'hostile-secret', TRANSMITTER_BATCH_MAX_BYTES: String(MAX_BYTES) },
      }),
    );
    const emitter = new Emitter(config, { logger: createLogger('debug', logStream) });
    const status = emitter.statusSource();
    const metrics = createMetrics(emitter.events, () => emitter.statusSnapshot(), {
      jetstreamPending: () => status.jetstreamPending?.() ?? Promise.resolve(undefined),
      spoolStats: () => status.spoolStats?.() ?? Promise.resolve(undefined),
    });
    const server = await startServer({
      host: '127.0.0.1',
      port: 0,
      status,
      events: emitter.events,
      metrics,
      debug: true,
      logger: emitter.logger,
    });
    await emitter.start();
    try {
      const secret = secretMessages();
      const good = sampleMessages(secret.length, 'secret-good');
      const messages = secret.flatMap((m, i) => {
        const g = good[i] as (typeof good)[number];
        return [{ subject: g.subject, payload: json(g.data) }, m];
      });
      const seqs = await publishInOrder({ servers: ownNats.url }, messages);
      await sink.waitFor((rs) => {
        const got = new Set(deliveredKeys(rs));
        return good.every((g) => got.has(g.key));
      }, 20_000);
      let letters: DeadLetter[] = [];
      for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
        letters = await emitter.deadLetters();
        if (letters.length >= secret.length) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      // every refusal has a reason that names the fault, never the content
      const reasons = letters.map((l) => l.reason);
      console.table(reasons.map((reason, i) => ({ subject: letters[i]?.message?.subject, reason })));
      expect(reasons.filter((r) => r.includes(MARKER) || r.includes('hunter'))).toEqual([]);
      for (const r of reasons)
        expect(r).toMatch(/^(invalid_json|invalid_utf8|invalid_item|ITEM_TOO_LARGE): /);

      // every refused message is a dead letter that keeps its bytes for the operator
      const secretSeqs = seqs.filter((_, i) => i % 2 === 1);
      expect(letters.map((l) => l.message?.seq).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(secretSeqs);
      for (const l of letters)
        expect(Buffer.from(l.message?.rawBase64 ?? '', 'base64').toString('latin1')).toContain(MARKER);
      const served: Record<string, string> = {};
      for (const path of ['/api/v1/stats', '/metrics', '/ready', '/debug/machines']) {
        const res = await fetch(`${server.url}${path}`);
        served[path] = await res.text();
        expect.soft(served[path], path).not.toContain(MARKER);
        expect.soft(served[path], path).not.toContain('hunter');
      }
      const stats = JSON.parse(served['/api/v1/stats'] as string) as {
        items: { rejected: number; rejectedByReason: Record<string, number> };
        lastError: { message: string };
      };
      expect(stats.items.rejected).toBe(secret.length);
      // the last refusal names its message by subject, sequence and size
      const last = letters.at(-1);
      expect(stats.lastError.message).toBe(
        `${last?.message?.subject} seq ${last?.message?.seq}, ${last?.message?.rawBytes} bytes: ${last?.reason}`,
      );
      const labels = [
        ...(served['/metrics'] as string).matchAll(/items_rejected_total\{reason="([^"]*)"\}/g),
      ];
      expect(new Set(labels.map((m) => m[1]))).toEqual(
        new Set(['invalid_json', 'invalid_utf8', 'invalid_item', 'ITEM_TOO_LARGE']),
      );

      const logs = logText.join('');
      expect(logs).not.toContain(MARKER);
      expect(logs).not.toContain('hunter');
      const lines = logs
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const refusedLines = lines.filter((l) => l.msg === 'message dead-lettered');
      expect(refusedLines).toHaveLength(secret.length);
      for (const l of refusedLines)
        expect(l).toMatchObject({
          subject: expect.any(String),
          seq: expect.any(Number),
          bytes: expect.any(Number),
        });
    } finally {
      await emitter.close();
      await server.close();
      metrics.close();
      await Promise.all([spool.remove(), ownNats.stop()]);
      sink.clear();
    }
  });
});
