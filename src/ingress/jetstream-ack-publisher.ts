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
    // an ack subject came from the server's MSG line, split at whitespace: it holds none
    let commands = '';
    for (const reply of replies) commands += `PUB ${reply} 4\r\n+ACK\r\n`;
    try {
      protocol.sendCommand(Buffer.from(commands, 'utf8'));
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
