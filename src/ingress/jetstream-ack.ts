import type { JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Acknowledgeable } from '../intake/intake.js';

/**
 * A message's acknowledgement detached from the message, and the quiet nak. Owns only publishing
 * to an ack subject; it must never throw on a closed connection nor keep the message itself.
 */

const ACK = new TextEncoder().encode('+ACK');

/**
 * What a message waiting in a batch keeps until that batch is durable: its ack subject, not the
 * message itself, whose payload is a view into the connection's read buffer and would pin it.
 */
export class JetStreamAck implements Acknowledgeable {
  private acked = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly reply: string,
    readonly seq: number,
    readonly publishedMs: number,
    readonly incarnation: string,
  ) {}

  /**
   * Never throws: on a closed or draining connection the ack is lost, JetStream redelivers the
   * message after ack_wait, and the spool's sequence index recognises it (acked, not sent again).
   */
  ack(): void {
    if (this.acked || this.nc.isClosed()) return;
    this.acked = true;
    try {
      this.nc.publish(this.reply, ACK);
    } catch {
      // draining: as above
    }
  }
}

export function nakQuietly(msg: JsMsg): void {
  try {
    msg.nak();
  } catch {
    // a closed connection: the message comes again after ack_wait
  }
}
