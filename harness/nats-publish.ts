import { jetstream } from '@nats-io/jetstream';
import { connect, type NodeConnectionOptions } from '@nats-io/transport-node';

/** Publishing raw JetStream messages in order, with connection options (auth, TLS) and headers. */

export interface RawMessage {
  subject: string;
  payload: Uint8Array;
  /** sent as the Nats-Msg-Id header */
  msgId?: string;
}

/** Publish one by one, in order; resolves with each message's stream sequence. */
export async function publishInOrder(opts: NodeConnectionOptions, messages: RawMessage[]): Promise<number[]> {
  const nc = await connect(opts);
  try {
    const js = jetstream(nc);
    const seqs: number[] = [];
    for (const m of messages) {
      const ack = await js.publish(m.subject, m.payload, m.msgId === undefined ? {} : { msgID: m.msgId });
      if (ack.duplicate) throw new Error(`publish of ${m.subject} was dropped as a duplicate`);
      seqs.push(ack.seq);
    }
    return seqs;
  } finally {
    await nc.close();
  }
}

export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
export const json = (value: unknown): Uint8Array => utf8(JSON.stringify(value));
