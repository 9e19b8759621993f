/**
 * A check of an event body on its bytes, without decoding or parsing it: whether it is one JSON
 * object (RFC 8259, the grammar JSON.parse takes) nested at most so deep. An event's body is sent
 * as its bytes, so for the usual valid body the string and the object JSON.parse would build were
 * made only to be thrown away (a third of the ingress's time, and much of its garbage).
 *
 * `false` means "not shown valid", never "invalid": the caller then decodes and parses as before,
 * which refuses with the exact reason. So this may only be stricter than that path, never laxer.
 * Bytes of 0x80 and above are taken only inside strings; that they are UTF-8 is the caller's check.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/** The deepest nesting this check follows (deeper bodies take the slow path, which refuses them). */
export const MAX_CHECKED_DEPTH = 255;
/** the open containers, innermost last (one body is checked at a time) */
const OPEN = new Uint8Array(MAX_CHECKED_DEPTH);

/** `"\/bfnrt`: the characters a backslash may escape besides `u` */
const SIMPLE_ESCAPE = new Uint8Array(128);
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1;

/** what ends a run of plain characters in a string: `"`, `\\` and the control characters */
const ENDS_PLAIN = new Uint8Array(256);
ENDS_PLAIN.fill(1, 0, 0x20);
ENDS_PLAIN[QUOTE] = 1;
ENDS_PLAIN[BACKSLASH] = 1;

const HEX = new Uint8Array(128);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;

/**
 * Every read below is within the body (`i < n` first): a read past the end of a typed array is
 * undefined, which V8 optimises far worse than a comparison of two integers.
 */

function isDigit(b: Uint8Array, i: number, n: number): boolean {
  if (i >= n) return false;
  const c = b[i] as number;
  return c >= 0x30 && c <= 0x39;
}

/** The first index at or after `i` that is not JSON whitespace (space, tab, LF, CR). */
function skipWhitespace(b: Uint8Array, i: number, n: number): number {
  for (; i < n; i++) {
    const c = b[i] as number;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
  }
  return n;
}

/** The index after the string that starts at `i`, or -1. */
function skipString(b: Uint8Array, i: number, n: number): number {
  if (i >= n || b[i] !== QUOTE) return -1;
  i++;
  for (;;) {
    // the usual run of plain characters
    let c = 0;
    for (; i < n; i++) {
      c = b[i] as number;
      if (ENDS_PLAIN[c] === 1) break;
    }
    if (i >= n) return -1;
    if (c === QUOTE) return i + 1;
    if (c !== BACKSLASH || i + 1 >= n) return -1; // a control character, or the end
    const e = b[i + 1] as number;
    if (e === 0x75) {
      if (i + 6 > n) return -1;
      for (let k = i + 2; k < i + 6; k++) {
        const h = b[k] as number;
        if (h >= 128 || HEX[h] === 0) return -1;
      }
      i += 6;
    } else if (e < 128 && SIMPLE_ESCAPE[e] === 1) i += 2;
    else return -1;
  }
}

/** The index after the number that starts at `i` (`-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`), or -1. */
function skipNumber(b: Uint8Array, i: number, n: number): number {
  if (i < n && b[i] === 0x2d) i++;
  if (i < n && b[i] === 0x30) i++;
  else {
    if (!isDigit(b, i, n)) return -1;
    while (isDigit(b, i, n)) i++;
  }
  if (i < n && b[i] === 0x2e) {
    i++;
    if (!isDigit(b, i, n)) return -1;
    while (isDigit(b, i, n)) i++;
  }
  if (i < n && (b[i] === 0x65 || b[i] === 0x45)) {
    i++;
    if (i < n && (b[i] === 0x2b || b[i] === 0x2d)) i++;
    if (!isDigit(b, i, n)) return -1;
    while (isDigit(b, i, n)) i++;
  }
  return i;
}

/** The index after `word` at `i`, or -1. */
function skipWord(b: Uint8Array, i: number, n: number, word: readonly number[]): number {
  if (i + word.length > n) return -1;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word[k]) return -1;
  return i + word.length;
}

const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];

/** The index after an object member's key and colon at `i` (whitespace skipped), or -1. */
function skipKey(b: Uint8Array, i: number, n: number): number {
  i = skipString(b, i, n);
  if (i < 0) return -1;
  i = skipWhitespace(b, i, n);
  if (i >= n || b[i] !== COLON) return -1;
  return skipWhitespace(b, i + 1, n);
}

/**
 * Whether `b` from `from` on is exactly one JSON object, with whitespace around it, nested at most
 * `maxDepth` levels (the object itself is level 1; brackets inside strings do not count).
 */
export function isJsonObjectBytes(b: Uint8Array, from: number, maxDepth: number): boolean {
  if (maxDepth > MAX_CHECKED_DEPTH) return false;
  const n = b.length;
  let i = skipWhitespace(b, from, n);
  if (i >= n || b[i] !== OPEN_OBJECT) return false;
  let depth = 0;
  for (;;) {
    // a value starts at i
    if (i >= n) return false;
    const c = b[i] as number;
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (depth === maxDepth) return false;
      i = skipWhitespace(b, i + 1, n);
      if (i >= n) return false;
      if (b[i] === (c === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) i++;
      else {
        OPEN[depth++] = c;
        if (c === OPEN_OBJECT) {
          i = skipKey(b, i, n);
          if (i < 0) return false;
        }
        continue;
      }
    } else if (c === QUOTE) i = skipString(b, i, n);
    else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) i = skipNumber(b, i, n);
    else if (c === 0x74) i = skipWord(b, i, n, TRUE);
    else if (c === 0x66) i = skipWord(b, i, n, FALSE);
    else if (c === 0x6e) i = skipWord(b, i, n, NULL);
    else return false;
    if (i < 0) return false;
    // after a value: close containers until one takes another member
    for (;;) {
      i = skipWhitespace(b, i, n);
      if (depth === 0) return i === n;
      if (i >= n) return false;
      const open = OPEN[depth - 1];
      const next = b[i];
      if (next === COMMA) {
        i = skipWhitespace(b, i + 1, n);
        if (open === OPEN_OBJECT) {
          i = skipKey(b, i, n);
          if (i < 0) return false;
        }
        break;
      }
      if (next !== (open === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) return false;
      depth--;
      i++;
    }
  }
}
