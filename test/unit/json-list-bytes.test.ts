import { describe, expect, it } from 'vitest';
import { EventHead } from '../../src/event-head.js';
import { JsonListBytes } from '../../src/intake/json-list-bytes.js';

const members = (n: number, text: (i: number) => string) =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ i, text: text(i) }));

describe('JSON list bytes', () => {
  it('writes members comma-separated as UTF-8, exactly as the joined string encodes', () => {
    const list = new JsonListBytes();
    const texts = members(5, (i) => ['plain', 'é', '日本語', '😀 pair', '\u2028'][i] as string);
    for (const t of texts) list.push(t);
    const bytes = list.take();
    expect(bytes.equals(Buffer.from(texts.join(',')))).toBe(true);
    expect(JSON.parse(`[${bytes.toString()}]`)).toHaveLength(5);
  });

  it('grows past its first capacity without losing what was written', () => {
    const list = new JsonListBytes();
    const texts = members(3000, (i) => `${'x'.repeat(i % 97)}ü${i}`);
    for (const t of texts) list.push(t);
    expect(list.byteLength).toBeGreaterThan(64 * 1024);
    expect(list.take().equals(Buffer.from(texts.join(',')))).toBe(true);
  });

  it('starts empty after take, and an empty list takes as no bytes', () => {
    const list = new JsonListBytes();
    expect(list.take()).toHaveLength(0);
    list.push('1');
    list.push('2');
    const first = list.take();
    list.push('3');
    expect(first.toString()).toBe('1,2');
    expect(list.take().toString()).toBe('3');
    expect(list.byteLength).toBe(0);
  });

  it('writes a member in parts (head, the bytes of data, a closing brace) exactly as its text', () => {
    const list = new JsonListBytes();
    const data = ['{"x":"é"}', '{"y":[1,"日本語 😀"]}', '{}'];
    list.push('{"a":1}');
    for (const [i, d] of data.entries())
      list.push({ head: new EventHead('approved.ü', i, `id-${i}-é`, '', 'now'), data: Buffer.from(d) });
    const record = (i: number, d: string) =>
      `{"subject":"approved.ü","seq":${i},"msg_id":"id-${i}-é","published_at":"now","data":${d}}`;
    const text = ['{"a":1}', ...data.map((d, i) => record(i, d))].join(',');
    const bytes = list.take();
    expect(bytes.equals(Buffer.from(text))).toBe(true);
    expect(JSON.parse(`[${bytes.toString()}]`)).toHaveLength(4);
  });
});

describe('JSON list bytes with headroom', () => {
  const envelope = (members: string) => `{"batch_id":"b","events":[${members}]}`;

  it('puts what goes before the members into the headroom: the document is the list buffer itself', () => {
    const list = new JsonListBytes(64);
    const texts = members(3000, (i) => `${'x'.repeat(i % 97)}ü${i}`);
    for (const t of texts) list.push(t);
    const body = list.take('{"batch_id":"b","events":[', Buffer.from(']}'));
    expect(body.equals(Buffer.from(envelope(texts.join(','))))).toBe(true);
    expect(body.byteOffset).toBeGreaterThan(0); // written in place, after part of the headroom
    expect(list.byteLength).toBe(0);
  });

  it('joins instead when what goes before does not fit the headroom, and for an empty list', () => {
    const list = new JsonListBytes(4);
    list.push('1');
    list.push('"é"');
    expect(list.take('{"batch_id":"b","events":[', Buffer.from(']}')).toString()).toBe(envelope('1,"é"'));
    expect(list.take('{"batch_id":"b","events":[', Buffer.from(']}')).toString()).toBe(envelope(''));
    list.push('2');
    expect(list.take().toString()).toBe('2');
  });

  it('copies a small list out of a buffer sized for a large one: a view would keep all of it alive', () => {
    const list = new JsonListBytes(64);
    for (const t of members(3000, (i) => `${'x'.repeat(90)}${i}`)) list.push(t);
    const large = list.take('[', Buffer.from(']'));
    expect(large.buffer.byteLength).toBeLessThanOrEqual(large.length * 1.25 + 64 + 16);
    list.push('1');
    const small = list.take('[', Buffer.from(']'));
    expect(small.toString()).toBe('[1]');
    expect(small.buffer.byteLength).toBeLessThan(large.length / 4);
  });
});
