import { JetStreamApiCodes, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../util/logger.js';
import { replyQuietly } from './jetstream-ack.js';
import type { AckPublisher } from './jetstream-ack-publisher.js';
import { isApiError } from './jetstream-resources.js';

/**
 * Acks (and terms) only to the stream they belong to. An ack subject names the stream, the
 * consumer and the sequences, not which incarnation of the stream: an ack of a message of a stream
 * since deleted and re-created (with its durable) would ack the new stream's message of that
 * sequence, one this emitter may never have received, and that would then never be delivered. So the acks asked for
 * wait for a look at the stream, made after they were asked for, and only those of the incarnation
 * found are sent; the others belong to a stream that is gone, where there is nothing to ack. One
 * look is out at a time and covers every ack asked for before it (about one per durable batch at
 * full speed). An ack not sent because the look failed comes back as a redelivery after ack_wait,
 * which the sequence index recognises and acks then.
 */

/** The bound stream's incarnation now (`<stream>@<created>`), undefined when it does not exist. */
export type StreamLook = () => Promise<string | undefined>;

const LOOK_TIMEOUT_MS = 2_000;

export function lookAtStream(nc: NatsConnection, stream: string): StreamLook {
  let jsm: JetStreamManager | undefined;
  return async () => {
    jsm ??= await jetstreamManager(nc, { timeout: LOOK_TIMEOUT_MS, checkAPI: false });
    try {
      return `${stream}@${(await jsm.streams.info(stream)).created}`;
    } catch (error) {
      if (isApiError(error, JetStreamApiCodes.StreamNotFound)) return undefined;
      throw error;
    }
  };
}

export class AckGate {
  private replies: string[] = [];
  private incarnations: string[] = [];
  /** the ack subjects to send `+TERM` to instead of an ack (dead-lettered messages: rare) */
  private terms = new Set<string>();
  private looking?: Promise<void>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly publisher: AckPublisher,
    private readonly look: StreamLook,
    private readonly logger: Logger,
  ) {}

  /** Ack the message of this ack subject, once a look finds its stream incarnation still there. */
  ack(reply: string, incarnation: string): void {
    if (this.replies.length === 0 && !this.looking) queueMicrotask(this.next);
    this.replies.push(reply);
    this.incarnations.push(incarnation);
  }

  /** Terminate the message (it is dead-lettered), under the same condition. */
  term(reply: string, incarnation: string): void {
    this.terms.add(reply);
    this.ack(reply, incarnation);
  }

  /** Resolves once every ack asked for so far is sent or dropped. */
  async settled(): Promise<void> {
    this.next();
    while (this.looking) await this.looking;
  }

  private readonly next = (): void => {
    if (this.looking || this.replies.length === 0) return;
    const replies = this.replies;
    const incarnations = this.incarnations;
    const terms = this.terms;
    this.replies = [];
    this.incarnations = [];
    if (terms.size > 0) this.terms = new Set();
    this.looking = this.lookThenSend(replies, incarnations, terms).finally(() => {
      this.looking = undefined;
      this.next();
    });
  };

  private async lookThenSend(replies: string[], incarnations: string[], terms: Set<string>): Promise<void> {
    let now: string | undefined;
    let failed: string | undefined;
    try {
      now = await this.look();
    } catch (error) {
      failed = (error as Error).message;
    }
    let dropped = 0;
    for (let i = 0; i < replies.length; i++) {
      const reply = replies[i] as string;
      if (incarnations[i] !== now) dropped++;
      // a bare +TERM: nats-server before 2.10 ignores a +TERM that carries a reason; the size
      // first: a lookup hashes the whole ack subject, even in an empty set
      else if (terms.size > 0 && terms.has(reply)) replyQuietly(this.nc, reply, '+TERM');
      else this.publisher.ack(reply);
    }
    if (dropped === 0) return;
    if (failed !== undefined) {
      this.logger.warn(
        { acks: dropped, err: failed },
        'cannot look at the stream: acks held back (the messages come again after ack_wait and are recognised)',
      );
    } else {
      this.logger.warn(
        { acks: dropped, was: incarnations.find((i) => i !== now), now: now ?? 'none' },
        "acks of a stream that was deleted or re-created not sent (they would ack its successor's messages)",
      );
    }
  }
}
