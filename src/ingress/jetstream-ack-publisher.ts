import type { NatsConnection } from '@nats-io/transport-node';

/**
 * Publishing acks in bulk: the acks asked for in one turn of the event loop (a durable batch's
 * messages, one by one) leave as one write of their PUB commands, each still its own `+ACK` to its
 * own message's ack subject. nats.js's publish() checks the subject with a regex, encodes a
 * command and queues three buffers per message: a third of the emitter's ack cost at full speed.
 * It never acks anything it was not asked to, and never throws.
 */

/** The part of nats.js's connection (`protocol`, not in its types) that queues raw commands. */
interface ProtocolWriter {
  sendCommand(cmd: Uint8Array): void;
  /** set once the connection drains: publishing is refused from then on */
  noMorePublishing?: boolean;
}

function protocolOf(nc: NatsConnection): ProtocolWriter | undefined {
  const protocol = (nc as { protocol?: Partial<ProtocolWriter> }).protocol;
  return typeof protocol?.sendCommand === 'function' ? (protocol as ProtocolWriter) : undefined;
}

const ACK = new TextEncoder().encode('+ACK');
const PUB = new Uint8Array(Buffer.from('PUB '));
const SIZE_AND_ACK = new Uint8Array(Buffer.from(' 4\r\n+ACK\r\n'));

/**
 * `PUB <reply> 4\r\n+ACK\r\n` for each reply, written straight into one buffer: no string per
 * command on the JS heap (a thousand per batch). An ack subject came from the server's MSG line,
 * split at whitespace: it holds no space. It is ASCII but for a stream or consumer named otherwise,
 * whose commands are encoded as UTF-8 text instead.
 */
export function ackCommands(replies: readonly string[]): Buffer {
  let size = 0;
  for (const reply of replies) size += PUB.length + reply.length + SIZE_AND_ACK.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const reply of replies) {
    at = put(out, at, PUB);
    // one byte per char only while it is ASCII
    const written = out.write(reply, at, 'utf8');
    if (written !== reply.length)
      return Buffer.from(replies.map((r) => `PUB ${r} 4\r\n+ACK\r\n`).join(''), 'utf8');
    at = put(out, at + written, SIZE_AND_ACK);
  }
  return out;
}

/** A few constant bytes, stored one by one (cheaper than a native copy call for so few). */
function put(out: Buffer, at: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) out[at + i] = bytes[i] as number;
  return at + bytes.length;
}

export class AckPublisher {
  /** the ack subjects asked for since the last write */
  private readonly replies: string[] = [];
  private readonly protocol?: ProtocolWriter;

  constructor(private readonly nc: NatsConnection) {
    this.protocol = protocolOf(nc);
  }

  /** Ack the message of this ack subject (sent at the end of this turn of the event loop). */
  ack(reply: string): void {
    if (this.replies.length === 0) queueMicrotask(this.write);
    this.replies.push(reply);
  }

  /**
   * On a closed or draining connection the acks are lost: JetStream redelivers the messages after
   * ack_wait, and the spool's sequence index recognises them (acked, not sent again).
   */
  private readonly write = (): void => {
    const replies = this.replies.splice(0);
    if (this.nc.isClosed()) return;
    const protocol = this.protocol;
    if (protocol === undefined) return this.publishEach(replies);
    if (protocol.noMorePublishing) return;
    try {
      protocol.sendCommand(ackCommands(replies));
    } catch {
      // the connection closed under us: as above
    }
  };

  /** nats.js's own publish, one message at a time (when its protocol writer is not there). */
  private publishEach(replies: readonly string[]): void {
    for (const reply of replies) {
      try {
        this.nc.publish(reply, ACK);
      } catch {
        // closed or draining: as above
      }
    }
  }
}
