/**
 * Where a message body stops being valid, as an offset: a refusal names the place and the kind of
 * fault, never the bytes around it (the runtime's own messages quote them, and a body may hold
 * secrets). Only refused messages come here, so neither scan is on the hot path.
 */

/** Offset of the first byte that does not start a well-formed UTF-8 sequence (WHATWG rules), or -1. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let low = 0x80;
    let high = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) low = 0xa0; // overlong
      if (b === 0xed) high = 0x9f; // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) low = 0x90; // overlong
      if (b === 0xf4) high = 0x8f; // above U+10FFFF
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || c < low || c > high) return i;
      low = 0x80;
      high = 0xbf;
    }
    i += need + 1;
  }
  return -1;
}

export interface JsonFault {
  /** index into the text (UTF-16 code units) */
  index: number;
  problem: string;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const ESCAPES = new Set([...'"\\/bfnrt'].map((c) => c.charCodeAt(0)));
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isHex = (c: number): boolean => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

class Fault extends Error {
  constructor(
    readonly index: number,
    readonly problem: string,
  ) {
    super(problem);
  }
}

/**
 * The first place where `text` breaks RFC 8259 (the grammar JSON.parse takes), or undefined when it
 * is valid JSON. Iterative, so no depth can overflow the stack.
 */
export function jsonFault(text: string): JsonFault | undefined {
  let i = 0;
  const at = (): number => (i < text.length ? text.charCodeAt(i) : -1);
  const fail = (problem: string): never => {
    throw new Fault(i, i >= text.length ? 'unexpected end' : problem);
  };
  const skipWs = (): void => {
    while (WS.has(at())) i++;
  };
  const expect = (char: string): void => {
    if (at() !== char.charCodeAt(0)) fail('unexpected character');
    i++;
  };
  const digits = (): void => {
    if (!isDigit(at())) fail('malformed number');
    while (isDigit(at())) i++;
  };
  const string = (): void => {
    expect('"');
    for (;;) {
      const c = at();
      if (c === -1) fail('unexpected end');
      if (c === 0x22) break;
      if (c < 0x20) fail('control character in a string');
      i++;
      if (c === 0x5c) {
        if (at() === 0x75) {
          i++;
          for (let k = 0; k < 4; k++, i++) if (!isHex(at())) fail('malformed escape in a string');
        } else if (ESCAPES.has(at())) i++;
        else fail('malformed escape in a string');
      }
    }
    i++;
  };
  const number = (): void => {
    if (at() === 0x2d) i++;
    if (at() === 0x30) i++;
    else digits();
    if (at() === 0x2e) {
      i++;
      digits();
    }
    if (at() === 0x65 || at() === 0x45) {
      i++;
      if (at() === 0x2b || at() === 0x2d) i++;
      digits();
    }
  };
  const literal = (word: string): void => {
    for (const ch of word) expect(ch);
  };
  /** open containers: '{' or '[' */
  const stack: number[] = [];
  try {
    skipWs();
    for (;;) {
      // a value
      const c = at();
      let opened = false;
      if (c === 0x7b || c === 0x5b) {
        i++;
        skipWs();
        if (at() === (c === 0x7b ? 0x7d : 0x5d)) i++;
        else {
          stack.push(c);
          opened = true;
          if (c === 0x7b) {
            string();
            skipWs();
            expect(':');
            skipWs();
          }
        }
      } else if (c === 0x22) string();
      else if (c === 0x2d || isDigit(c)) number();
      else if (c === 0x74) literal('true');
      else if (c === 0x66) literal('false');
      else if (c === 0x6e) literal('null');
      else fail('unexpected character');
      if (opened) continue;
      // after a value: close containers until one takes another member
      for (;;) {
        skipWs();
        const open = stack.at(-1);
        if (open === undefined) {
          if (i < text.length) fail('data after the value');
          return undefined;
        }
        if (at() === 0x2c) {
          i++;
          skipWs();
          if (open === 0x7b) {
            string();
            skipWs();
            expect(':');
            skipWs();
          }
          break;
        }
        if (at() !== (open === 0x7b ? 0x7d : 0x5d)) fail('unexpected character');
        i++;
        stack.pop();
      }
    }
  } catch (error) {
    if (error instanceof Fault) return { index: error.index, problem: error.problem };
    throw error;
  }
}
