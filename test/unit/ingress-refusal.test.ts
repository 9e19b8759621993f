import type { Msg } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { EmitterEvents } from '../../src/observe/events.js';
import { Arrivals } from '../../src/ingress/arrivals.js';
import { messageDeadLetter, offerRefusal, refusalFacts } from '../../src/ingress/refusal.js';
import { ItemTooLargeError } from '../../src/intake/intake.js';

const message = (data: Uint8Array) => ({ subject: 'approved.x', data }) as unknown as Msg;

describe('ingress: a refused message', () => {
  it('keeps the first 4 KiB of the body in its dead letter, and says it was cut', () => {
    const letter = messageDeadLetter(message(new Uint8Array(5000).fill(65)), 7, 'invalid_json: x');
    expect(letter).toMatchObject({ kind: 'message', reason: 'invalid_json: x', subjects: ['approved.x'] });
    expect(letter.message).toMatchObject({ subject: 'approved.x', seq: 7, rawBytes: 5000, truncated: true });
    expect(Buffer.from(letter.message?.rawBase64 ?? '', 'base64').length).toBe(4096);
  });

  it('is reported by code, subject, sequence and size', () => {
    const facts = refusalFacts(
      message(new Uint8Array(11)),
      7,
      'invalid_json: unexpected end at byte 11 of 11',
    );
    expect(facts).toEqual({
      reason: 'invalid_json',
      detail: 'invalid_json: unexpected end at byte 11 of 11',
      subject: 'approved.x',
      seq: 7,
      bytes: 11,
    });
  });

  it('an offer refused by our own error says its code; any other error is named, never quoted', () => {
    expect(offerRefusal(new ItemTooLargeError(900, 512))).toMatch(/^ITEM_TOO_LARGE: item of 900 bytes/);
    expect(offerRefusal(new TypeError('secret=abc in the body'))).toBe('internal: TypeError');
  });
});

describe('ingress: arrivals', () => {
  it('are reported once per section and turn of the event loop', async () => {
    const events = new EmitterEvents();
    const seen: unknown[] = [];
    events.on('received', (e) => seen.push(e));
    const arrivals = new Arrivals(events);
    arrivals.count('edges');
    arrivals.count('edges');
    arrivals.count('events');
    expect(seen).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([
      { section: 'edges', source: 'jetstream', count: 2 },
      { section: 'events', source: 'jetstream', count: 1 },
    ]);
  });
});
