import { describe, expect, it } from 'vitest';
import type { Msg } from '@nats-io/transport-node';
import { decodeMessage } from '../../src/ingress/decode.js';
import { isJsonObjectBytes } from '../../src/ingress/json-object-bytes.js';
import { MAX_EVENT_DEPTH, textDepthExceeds } from '../../src/model.js';

/** What the slow path accepts: JSON.parse takes it, it is an object, and it is not nested too deep. */
function slowPathAccepts(text: string, maxDepth: number): boolean {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  const object = typeof value === 'object' && value !== null && !Array.isArray(value);
  return object && !textDepthExceeds(text, maxDepth);
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('isJsonObjectBytes', () => {
  it('takes JSON objects and nothing else', () => {
    for (const ok of [
      '{}',
      ' \t\r\n{ } \n',
      '{"a":[1,2.5e-3,-0,true,false,null,{"b":"x\\u00e9\\n\\"\\\\\\/\\b\\f\\r\\t"}],"c":{}}',
      '{"é 日本語 😀":"\u2028"}',
      '{"a":1,"a":2}',
      '{"n":-12.5E+07,"m":0e0,"k":[[],{}]}',
    ])
      expect(isJsonObjectBytes(bytes(ok), 0, 64), ok).toBe(true);
    for (const bad of [
      '',
      ' ',
      '[]',
      '"s"',
      '1',
      'null',
      '{',
      '{"a"}',
      '{"a":}',
      '{"a":1,}',
      '{,}',
      '{"a":01}',
      '{"a":1.}',
      '{"a":.5}',
      '{"a":-}',
      '{"a":1e}',
      '{"a":+1}',
      '{"a":tru}',
      '{"a":nul}',
      '{"a":"\\x"}',
      '{"a":"\\u12"}',
      '{"a":"\\u12G4"}',
      '{"a":"\u0001"}',
      '{"a":1}}',
      '{"a":1} x',
      '{"a":1}\u00a0',
      '\ufeff{}',
      "{'a':1}",
      '{a:1}',
      '{"a":[1,]}',
      '{"a":[1 2]}',
      '{"a":1 "b":2}',
    ])
      expect(isJsonObjectBytes(bytes(bad), 0, 64), JSON.stringify(bad)).toBe(false);
  });

  it('starts at `from` and counts the depth as the text check does', () => {
    expect(isJsonObjectBytes(bytes('xx{}'), 2, 64)).toBe(true);
    const nested = (levels: number): string => `${'{"a":'.repeat(levels - 1)}{}${'}'.repeat(levels - 1)}`;
    expect(isJsonObjectBytes(bytes(nested(64)), 0, 64)).toBe(true);
    expect(isJsonObjectBytes(bytes(nested(65)), 0, 64)).toBe(false);
    expect(isJsonObjectBytes(bytes(`{"a":${'['.repeat(63)}${']'.repeat(63)}}`), 0, 64)).toBe(true);
    expect(isJsonObjectBytes(bytes(`{"a":${'['.repeat(64)}${']'.repeat(64)}}`), 0, 64)).toBe(false);
    expect(isJsonObjectBytes(bytes(`{"a":"${'['.repeat(100)}"}`), 0, 2)).toBe(true);
    expect(isJsonObjectBytes(bytes(`{${'['.repeat(1_000_000)}`), 0, 64)).toBe(false);
  });

  it('never takes what the slow path refuses (random edits of JSON texts)', () => {
    const seeds = [
      '{"a":[1,2.5e-3,-0,true,false,null,{"b":"x\\u00e9\\n"}],"c":{}}',
      '{}',
      ' {"k" : [ ] } ',
      '{"n":-1E+7}',
      '{"a":{"b":{"c":[[{}]]}}}',
    ];
    const alphabet = '{}[]":,-+.eE019 \t\ntrufalsn\\/u\u0001é\u00a0';
    let state = 11;
    const random = (n: number): number => {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      return state % n;
    };
    let taken = 0;
    for (let k = 0; k < 40_000; k++) {
      let text = seeds[random(seeds.length)] as string;
      for (let e = 0; e <= random(3); e++) {
        const at = random(text.length + 1);
        text = text.slice(0, at) + (alphabet[random(alphabet.length)] as string) + text.slice(at + random(2));
      }
      const depth = random(2) === 0 ? 64 : 1 + random(5);
      const accepts = slowPathAccepts(text, depth);
      expect(isJsonObjectBytes(bytes(text), 0, depth), JSON.stringify(text)).toBe(accepts);
      if (accepts) taken++;
    }
    expect(taken).toBeGreaterThan(1_000);
  });
});

describe('decodeMessage on an event body', () => {
  it('takes exactly what TextDecoder (fatal) + JSON.parse + the object and depth rules take (random bytes)', () => {
    const utf8 = new TextDecoder('utf-8', { fatal: true });
    const oldPathTakes = (body: Uint8Array): boolean => {
      let text: string;
      try {
        text = utf8.decode(body);
      } catch {
        return false;
      }
      return slowPathAccepts(text, MAX_EVENT_DEPTH);
    };
    const decodes = (body: Uint8Array): boolean =>
      decodeMessage(
        { subject: 'approved.finding', data: body, headers: undefined } as unknown as Msg,
        { reply: '', seq: 1, deliveryCount: 1, publishedMs: 0 },
        'S',
      ).ok;
    const seeds = [
      '{"a":[1,-0.5e3,true,null,{"b":"x\\u00e9"}],"c":{}}',
      '{}',
      '\ufeff{"k":"é😀"}',
      '{"s":"\\ud800"}',
    ].map((text) => Buffer.from(text));
    const alphabet = [...Buffer.from('{}[]":,-.e019 \t\ntrue\\u'), 0x00, 0x1f, 0x7f, 0x80, 0xbf, 0xc0, 0xc2];
    alphabet.push(0xe0, 0xed, 0xef, 0xbb, 0xf0, 0xf4, 0xf5, 0xff, 0xa0);
    let state = 5;
    const random = (n: number): number => {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      return state % n;
    };
    let taken = 0;
    for (let k = 0; k < 20_000; k++) {
      let body = seeds[random(seeds.length)] as Buffer;
      for (let e = 0; e <= random(4); e++) {
        const at = random(body.length + 1);
        const inserted = random(3) === 0 ? [] : [alphabet[random(alphabet.length)] as number];
        body = Buffer.concat([body.subarray(0, at), Buffer.from(inserted), body.subarray(at + random(3))]);
      }
      const takes = oldPathTakes(body);
      expect(decodes(body), body.toString('hex')).toBe(takes);
      if (takes) taken++;
    }
    expect(taken).toBeGreaterThan(1_000);
  });
});
