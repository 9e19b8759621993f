import type { JsMsg } from '@nats-io/jetstream';
import { InvalidItemError, itemFromMessage, routeSubject, type Item } from '../model.js';
import type { Delivery } from './delivery.js';

/** Decoding a JetStream message into a batch item; failures are values with a reason. */

export type Decoded = { ok: true; item: Item } | { ok: false; reason: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function messageId(msg: JsMsg, seq: number, stream: string): string {
  return msg.headers?.get('Nats-Msg-Id') || `${stream}:${seq}`;
}

export function decodeMessage(msg: JsMsg, delivery: Delivery, stream: string): Decoded {
  let text: string;
  try {
    text = utf8.decode(msg.data);
  } catch {
    return { ok: false, reason: 'invalid_utf8: body is not valid UTF-8' };
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `invalid_json: ${(error as Error).message}` };
  }
  try {
    const item = itemFromMessage(
      data,
      {
        subject: msg.subject,
        seq: delivery.seq,
        msgId: messageId(msg, delivery.seq, stream),
        // only generic events carry it: skip the Date for graph items
        publishedAt:
          routeSubject(msg.subject) === 'events' ? new Date(delivery.publishedMs).toISOString() : '',
      },
      text,
    );
    return { ok: true, item };
  } catch (error) {
    if (error instanceof InvalidItemError) return { ok: false, reason: `invalid_item: ${error.message}` };
    throw error;
  }
}
