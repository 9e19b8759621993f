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
  const dots: number[] = [];
  for (let i = reply.indexOf('.'); i >= 0; i = reply.indexOf('.', i + 1)) {
    if (dots.push(i) > 11) return undefined;
  }
  const first = DELIVERED_TOKEN[dots.length + 1];
  if (first === undefined) return undefined;
  const token = (k: number) => Number(reply.slice((dots[k - 1] as number) + 1, dots[k]));
  const deliveryCount = token(first);
  const seq = token(first + 1);
  const nanos = token(first + 3);
  if (!Number.isSafeInteger(deliveryCount) || !Number.isSafeInteger(seq) || !Number.isFinite(nanos))
    return undefined;
  return { reply, seq, deliveryCount, publishedMs: Math.floor(nanos / 1e6) };
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
