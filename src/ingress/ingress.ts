import type { Msg } from '@nats-io/transport-node';
import type { NatsConfig } from '../config/index.js';
import type { Intake } from '../intake/intake.js';
import type { EmitterEvents } from '../observe/events.js';
import type { Spool } from '../spool/spool.js';
import type { Logger } from '../util/logger.js';
import { Arrivals } from './arrivals.js';
import { decodeMessage } from './decode.js';
import type { Delivery } from './delivery-facts.js';
import type { UnboundReason } from './jetstream-resources.js';
import { JetStreamSource, originOf, type ConsumerSession, type Origin } from './jetstream-source.js';
import type { Redelivery } from './redelivery.js';
import { messageDeadLetter, offerRefusal, refusalFacts } from './refusal.js';

/**
 * The JetStream ingress stage: takes messages from the source, decodes and validates them,
 * recognises redeliveries by stream sequence, dead-letters what is invalid, and hands every
 * other item with its ack to the intake. It never acknowledges a message before the batch
 * holding it is durable (the intake acks new ones), and never lets message content into a reason.
 */

export interface IngressOptions {
  nats: NatsConfig;
  /** TRANSMITTER_BATCH_SIZE and _INTERVAL_S: the consumer's ack_wait and max_ack_pending follow them */
  batchSize: number;
  intervalMs: number;
  intake: Pick<Intake, 'offer' | 'whenAccepting'>;
  redelivery: Redelivery;
  spool: Pick<Spool, 'deadLetters' | 'seqIndex'>;
  events: EmitterEvents;
  logger: Logger;
}

/** What the ingress reports for /ready, /api/v1/stats and /metrics. */
export interface IngressStatus {
  /** false when the emitter runs without NATS (in-process adds only): NATS checks are skipped */
  natsEnabled: boolean;
  natsConnected: boolean;
  consumerBound: boolean;
  /** why the consumer is not bound, when known (e.g. the stream or the consumer was deleted) */
  consumerUnbound?: string;
}

const SEQ_PRUNE_INTERVAL_MS = 30_000;

const UNBOUND_DETAIL: Readonly<Record<UnboundReason, string>> = {
  stream_deleted: 'the stream was deleted; re-creating it',
  stream_replaced: 'the stream was deleted and re-created; binding again',
  consumer_deleted: 'the durable consumer was deleted; re-creating it',
  consumer_replaced: 'the durable consumer was re-created; binding again',
};

/** The status while no ingress runs: not configured, or not connected yet. */
export function noIngressStatus(natsEnabled: boolean): IngressStatus {
  return { natsEnabled, natsConnected: false, consumerBound: false, consumerUnbound: undefined };
}

export class Ingress {
  private readonly arrivals: Arrivals;
  private pruneTimer?: NodeJS.Timeout;

  private constructor(
    private readonly source: JetStreamSource,
    private readonly options: IngressOptions,
  ) {
    this.arrivals = new Arrivals(options.events);
  }

  /** Connect, ensuring the stream and the durable consumer; nothing is consumed before start(). */
  static async connect(options: IngressOptions): Promise<Ingress> {
    const { nats, batchSize, intervalMs, logger } = options;
    const source = await JetStreamSource.connect(nats, {
      batchSize,
      intervalMs,
      ackWaitMs: nats.ackWaitMs,
      logger,
    });
    return new Ingress(source, options);
  }

  /** Bind the sequence index to the stream, then consume (the index follows every re-bind). */
  async start(): Promise<void> {
    const { redelivery, nats, logger } = this.options;
    await redelivery.rebind(this.source.incarnation);
    this.source.start(
      (msg, delivery, from, receipt) => this.onMessage(msg, delivery, from, receipt),
      (incarnation) => redelivery.rebind(incarnation),
    );
    this.pruneTimer = setInterval(() => void this.pruneSeqIndex(), SEQ_PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
    logger.info({ servers: nats.servers, stream: nats.stream, durable: nats.durable }, 'consuming');
  }

  /** Stop pulling: messages pulled but not handled come again later (never acknowledged). */
  async stop(): Promise<void> {
    await this.source.stop();
    this.arrivals.report();
  }

  async close(): Promise<void> {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    await this.source.close().catch(() => undefined);
  }

  status(): IngressStatus {
    const reason = this.source.unboundReason;
    return {
      natsEnabled: true,
      natsConnected: this.source.connected,
      consumerBound: this.source.bound,
      consumerUnbound: reason === undefined ? undefined : UNBOUND_DETAIL[reason],
    };
  }

  /** The durable consumer's counters (one JetStream API round trip), undefined while unanswered. */
  consumerState(): ReturnType<JetStreamSource['consumerState']> {
    return this.source.consumerState();
  }

  /**
   * One message: into the batch, or to the dead letters with its reason. A redelivered message
   * whose first copy is already in a batch (its ack was lost, e.g. in a crash between the spool
   * write and the ack) is only acknowledged: that batch, with its own idempotency-key, carries it.
   */
  private onMessage(
    msg: Msg,
    delivery: Delivery,
    from: ConsumerSession,
    receipt: number,
  ): Promise<void> | undefined {
    if (this.options.redelivery.mayHold(delivery))
      return this.onRedelivered(msg, delivery, originOf(from, receipt));
    return this.accept(msg, delivery, from.incarnation);
  }

  private async onRedelivered(msg: Msg, delivery: Delivery, origin: Origin): Promise<void> {
    // a stream deleted and re-created starts again at sequence 1: look a sequence up only once
    // the message is known to be of the incarnation the index belongs to
    if (!(await this.source.confirm(origin))) return this.source.nak(delivery);
    const held = await this.options.redelivery.findSeq(
      delivery.seq,
      origin.incarnation,
      delivery.publishedMs,
    );
    if (held === undefined) return this.accept(msg, delivery, origin.incarnation);
    // ack only once that batch is durable (it may still be waiting for disk space)
    const ack = this.source.ackFor(delivery, origin.incarnation);
    void held.durable.then(
      () => ack.ack(),
      () => undefined,
    );
    this.options.logger.debug(
      { seq: delivery.seq, batchId: held.batchId },
      'redelivered message already in a batch',
    );
  }

  private accept(msg: Msg, delivery: Delivery, incarnation: string): Promise<void> | undefined {
    const { intake, nats } = this.options;
    const decoded = decodeMessage(msg, delivery, nats.stream);
    if (!decoded.ok) return this.refuse(msg, delivery, incarnation, decoded.reason);
    try {
      void intake.offer(decoded.item, this.source.ackFor(delivery, incarnation), msg.subject);
    } catch (error) {
      return this.refuse(msg, delivery, incarnation, offerRefusal(error));
    }
    this.arrivals.count(decoded.item.section);
    return intake.whenAccepting();
  }

  /** Dead-letter (durably) then terminate a message that can never be delivered. */
  private async refuse(msg: Msg, delivery: Delivery, incarnation: string, reason: string): Promise<void> {
    const { seq } = delivery;
    this.options.events.emit('rejected', refusalFacts(msg, seq, reason));
    await this.options.spool.deadLetters.addMessage(messageDeadLetter(msg, seq, reason));
    this.source.term(delivery, incarnation);
    this.options.logger.warn(
      { subject: msg.subject, seq, bytes: msg.data.length, reason },
      'message dead-lettered',
    );
  }

  /** Sequences at or below the ack floor can never come back: drop them from the index. */
  private async pruneSeqIndex(): Promise<void> {
    const state = await this.source.consumerState();
    if (!state) return;
    await this.options.spool.seqIndex.prune(state.ackFloor).catch((error: unknown) => {
      this.options.logger.warn({ err: (error as Error).message }, 'cannot prune the sequence index');
    });
  }
}
