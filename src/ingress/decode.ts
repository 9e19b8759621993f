import { isUtf8 } from 'node:buffer';
import type { Msg } from '@nats-io/transport-node';
import { isoTime } from '../util/iso-time.js';
import {
  InvalidItemError,
  itemFromCheckedEvent,
  itemFromRoute,
  MAX_EVENT_DEPTH,
  routeSubject,
  type Item,
  type SourceMeta,
  type SubjectRoute,
} from '../model.js';
import type { Delivery } from './delivery-facts.js';
import { isJsonObjectBytes } from './json-object-bytes.js';
import { firstInvalidUtf8, jsonFault } from './locate.js';

/**
 * Decoding a JetStream message into a batch item; failures are values with a reason. A reason is
 * the kind of fault and where (byte offset or field path) with the body's size: it goes to logs,
 * /api/v1/stats and metrics, so it never carries the body's bytes.
 */

export type Decoded = { ok: true; item: Item } | { ok: false; reason: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

const BOM = [0xef, 0xbb, 0xbf];

function hasBom(body: Uint8Array): boolean {
  return body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf;
}

/** The publisher's message id (`Nats-Msg-Id`), or undefined: the default, `<stream>:<seq>`. */
export function publisherMessageId(msg: Msg): string | undefined {
  return msg.headers?.get('Nats-Msg-Id') || undefined;
}

export function decodeMessage(msg: Msg, delivery: Delivery, stream: string): Decoded {
  const body = msg.data;
  const subject = msg.subject;
  const route = routeSubject(subject);
  // the text's own bytes: the decoder drops a leading BOM, the batch must not hold it either
  const bytes = hasBom(body) ? body.subarray(BOM.length) : body;
  // the usual event: valid on its bytes, neither decoded nor parsed (anything else as below)
  if (route === 'events' && isUtf8(body) && isJsonObjectBytes(bytes, 0, MAX_EVENT_DEPTH)) {
    return { ok: true, item: itemFromCheckedEvent(sourceMeta(msg, delivery, stream, route), bytes) };
  }
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return { ok: false, reason: `invalid_utf8: at byte ${firstInvalidUtf8(body)} of ${body.length}` };
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: jsonReason(body, text, error) };
  }
  try {
    const meta = sourceMeta(msg, delivery, stream, route);
    return { ok: true, item: itemFromRoute(route, data, meta, text, bytes) };
  } catch (error) {
    if (error instanceof InvalidItemError) return { ok: false, reason: `invalid_item: ${error.message}` };
    throw error;
  }
}

/** Read once the body is known valid JSON: the headers (the message id) are read no sooner. */
function sourceMeta(msg: Msg, delivery: Delivery, stream: string, route: SubjectRoute): SourceMeta {
  return {
    subject: msg.subject,
    seq: delivery.seq,
    msgId: publisherMessageId(msg),
    stream,
    // only generic events carry it: skip the Date for graph items
    publishedAt: route === 'events' ? isoTime(delivery.publishedMs) : '',
  };
}

/** Where the text stops being JSON, as a byte offset into the body (the decoder drops a leading BOM). */
function jsonReason(body: Uint8Array, text: string, error: unknown): string {
  const fault = jsonFault(text);
  if (!fault)
    return `invalid_json: not parsable (${error instanceof Error ? error.name : 'error'}), ${body.length} bytes`;
  const bom = hasBom(body) ? BOM.length : 0;
  const offset = bom + Buffer.byteLength(text.slice(0, fault.index));
  return `invalid_json: ${fault.problem} at byte ${offset} of ${body.length}`;
}
