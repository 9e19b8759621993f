import type { JsMsg } from '@nats-io/jetstream';

/**
 * What the emitter needs of a JetStream message's delivery, read once from its ack subject:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp ns>.<pending>`,
 * newer servers add `<domain>.<account hash>` after `ACK` and sometimes a last random
 * token. nats.js parses all eleven fields into an object per message (5% of the emitter's CPU in
 * the bench); this reads the three it needs. It never acknowledges a message or reads its body.
 */
export interface Delivery {
  /** the ack subject ('' when the message had none that parses: ack through the message then) */
  reply: string;
  seq: number;
  deliveryCount: number;
  publishedMs: number;
}

/** Index of `<delivered>` by the subject's token count. */
const DELIVERED_TOKEN: Readonly<Record<number, number>> = { 9: 4, 11: 6, 12: 6 };

export function parseAckSubject(reply: string): Delivery | undefined {
  if (!reply.startsWith('$JS.ACK.')) return undefined;
  let tokens = 1;
  for (let i = reply.indexOf('.'); i >= 0; i = reply.indexOf('.', i + 1)) {
    if (++tokens > 12) return undefined;
  }
  const first = DELIVERED_TOKEN[tokens];
  if (first === undefined) return undefined;
  // read in place: one subject per message, so no token array and no substrings
  let start = 0;
  for (let k = 0; k < first; k++) start = reply.indexOf('.', start) + 1;
  const deliveredEnd = reply.indexOf('.', start);
  const seqEnd = reply.indexOf('.', deliveredEnd + 1);
  const nanosStart = reply.indexOf('.', seqEnd + 1) + 1;
  const nanosEnd = reply.indexOf('.', nanosStart); // the pending count always follows
  const deliveryCount = wholeNumber(reply, start, deliveredEnd);
  const seq = wholeNumber(reply, deliveredEnd + 1, seqEnd);
  // milliseconds: the nanoseconds' digits but the last six (exact, where the nanoseconds are not)
  if (Number.isNaN(wholeNumber(reply, nanosStart, nanosEnd, 0))) return undefined;
  const publishedMs = wholeNumber(reply, nanosStart, nanosEnd - 6, 0);
  if (Number.isNaN(deliveryCount) || Number.isNaN(seq)) return undefined;
  return { reply, seq, deliveryCount, publishedMs };
}

/**
 * The decimal digits of `text` from `from` to `to` as a number; NaN when one is not a digit, when
 * there is none (unless `empty` is given for that case) or when it is not a safe integer.
 */
function wholeNumber(text: string, from: number, to: number, empty = NaN): number {
  if (to <= from) return empty;
  let value = 0;
  for (let i = from; i < to; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return NaN;
    value = value * 10 + digit;
  }
  return empty === 0 || Number.isSafeInteger(value) ? value : NaN;
}

/** The message's delivery, from its ack subject, or from nats.js's own parse when that fails. */
export function deliveryOf(msg: JsMsg): Delivery {
  // nats.js keeps the ack subject as `reply` on its message class without typing it
  const reply = (msg as { reply?: unknown }).reply;
  const parsed = typeof reply === 'string' ? parseAckSubject(reply) : undefined;
  if (parsed) return parsed;
  const info = msg.info;
  return {
    reply: '',
    seq: info.streamSequence,
    deliveryCount: info.deliveryCount,
    publishedMs: Math.floor(info.timestampNanos / 1e6),
  };
}
