import { describe, expect, it } from 'vitest';
import type { Msg } from '@nats-io/transport-node';
import { decodeMessage } from '../../src/ingress/decode.js';
import { BatchBuilder } from '../../src/intake/batch-builder.js';
import { firstInvalidUtf8, jsonFault } from '../../src/ingress/locate.js';
import {
  BatchDocumentSchema,
  eventJson,
  eventJsonText,
  InvalidItemError,
  itemFromMessage,
  MAX_EVENT_DEPTH,
  parseEdge,
  parseEventData,
  parseNode,
  parseNodeCert,
  parseNodeDomain,
  parseNodeIP,
  routeSubject,
  textDepthExceeds,
  type EventJson,
} from '../../src/model.js';

describe('routeSubject', () => {
  it('routes the four typed subjects and everything else to events', () => {
    expect(routeSubject('approved.domain')).toBe('nodes_domain');
    expect(routeSubject('approved.ip')).toBe('nodes_ip');
    expect(routeSubject('approved.cert')).toBe('nodes_cert');
    expect(routeSubject('approved.edge')).toBe('edges');
    expect(routeSubject('approved.finding')).toBe('events');
    expect(routeSubject('approved.domain.extra')).toBe('events');
    expect(routeSubject('approved.DOMAIN')).toBe('events');
    expect(routeSubject('approved')).toBe('events');
    // a token only starting or ending like a route's is none
    for (const near of ['domains', 'ips', 'i', 'edg', 'xcert', 'cer', 'edge ', ''])
      expect(routeSubject(`approved.${near}`), near).toBe('events');
  });

  it('does not mistake Object.prototype names for routes', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'])
      expect(routeSubject(`approved.${name}`)).toBe('events');
    const item = itemFromMessage(
      { id: 1 },
      { subject: 'approved.toString', seq: 7, msgId: 'm', stream: 'S', publishedAt: '' },
    );
    // an event from the stream is keyed by its sequence (no key string)
    expect(item).toMatchObject({ section: 'events', key: null, value: { seq: 7 } });
  });
});

describe("events keep the publisher's JSON", () => {
  const meta = {
    subject: 'approved.finding',
    seq: 42,
    // the default id, `<stream>:<seq>`
    msgId: undefined,
    stream: 'APPROVED',
    publishedAt: '2024-01-01T00:00:00.000Z',
  };
  const fromText = (text: string) => itemFromMessage(JSON.parse(text), meta, text);

  it("quotes the record's strings exactly as JSON.stringify does, whatever they hold", () => {
    const odd = [
      'a"b',
      'a\\b',
      '\u0000',
      '\u001f',
      '\u007f',
      'é',
      '\ud800',
      '\udc00x',
      '😀',
      '',
      ' ~!#[]',
      'tab\t',
      '\u2028',
    ];
    for (const text of odd) {
      const record = { subject: text, seq: 7, msg_id: `${text}:7`, published_at: text };
      expect(eventJson(record, '{}')).toBe(JSON.stringify({ ...record, data: {} }));
    }
  });

  it('writes what JSON.stringify writes for the record', () => {
    const data = { id: 'a"b', n: 1.5, nested: { list: [1, null, true], s: '\u2028 é \\' } };
    const item = fromText(JSON.stringify(data));
    expect(item.section === 'events' && item.json).toBe(JSON.stringify(item.value));
    expect(JSON.parse(eventJson({ subject: 'a.b', seq: null, msg_id: 'x', published_at: '' }, '{}'))).toEqual(
      {
        subject: 'a.b',
        seq: null,
        msg_id: 'x',
        published_at: '',
        data: {},
      },
    );
  });

  it('keeps integers beyond double precision as they were sent', () => {
    const item = fromText('{"id":12345678901234567890}');
    expect(item.section === 'events' && item.json).toContain('"data":{"id":12345678901234567890}');
  });

  it('measures depth on the text, where a duplicate key cannot hide a deep value', () => {
    const deep = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
    expect(() => fromText(`{"x":${deep(MAX_EVENT_DEPTH - 1)}}`)).not.toThrow();
    expect(() => fromText(`{"x":${deep(MAX_EVENT_DEPTH)}}`)).toThrow(/nested deeper than 64/);
    expect(() => fromText(`{"x":${deep(100)},"x":1}`)).toThrow(/nested deeper than 64/);
    // brackets inside strings (and escaped quotes) are text, not nesting
    expect(textDepthExceeds(`{"s":"${'['.repeat(100)}\\"${'{'.repeat(100)}"}`, 2)).toBe(false);
    expect(textDepthExceeds('[[[]]]', 2)).toBe(true);
    expect(textDepthExceeds('[[],[]]', 2)).toBe(false);
  });
});

const T = '2026-01-01T00:00:00Z';
const DOMAIN = { host: 'a.example', apex: 'example', first_seen: T, last_seen: T };
const IP = { ip: '192.0.2.1', first_seen: T, last_seen: T };
const CERT = { spki_sha256: 'ab'.repeat(32), subject_cn: 'a', issuer_cn: 'CA', not_before: T, not_after: T };
const EDGE = {
  type: 'RESOLVES_TO',
  source: 'a.example',
  target: '192.0.2.1',
  observed_at: T,
  probe_id: 'p',
  run_id: 'r',
};

/** The InvalidItemError `fn` throws, as "field: reason". */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidItemError);
    return (error as InvalidItemError).message;
  }
  throw new Error('accepted');
}

describe('input rules: times in order, UTC years 0000-9999 (issue 12, item 15)', () => {
  it('refuses a node whose first_seen is after its last_seen, naming the field', () => {
    const later = '2026-01-02T00:00:00Z';
    expect(refusal(() => parseNodeDomain({ ...DOMAIN, first_seen: later }))).toBe(
      'node_domain.first_seen: later than last_seen',
    );
    expect(refusal(() => parseNodeIP({ ...IP, first_seen: later }))).toBe(
      'node_ip.first_seen: later than last_seen',
    );
    // the embedded addNode path (parseNode) tells the shapes apart and applies the same rule
    expect(refusal(() => parseNode({ ...DOMAIN, first_seen: later }))).toBe(
      'node_domain.first_seen: later than last_seen',
    );
    expect(refusal(() => parseNode({ ...IP, first_seen: later }))).toBe(
      'node_ip.first_seen: later than last_seen',
    );
    // equal times are a single sighting, not an error
    expect(parseNodeDomain(DOMAIN).first_seen).toBe('2026-01-01T00:00:00.000Z');
  });

  it('refuses a cert whose not_after is before its not_before', () => {
    const earlier = '2025-12-31T23:59:59.999Z';
    expect(refusal(() => parseNodeCert({ ...CERT, not_after: earlier }))).toBe(
      'node_cert.not_after: earlier than not_before',
    );
    expect(refusal(() => parseNode({ ...CERT, not_after: earlier }))).toBe(
      'node_cert.not_after: earlier than not_before',
    );
    expect(parseNodeCert({ ...CERT, not_after: '2027-01-01T00:00:00Z' }).not_after).toBe(
      '2027-01-01T00:00:00.000Z',
    );
  });

  it('compares the instants, not the texts, across offsets', () => {
    // 00:30-01:00 is 01:30 UTC: after 01:00 UTC, though its text sorts first
    expect(
      refusal(() =>
        parseNodeDomain({
          ...DOMAIN,
          first_seen: '2026-01-01T00:30:00-01:00',
          last_seen: '2026-01-01T01:00:00Z',
        }),
      ),
    ).toBe('node_domain.first_seen: later than last_seen');
    // 01:00+01:00 is 00:00 UTC: equal to last_seen, accepted, and normalised to UTC with milliseconds
    expect(
      parseNodeDomain({
        ...DOMAIN,
        first_seen: '2026-01-01T01:00:00+01:00',
        last_seen: '2026-01-01T00:00:00Z',
      }),
    ).toMatchObject({ first_seen: '2026-01-01T00:00:00.000Z', last_seen: '2026-01-01T00:00:00.000Z' });
  });

  it('refuses a valid time whose UTC form leaves years 0000-9999, saying so', () => {
    const below = '0000-01-01T00:30:00+01:00'; // year -1 in UTC
    const above = '9999-12-31T23:30:00-01:00'; // year 10000 in UTC
    const outside = 'outside years 0000-9999 in UTC';
    expect(refusal(() => parseNodeDomain({ ...DOMAIN, first_seen: below }))).toBe(
      `node_domain.first_seen: ${outside}`,
    );
    expect(refusal(() => parseNodeDomain({ ...DOMAIN, last_seen: above }))).toBe(
      `node_domain.last_seen: ${outside}`,
    );
    expect(refusal(() => parseNodeIP({ ...IP, first_seen: below }))).toBe(`node_ip.first_seen: ${outside}`);
    expect(refusal(() => parseNodeCert({ ...CERT, not_after: above }))).toBe(
      `node_cert.not_after: ${outside}`,
    );
    // the embedded addEdge path (parseEdge) and the JetStream path (itemFromMessage)
    expect(refusal(() => parseEdge({ ...EDGE, observed_at: below }))).toBe(`edge.observed_at: ${outside}`);
    const meta = { subject: 'approved.edge', seq: 1, msgId: 'm', stream: 'S', publishedAt: '' };
    expect(refusal(() => itemFromMessage({ ...EDGE, observed_at: above }, meta))).toBe(
      `edge.observed_at: ${outside}`,
    );
    // the edges of the range itself are fine
    expect(
      parseNodeDomain({
        ...DOMAIN,
        first_seen: '0000-01-01T00:00:00Z',
        last_seen: '9999-12-31T23:59:59.999Z',
      }),
    ).toMatchObject({ first_seen: '0000-01-01T00:00:00.000Z', last_seen: '9999-12-31T23:59:59.999Z' });
    // not a time at all is a different reason
    expect(refusal(() => parseEdge({ ...EDGE, observed_at: '2024-02-30T00:00:00Z' }))).toBe(
      'edge.observed_at: expected an RFC 3339 timestamp',
    );
    expect(refusal(() => parseEdge({ ...EDGE, observed_at: undefined }))).toBe('edge.observed_at: missing');
  });

  it('still decodes a spooled batch document written before the order rule', () => {
    const doc = {
      batch_id: 'b',
      probe_id: 'p',
      run_id: 'r',
      created_at: T,
      nodes_domain: [{ ...DOMAIN, first_seen: '2026-01-02T00:00:00Z' }],
      nodes_ip: [],
      nodes_cert: [{ ...CERT, not_after: '2025-01-01T00:00:00Z' }],
      edges: [],
      events: [],
    };
    expect(BatchDocumentSchema.safeParse(doc).success).toBe(true);
  });
});

const SECRET = 'password=hunter2 SECRET-MARKER';

describe('reasons never quote the input (issue 12, item 14)', () => {
  it('names the field and the expectation, never the value', () => {
    const refusals = [
      refusal(() => parseEdge({ ...EDGE, type: SECRET })),
      refusal(() => parseNodeDomain({ ...DOMAIN, last_seen: SECRET })),
      refusal(() => parseNodeDomain({ ...DOMAIN, host: SECRET.repeat(20) })),
      refusal(() => parseNodeIP({ ...IP, ip: SECRET })),
      refusal(() => parseNodeCert({ ...CERT, spki_sha256: SECRET })),
      refusal(() => parseNode({ [SECRET]: SECRET })),
      refusal(() => parseNode(SECRET)),
      refusal(() => parseEdge(SECRET)),
      refusal(() => parseEventData(SECRET)),
      refusal(() => parseEventData({ s: SECRET, d: JSON.parse(`${'['.repeat(100)}${']'.repeat(100)}`) })),
    ];
    for (const r of refusals) expect(r).not.toMatch(/hunter2|MARKER/);
    expect(refusals.slice(0, 3)).toEqual([
      'edge.type: expected one of RESOLVES_TO, USES_NS, ALIAS_OF, USES_MX, LINKS_TO, USES_CERT',
      'node_domain.last_seen: expected an RFC 3339 timestamp',
      'node_domain.host: longer than 253 characters',
    ]);
    expect(refusal(() => parseNodeDomain({ ...DOMAIN, host: 7 }))).toBe(
      'node_domain.host: expected string, got number',
    );
    expect(refusal(() => parseNodeDomain({ ...DOMAIN, host: '' }))).toBe('node_domain.host: empty');
    expect(refusal(() => parseNodeDomain({ ...DOMAIN, apex: undefined }))).toBe('node_domain.apex: missing');
    expect(refusal(() => parseNodeDomain(null))).toBe('node_domain: expected object, got null');
  });

  const message = (body: Uint8Array | string, subject = 'approved.finding'): Msg =>
    ({
      subject,
      seq: 9,
      data: typeof body === 'string' ? new TextEncoder().encode(body) : body,
      headers: undefined,
    }) as unknown as Msg;
  const decode = (body: Uint8Array | string, subject?: string): string => {
    const decoded = decodeMessage(
      message(body, subject),
      { reply: '', seq: 9, deliveryCount: 1, publishedMs: 0 },
      'S',
    );
    return decoded.ok ? 'ok' : decoded.reason;
  };

  it('gives the kind of JSON fault, its byte offset and the body size', () => {
    expect(decode(SECRET)).toBe(`invalid_json: unexpected character at byte 0 of ${SECRET.length}`);
    const open = `{"k":"${SECRET}"`;
    expect(decode(open)).toBe(`invalid_json: unexpected end at byte ${open.length} of ${open.length}`);
    expect(decode(`{"k":${SECRET}}`)).toBe(
      `invalid_json: unexpected character at byte 5 of ${SECRET.length + 6}`,
    );
    expect(decode('')).toBe('invalid_json: unexpected end at byte 0 of 0');
    expect(decode('{"a":1}}')).toBe('invalid_json: data after the value at byte 7 of 8');
    expect(decode('{"a":"\\q"}')).toBe('invalid_json: malformed escape in a string at byte 7 of 10');
    expect(decode('{"a":"\\u0001\\n\u0001"}')).toBe(
      'invalid_json: control character in a string at byte 14 of 17',
    );
    expect(decode('{"a":-}')).toBe('invalid_json: malformed number at byte 6 of 7');
    // offsets count bytes, not characters, and a leading BOM the decoder dropped
    expect(decode('\ufeff{"é":x}')).toBe('invalid_json: unexpected character at byte 9 of 11');
    expect(decode('\ufeff\ufeff{}')).toBe('invalid_json: unexpected character at byte 3 of 8');
  });

  it("keeps an event's body as its bytes: the batch holds exactly the text's JSON, without a BOM", () => {
    for (const body of ['{"k":"é 日本語 😀","n":[1,2]}', '\ufeff{"bom":"dropped"}', ' {"spaced" : true} ']) {
      const decoded = decodeMessage(
        message(body, 'approved.finding'),
        { reply: '', seq: 9, deliveryCount: 1, publishedMs: 0 },
        'S',
      );
      if (!decoded.ok || decoded.item.section !== 'events') throw new Error('not an event');
      const text = body.replace(/^\ufeff/, '');
      const expected = eventJson(decoded.item.value, text);
      expect(typeof decoded.item.json).not.toBe('string');
      expect(eventJsonText(decoded.item.json as EventJson)).toBe(expected);
      const builder = new BatchBuilder<never>('probe', 'run');
      const measured = builder.measure(decoded.item);
      expect(measured.bytes).toBe(Buffer.byteLength(expected) + 1);
      builder.add(decoded.item, measured.json);
      const batch = builder.take('00000000-0000-0000-0000-000000000000', '2026-01-01T00:00:00.000Z');
      const events = JSON.parse(batch.body.toString('utf8')).events as unknown[];
      expect(events).toEqual([JSON.parse(expected)]);
      expect(batch.body.includes(Buffer.from('\ufeff'))).toBe(false);
    }
  });

  it('an event taken on its bytes reads as the record it stands for: its data, its JSON, its fields', () => {
    const decoded = decodeMessage(
      message('{"k":"é","n":[1,2]}', 'approved.finding'),
      { reply: '', seq: 9, deliveryCount: 1, publishedMs: 0 },
      'S',
    );
    if (!decoded.ok || decoded.item.section !== 'events') throw new Error('not an event');
    const record = decoded.item.value;
    const plain = { subject: 'approved.finding', seq: 9, msg_id: 'S:9', published_at: record.published_at };
    expect(record.data).toEqual({ k: 'é', n: [1, 2] });
    // what a reader that serialises or lists the record sees: no body bytes, the data
    expect(JSON.parse(JSON.stringify(record))).toEqual({ ...plain, data: { k: 'é', n: [1, 2] } });
    expect(Object.keys(record)).not.toContain('body');
  });

  it('gives the offset of the first byte that is not UTF-8', () => {
    const bytes = new Uint8Array([...Buffer.from(`{"k":"${SECRET}`), 0xc0, 0xaf, 0x22, 0x7d]);
    expect(decode(bytes)).toBe(`invalid_utf8: at byte ${bytes.length - 4} of ${bytes.length}`);
    expect(firstInvalidUtf8(new Uint8Array([0x61, 0xe2, 0x82]))).toBe(1); // cut short
    expect(firstInvalidUtf8(new Uint8Array([0xed, 0xa0, 0x80]))).toBe(0); // surrogate
    expect(firstInvalidUtf8(new Uint8Array([0xf4, 0x90, 0x80, 0x80]))).toBe(0); // above U+10FFFF
    expect(firstInvalidUtf8(Buffer.from('aé€😀'))).toBe(-1);
  });

  it('agrees with JSON.parse on what is JSON', () => {
    const seeds = [
      '{"a":[1,2.5e-3,-0,true,false,null,{"b":"x\\u00e9\\n"}],"c":{}}',
      '[]',
      ' {"k" : [ ] } ',
      '-1E+7',
    ];
    const alphabet = '{}[]":,-+.eE019 \t\ntrufalsn\\/u\u0001é';
    let state = 7;
    const random = (n: number): number => {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      return state % n;
    };
    for (let k = 0; k < 20_000; k++) {
      let text = seeds[random(seeds.length)] as string;
      for (let e = 0; e <= random(3); e++) {
        const at = random(text.length + 1);
        text = text.slice(0, at) + (alphabet[random(alphabet.length)] as string) + text.slice(at + random(2));
      }
      let parses = true;
      try {
        JSON.parse(text);
      } catch {
        parses = false;
      }
      expect(jsonFault(text) === undefined, JSON.stringify(text)).toBe(parses);
    }
    // iterative: no depth overflows it
    expect(jsonFault('['.repeat(1_000_000))).toEqual({ index: 1_000_000, problem: 'unexpected end' });
  });
});

describe('eventJson', () => {
  it('writes what JSON.stringify writes, as subjects, ids and times change from one event to the next', () => {
    const subjects = ['approved.a', 'approved."q"', 'approved.é'];
    const times = ['2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.001Z', 'x"\\'];
    for (let k = 0; k < 60; k++) {
      const record = {
        subject: subjects[k % 3] as string,
        seq: k,
        msg_id: k % 5 === 0 ? 'id"\u0001' : `S:${k}`,
        published_at: times[(k >> 1) % 3] as string,
      };
      expect(eventJson(record, '{"a":1}')).toBe(JSON.stringify({ ...record, data: { a: 1 } }));
    }
  });
});
