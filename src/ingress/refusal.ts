import type { Msg } from '@nats-io/transport-node';
import type { DeadLetter } from '../spool/spool.js';
import { uuidv7 } from '../util/ids.js';

/**
 * A refused JetStream message as a dead letter: the reason (content-free, see decode.ts), the
 * subject, sequence and size, and the first bytes of the body kept for an operator's replay.
 * The reason and the log fields never quote the body.
 */

const RAW_EXCERPT_BYTES = 4096;

/** The reason of a refused offer: our own errors (ITEM_TOO_LARGE) say sizes only; anything else is named, not quoted. */
export function offerRefusal(error: unknown): string {
  const code = (error as { code?: string }).code;
  return code ? `${code}: ${(error as Error).message}` : `internal: ${(error as Error).name}`;
}

export function messageDeadLetter(msg: Msg, seq: number, reason: string): DeadLetter {
  const raw = Buffer.from(msg.data.subarray(0, RAW_EXCERPT_BYTES));
  return {
    id: uuidv7(),
    kind: 'message',
    reason,
    at: new Date().toISOString(),
    subjects: [msg.subject],
    message: {
      subject: msg.subject,
      seq,
      rawBase64: raw.toString('base64'),
      rawBytes: msg.data.length,
      truncated: msg.data.length > RAW_EXCERPT_BYTES,
    },
  };
}

/** What the `rejected` event and the log say of a refused message: no content. */
export function refusalFacts(msg: Msg, seq: number, reason: string) {
  return {
    reason: reason.split(':')[0] ?? reason,
    detail: reason,
    subject: msg.subject,
    seq,
    bytes: msg.data.length,
  };
}
