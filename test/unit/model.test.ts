import { describe, expect, it } from 'vitest';
import {
  eventJson,
  itemFromMessage,
  MAX_EVENT_DEPTH,
  routeSubject,
  textDepthExceeds,
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
  });

  it('does not mistake Object.prototype names for routes', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'])
      expect(routeSubject(`approved.${name}`)).toBe('events');
    const item = itemFromMessage(
      { id: 1 },
      { subject: 'approved.toString', seq: 7, msgId: 'm', publishedAt: '' },
    );
    expect(item).toMatchObject({ section: 'events', key: 'seq:7' });
  });
});

describe("events keep the publisher's JSON", () => {
  const meta = {
    subject: 'approved.finding',
    seq: 42,
    msgId: 'APPROVED:42',
    publishedAt: '2024-01-01T00:00:00.000Z',
  };
  const fromText = (text: string) => itemFromMessage(JSON.parse(text), meta, text);

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
