import { describe, expect, it } from 'vitest';
import { EventHead } from '../../src/event-head.js';

/** An event's head written as bytes is exactly JSON.stringify's text of the same fields. */

const stringified = (subject: string, seq: number | null, msgId: string, publishedAt: string) =>
  JSON.stringify({ subject, seq, msg_id: msgId, published_at: publishedAt, data: 0 }).slice(0, -2);

/** A small seeded generator: the same strings every run. */
function strings(seed: number): () => string {
  const alphabet = ['a', 'Z', '0', ':', '.', '"', '\\', '\n', '\u0001', 'é', '日', '😀', '\u2028', ' ', '-'];
  let x = seed;
  const next = () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x;
  };
  return () => Array.from({ length: next() % 12 }, () => alphabet[next() % alphabet.length]).join('');
}

describe('EventHead', () => {
  it('writes what JSON.stringify writes, for any subject, id, time and sequence', () => {
    const text = strings(7);
    const seqs = [0, 1, 9, 10, 99, 1000, 123456789, 2 ** 31, Number.MAX_SAFE_INTEGER];
    for (let i = 0; i < 2000; i++) {
      const [subject, msgId, publishedAt, stream] = [text(), text(), text(), text()];
      const seq = seqs[i % seqs.length] as number;
      const own = new EventHead(subject, seq, msgId, stream, publishedAt);
      expect(own.text()).toBe(stringified(subject, seq, msgId, publishedAt));
      const byDefault = new EventHead(subject, seq, undefined, stream, publishedAt);
      expect(byDefault.text()).toBe(stringified(subject, seq, `${stream}:${seq}`, publishedAt));
      expect(Buffer.byteLength(byDefault.text())).toBe(byDefault.byteLength);
    }
  });

  it('writes a sequence beyond 2^53 as JSON.stringify writes the number', () => {
    for (const seq of [2 ** 53, 2 ** 60, 2 ** 64, 1e21, 1e22]) {
      const head = new EventHead('approved.x', seq, undefined, 'S', 't');
      expect(head.text()).toBe(stringified('approved.x', seq, `S:${seq}`, 't'));
      expect(head.byteLength).toBe(Buffer.byteLength(head.text()));
    }
  });

  it('writes a null sequence as null, where an id is given', () => {
    const head = new EventHead('approved.x', null, 'id-1', 'S', 't');
    expect(head.text()).toBe(stringified('approved.x', null, 'id-1', 't'));
    expect(() => new EventHead('approved.x', null, undefined, 'S', 't')).toThrow(TypeError);
  });

  it('writes at the offset given, exactly byteLength bytes, and says where it ends', () => {
    const head = new EventHead('approved.ü', 4711, undefined, 'EVENTS', '2026-12-01T04:00:00.000Z');
    const buf = Buffer.alloc(head.byteLength + 10, 0x2a);
    const end = head.write(buf, 5);
    expect(end).toBe(5 + head.byteLength);
    expect(buf.subarray(5, end).toString()).toBe(head.text());
    expect(buf.subarray(0, 5).toString() + buf.subarray(end).toString()).toBe('*'.repeat(10));
  });
});
