import type { JsMsg } from '@nats-io/jetstream';
import { InvalidItemError, itemFromMessage, routeSubject, type Item } from '../model.js';

/** Decoding a JetStream message into a batch item; failures are values with a reason. */

export type Decoded = { ok: true; item: Item } | { ok: false; reason: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function messageId(msg: JsMsg, stream: string): string {
  return msg.headers?.get('Nats-Msg-Id') || `${stream}:${msg.seq}`;
}

export function decodeMessage(msg: JsMsg, stream: string): Decoded {
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
        seq: msg.seq,
        msgId: messageId(msg, stream),
        // only generic events carry it: skip the Date for graph items
        publishedAt: routeSubject(msg.subject) === 'events' ? msg.time.toISOString() : '',
      },
      text,
    );
    return { ok: true, item };
  } catch (error) {
    if (error instanceof InvalidItemError) return { ok: false, reason: `invalid_item: ${error.message}` };
    throw error;
  }
}
