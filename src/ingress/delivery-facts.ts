/**
 * What the emitter needs of a JetStream message's delivery, read once from its ack subject:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp ns>.<pending>`,
 * newer servers add `<domain>.<account hash>` after `ACK` and sometimes a last random
 * token. nats.js parses all eleven fields into an object per message (5% of the emitter's CPU in
 * the bench); this reads the three it needs. It never acknowledges a message or reads its body.
 */
export interface Delivery {
  /** the ack subject */
  reply: string;
  seq: number;
  deliveryCount: number;
  publishedMs: number;
}

/** Index of `<delivered>` by the subject's token count. */
const DELIVERED_TOKEN: Readonly<Record<number, number>> = { 9: 4, 11: 6, 12: 6 };

/** Where the subject's dots are (a scratch array: one subject is read at a time); [k] ends token k. */
const DOTS = new Int32Array(13);

export function parseAckSubject(reply: string): Delivery | undefined {
  if (!reply.startsWith('$JS.ACK.')) return undefined;
  // one pass over the dots, read in place: no token array and no substrings
  let tokens = 1;
  for (let i = reply.indexOf('.'); i >= 0; i = reply.indexOf('.', i + 1)) {
    if (tokens > 11) return undefined;
    DOTS[tokens++] = i;
  }
  DOTS[tokens] = reply.length;
  const first = DELIVERED_TOKEN[tokens];
  if (first === undefined) return undefined;
  const deliveryCount = wholeNumber(reply, (DOTS[first] as number) + 1, DOTS[first + 1] as number);
  // past 2^53 a stream sequence is kept inexact (it is never used as a key then: isExactSequence)
  const seq = wholeNumber(reply, (DOTS[first + 1] as number) + 1, DOTS[first + 2] as number, NaN, false);
  const nanosStart = (DOTS[first + 3] as number) + 1;
  const nanosEnd = DOTS[first + 4] as number; // the pending count always follows
  // milliseconds: the nanoseconds' digits but the last six (exact, where the nanoseconds are not);
  // those six are only checked
  const msEnd = Math.max(nanosStart, nanosEnd - 6);
  const publishedMs = wholeNumber(reply, nanosStart, msEnd, 0);
  if (Number.isNaN(publishedMs) || Number.isNaN(wholeNumber(reply, msEnd, nanosEnd, 0))) return undefined;
  if (Number.isNaN(deliveryCount) || Number.isNaN(seq)) return undefined;
  return { reply, seq, deliveryCount, publishedMs };
}

/**
 * The decimal digits of `text` from `from` to `to` as a number; NaN when one is not a digit, when
 * there is none (unless `empty` is given for that case) or, when `safe`, when it is not a safe
 * integer.
 */
function wholeNumber(text: string, from: number, to: number, empty = NaN, safe = true): number {
  if (to <= from) return empty;
  let value = 0;
  for (let i = from; i < to; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return NaN;
    value = value * 10 + digit;
  }
  return !safe || Number.isSafeInteger(value) ? value : NaN;
}
