import { nanos, type NatsConnection } from '@nats-io/transport-node';
import type { Acknowledgeable } from '../intake/intake.js';
import type { AckGate } from './ack-gate.js';

/**
 * A message's acknowledgement detached from the message, and the quiet nak. Owns only publishing
 * to an ack subject; it must never throw on a closed connection nor keep the message itself.
 */

/**
 * What a message waiting in a batch keeps until that batch is durable: its ack subject, not the
 * message itself, whose payload is a view into the connection's read buffer and would pin it.
 */
export class JetStreamAck implements Acknowledgeable {
  private acked = false;

  constructor(
    private readonly gate: AckGate,
    private readonly reply: string,
    readonly seq: number,
    readonly publishedMs: number,
    readonly incarnation: string,
  ) {}

  /** Never throws (see AckGate: an ack not sent comes back as a redelivery, and is recognised). */
  ack(): void {
    if (this.acked) return;
    this.acked = true;
    this.gate.ack(this.reply, this.incarnation);
  }
}

/**
 * `-NAK` (come again: now, or after `delayMs`) or `+TERM` (never again) to a message's ack
 * subject; never throws.
 */
export function replyQuietly(
  nc: NatsConnection,
  reply: string,
  verb: '-NAK' | '+TERM',
  delayMs?: number,
): void {
  try {
    nc.publish(reply, delayMs === undefined ? verb : `${verb} {"delay":${nanos(delayMs)}}`);
  } catch {
    // a closed connection: the message comes again after ack_wait
  }
}
