import type { JsMsg } from '@nats-io/jetstream';
import { secretsOf, type Config } from './config.js';
import { deferred } from './util/deferred.js';
import { Dispatcher } from './delivery/dispatcher.js';
import { EmitterEvents } from './observe/events.js';
import { uuidv7 } from './util/ids.js';
import { Intake, IntakeClosedError } from './intake/intake.js';
import { Redactor } from './util/redact.js';
import { attachLedger, openLedger, type Ledger } from './observe/ledger/index.js';
import { createLogger, type Logger } from './util/logger.js';
import {
  itemFromEdge,
  itemFromEvent,
  parseEdge,
  parseEventData,
  parseNode,
  type Item,
  type Section,
} from './model.js';
import { decodeMessage } from './ingress/decode.js';
import type { Delivery } from './ingress/delivery-facts.js';
import { JetStreamSource, nakQuietly, type Origin } from './ingress/jetstream-source.js';
import { Spool, type DeadLetter } from './spool/spool.js';
import { createHttpTransport, type HttpTransport } from './delivery/http-transport.js';
import { machinesView } from './observe/machines-view.js';
import { breakerStatus, type StatusSnapshot, type StatusSource } from './observe/status.js';
import { VERSION } from './util/version.js';

/**
 * The emitter: the lifecycle of DESIGN.md (start, add*, flush, wait, close) around the parts.
 * Start order: spool (replay) -> transport -> dispatcher -> intake -> JetStream. Close order is
 * the reverse, so nothing is acknowledged that is not durable: stop pulling, seal the open batch,
 * wait (bounded) for deliveries, then stop deliveries, close NATS, close the spool.
 */

export interface EmitterOptions {
  logger?: Logger;
}

const RAW_EXCERPT_BYTES = 4096;
const SEQ_PRUNE_INTERVAL_MS = 30_000;
/** beyond the shutdown timeout, for spool writes that are slow but not failing */
const SLOW_WRITE_GRACE_MS = 10_000;

export class Emitter {
  readonly logger: Logger;
  /** typed events of everything that happens inside (metrics, ledger and views subscribe) */
  readonly events = new EmitterEvents();
  private spool?: Spool;
  private transport?: HttpTransport;
  private dispatcher?: Dispatcher;
  private intake?: Intake;
  private source?: JetStreamSource;
  private starting?: Promise<void>;
  private pruneTimer?: NodeJS.Timeout;
  private unreachableSinceMs?: number;
  private ledger?: Ledger;
  private detachLedger?: () => void;
  private closing?: Promise<void>;
  private readonly hurried = deferred();
  private abandoned?: { batches: number; items: number };
  private readonly arrivals = new Map<Section, number>();

  constructor(
    readonly config: Config,
    private readonly options: EmitterOptions = {},
  ) {
    this.logger = options.logger ?? createLogger(config.logLevel, undefined, secretsOf(config));
    // any answer other than a retryable failure means the destination is reachable
    this.events.on('attempt', ({ outcome }) => {
      if (outcome.kind !== 'retryable') this.unreachableSinceMs = undefined;
      else this.unreachableSinceMs ??= performance.now();
    });
  }

  /** Open the spool, replay it, connect, and start consuming. Idempotent. */
  start(): Promise<void> {
    if (this.closing) return Promise.reject(new IntakeClosedError());
    this.starting ??= this.open().catch(async (error: unknown) => {
      await this.shutdownParts();
      this.starting = undefined; // a failed start may be retried
      throw error;
    });
    return this.starting;
  }

  private async open(): Promise<void> {
    const { config, logger } = this;
    this.spool = await Spool.open(config.spool.dir, {
      logger,
      onReopened: () => this.dispatcher?.rescan(),
    });
    logger.info({ dir: config.spool.dir, batches: this.spool.count, bytes: this.spool.bytes }, 'spool open');
    this.transport = createHttpTransport({
      url: config.destination.url,
      authToken: config.destination.authToken,
      clientCertPath: config.destination.clientCertPath,
      clientKeyPath: config.destination.clientKeyPath,
      caCertPath: config.destination.caCertPath,
      allowInsecureHttp: config.destination.allowInsecureHttp,
      headers: config.destination.headers,
      connectTimeoutMs: Math.min(10_000, config.destination.requestTimeoutMs),
      requestTimeoutMs: config.destination.requestTimeoutMs,
      connections: config.destination.concurrency,
      userAgent: `batch-emitter/${VERSION}`,
    });
    const spool = this.spool;
    await this.openLedger();
    this.dispatcher = new Dispatcher({
      spool,
      transport: this.transport,
      logger,
      policy: { ...config.retry, jitter: 0.2 },
      circuit: config.circuit,
      concurrency: config.destination.concurrency,
      compression: config.destination.compression,
      bodyFormat: config.destination.bodyFormat,
      redactor: new Redactor(secretsOf(config)),
      events: this.events,
      onSpoolShrunk: () => this.intake?.recheck(),
    });
    this.intake = new Intake({
      spool,
      logger,
      events: this.events,
      probeId: config.probeId,
      runId: config.runId,
      maxItems: config.batch.maxItems,
      maxBytes: config.batch.maxBytes,
      intervalMs: config.batch.intervalMs,
      compression: config.destination.compression,
      spoolMaxBytes: config.spool.maxBytes,
      onDurable: (state) => this.dispatcher?.enqueue(state.id),
    });
    this.dispatcher.start();
    if (config.nats) {
      this.source = await JetStreamSource.connect(config.nats, {
        batchSize: config.batch.maxItems,
        intervalMs: config.batch.intervalMs,
        ackWaitMs: config.nats.ackWaitMs,
        logger,
      });
      const intake = this.intake;
      await intake.rebind(this.source.incarnation);
      this.source.start(
        (msg, delivery, origin) => this.onMessage(msg, delivery, origin),
        (incarnation) => intake.rebind(incarnation),
      );
      this.pruneTimer = setInterval(() => void this.pruneSeqIndex(), SEQ_PRUNE_INTERVAL_MS);
      this.pruneTimer.unref();
      logger.info(
        { servers: config.nats.servers, stream: config.nats.stream, durable: config.nats.durable },
        'consuming',
      );
    }
  }

  get stats() {
    return {
      ...this.events.counters.summary(),
      spool: { batches: this.spool?.count ?? 0, bytes: this.spool?.bytes ?? 0 },
      inFlight: this.dispatcher?.activeCount ?? 0,
      queued: this.dispatcher?.queuedCount ?? 0,
      openItems: this.intake?.openItems ?? 0,
      paused: this.intake?.pauseReason(),
      natsConnected: this.source?.connected ?? false,
      consumerBound: this.source?.bound ?? false,
    };
  }

  /**
   * One JetStream message: decode, then into the batch, or to the dead letters with its reason.
   * A redelivered message whose first copy is already spooled (its ack was lost, e.g. in a crash
   * between the spool write and the ack) is only acknowledged: the spooled batch, with its own
   * idempotency-key, carries it.
   */
  private onMessage(msg: JsMsg, delivery: Delivery, origin: Origin): Promise<void> | undefined {
    // a restarted server may redeliver with a delivery count of 1: check any sequence not above
    // the highest one sealed, which costs nothing for the normal, in-order stream
    if (delivery.deliveryCount > 1 || this.requireIntake().maySpooled(delivery.seq))
      return this.onRedelivered(msg, delivery, origin);
    return this.accept(msg, delivery, origin);
  }

  private async onRedelivered(msg: JsMsg, delivery: Delivery, origin: Origin): Promise<void> {
    // a stream deleted and re-created starts again at sequence 1: look a sequence up only once
    // the message is known to be of the incarnation the index belongs to
    if (!(await this.requireSource().confirm(origin))) return nakQuietly(msg);
    const held = await this.requireIntake().findSeq(delivery.seq, origin.incarnation);
    if (held === undefined) return this.accept(msg, delivery, origin);
    // ack only once that batch is durable (it may still be waiting for disk space)
    void held.durable.then(
      () => msg.ack(),
      () => undefined,
    );
    this.logger.debug({ seq: delivery.seq, batchId: held.batchId }, 'redelivered message already in a batch');
  }

  private accept(msg: JsMsg, delivery: Delivery, origin: Origin): Promise<void> | undefined {
    const intake = this.requireIntake();
    const decoded = decodeMessage(msg, delivery, this.config.nats?.stream ?? '');
    let refused = decoded.ok ? undefined : decoded.reason;
    if (decoded.ok) {
      try {
        void intake.offer(decoded.item, this.requireSource().ackFor(msg, delivery, origin), msg.subject);
        this.countArrival(decoded.item.section);
      } catch (error) {
        // our own errors (ITEM_TOO_LARGE) say sizes only; anything else is named, not quoted
        const code = (error as { code?: string }).code;
        refused = code ? `${code}: ${(error as Error).message}` : `internal: ${(error as Error).name}`;
      }
    }
    if (refused !== undefined) return this.deadLetterMessage(msg, refused);
    return intake.whenAccepting();
  }

  /** JetStream arrivals, counted per section and reported once per turn of the event loop. */
  private countArrival(section: Section): void {
    if (this.arrivals.size === 0) setImmediate(() => this.reportArrivals());
    this.arrivals.set(section, (this.arrivals.get(section) ?? 0) + 1);
  }

  private reportArrivals(): void {
    for (const [section, count] of this.arrivals)
      this.events.emit('received', { section, source: 'jetstream', count });
    this.arrivals.clear();
  }

  private async deadLetterMessage(msg: JsMsg, reason: string): Promise<void> {
    this.events.emit('rejected', {
      reason: reason.split(':')[0] ?? reason,
      detail: reason,
      subject: msg.subject,
      seq: msg.seq,
      bytes: msg.data.length,
    });
    const raw = Buffer.from(msg.data.subarray(0, RAW_EXCERPT_BYTES));
    const letter: DeadLetter = {
      id: uuidv7(),
      kind: 'message',
      reason,
      at: new Date().toISOString(),
      subjects: [msg.subject],
      message: {
        subject: msg.subject,
        seq: msg.seq,
        rawBase64: raw.toString('base64'),
        rawBytes: msg.data.length,
        truncated: msg.data.length > RAW_EXCERPT_BYTES,
      },
    };
    await this.requireSpool().deadLetterMessage(letter);
    // a bare +TERM: nats-server before 2.10 ignores a +TERM that carries a reason (the reason is in the dead letter)
    msg.term();
    this.logger.warn(
      { subject: msg.subject, seq: msg.seq, bytes: msg.data.length, reason },
      'message dead-lettered',
    );
  }

  private requireIntake(): Intake {
    if (this.closing) throw new IntakeClosedError();
    if (!this.intake) throw new EmitterNotStartedError();
    return this.intake;
  }

  private requireSource(): JetStreamSource {
    if (!this.source) throw new EmitterNotStartedError();
    return this.source;
  }

  private requireSpool(): Spool {
    if (!this.spool) throw new EmitterNotStartedError();
    return this.spool;
  }

  private async offer(make: () => Item): Promise<void> {
    const intake = this.requireIntake();
    const item = make();
    const waiting = intake.whenAccepting();
    if (waiting) await waiting;
    const durable = intake.offer(item);
    this.events.emit('received', { section: item.section, source: 'api', count: 1 });
    await durable;
  }

  /** Resolves when the edge's batch is durable in the spool. Rejects InvalidItemError on bad input. */
  addEdge(edge: unknown): Promise<void> {
    return this.offer(() => itemFromEdge(parseEdge(edge)));
  }

  /** A NodeDomain, NodeIP or NodeCert, told apart by shape. */
  addNode(node: unknown): Promise<void> {
    return this.offer(() => parseNode(node));
  }

  /** A generic event under `subject`. */
  add(subject: string, data: unknown): Promise<void> {
    return this.offer(() =>
      itemFromEvent({
        subject,
        seq: null,
        msg_id: uuidv7(),
        published_at: new Date().toISOString(),
        data: parseEventData(data),
      }),
    );
  }

  /** What /ready, /api/v1/stats and /metrics read. */
  statusSnapshot(): StatusSnapshot {
    const buffer = this.intake?.bufferSnapshot().context;
    return {
      natsEnabled: this.config.nats !== undefined,
      natsConnected: this.source?.connected ?? false,
      consumerBound: this.source?.bound ?? false,
      consumerUnbound: unboundDetail(this.source?.unboundReason),
      spool: {
        open: this.spool?.isOpen ?? false,
        replaced: this.spool?.replaced,
        batches: this.spool?.count ?? 0,
        bytes: this.spool?.bytes ?? 0,
        maxBytes: this.config.spool.maxBytes,
        ...(this.spool
          ? {
              deadLetters: this.spool.deadLetterCount,
              deadLetterBytes: this.spool.deadLetterBytes,
              quarantined: this.spool.quarantinedCount,
              quarantinedBytes: this.spool.quarantinedBytes,
            }
          : {}),
      },
      intakePaused: this.intake?.pauseReason(),
      deliveriesActive: this.dispatcher?.activeCount ?? 0,
      queued: this.dispatcher?.queuedCount ?? 0,
      openItems: this.intake?.openItems ?? 0,
      maxItems: this.config.batch.maxItems,
      openBytes: buffer?.bytes,
      maxBytes: buffer?.maxItemBytes,
      breaker: this.dispatcher ? breakerStatus(this.dispatcher.breaker.getSnapshot()) : undefined,
      shuttingDown: this.closing !== undefined,
      originUnreachableMs:
        this.unreachableSinceMs === undefined ? undefined : performance.now() - this.unreachableSinceMs,
      maxUnreachableMs: this.config.readyMaxUnreachableMs,
      destinationRejecting: this.dispatcher?.rejecting(),
    };
  }

  statusSource(): StatusSource {
    return {
      snapshot: () => this.statusSnapshot(),
      jetstreamPending: async () => this.source?.consumerState(),
      spoolStats: async () => this.spool?.stats(),
      machines: () =>
        machinesView({
          buffer: this.intake?.bufferSnapshot(),
          deliveries: this.dispatcher?.deliveries(),
          breaker: this.dispatcher?.breaker.getSnapshot(),
        }),
    };
  }

  /** Dead letters (rejected messages and permanently refused batches), oldest first. */
  deadLetters(limit?: number): Promise<DeadLetter[]> {
    return this.requireSpool().listDeadLetters(limit);
  }

  /** Seal the open batch now; resolves when it (and every earlier one) is durable. */
  async flush(): Promise<void> {
    await this.requireIntake().flush();
  }

  /** Resolves when every batch sealed so far is delivered, parked or dead-lettered. */
  async wait(): Promise<void> {
    await this.intake?.settled();
    await this.dispatcher?.idle();
  }

  /** Stop intake, seal, wait (bounded), then close NATS and the spool. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /**
   * Make close() stop waiting for deliveries now (a second SIGTERM): in-flight requests are
   * aborted and their batches stay in the spool, which is still closed cleanly.
   */
  hurry(): void {
    this.hurried.resolve();
  }

  /**
   * False after a close that could not make everything it had accepted durable (the spool kept
   * failing until the shutdown timeout: those messages stay unacknowledged in the stream), or when
   * the spool directory was deleted or replaced while running.
   */
  get closedDurably(): boolean {
    return this.abandoned === undefined && this.spool?.replaced === undefined;
  }

  private async shutdown(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const timeoutMs = this.config.shutdownTimeoutMs;
    const deadline = performance.now() + timeoutMs;
    const pulling = this.source?.stop();
    // a handler paused by backpressure (e.g. spool full while the sink is down) must not hold the stop
    this.intake?.releaseWaiters();
    await pulling;
    this.reportArrivals();
    await this.closeIntake(deadline);
    const outcome = await Promise.race([
      this.wait().then(() => 'delivered' as const),
      ...(this.dispatcher ? [this.dispatcher.originDown().then(() => 'origin_down' as const)] : []),
      this.hurried.promise.then(() => 'hurried' as const),
      timeAfter(Math.max(0, deadline - performance.now())).then(() => 'timeout' as const),
    ]);
    if (outcome !== 'delivered') {
      this.logger.warn(
        { timeoutMs, why: outcome },
        'close: undelivered batches stay in the spool for the next start',
      );
    }
    await this.shutdownParts();
    this.logger.info(this.stats, 'closed');
  }

  /**
   * Seal the open batch and wait for every write up to the deadline. Writes that are failing are
   * then abandoned; writes that are only slow get a short grace first (a shutdown timeout of 0
   * still makes the last batch durable on a working disk).
   */
  private async closeIntake(deadline: number): Promise<void> {
    const intake = this.intake;
    if (!intake) return;
    const closing = intake.close().then(() => true);
    const within = (ms: number) => Promise.race([closing, timeAfter(Math.max(0, ms)).then(() => false)]);
    let closed = await within(deadline - performance.now());
    const failing = () => ['spool_write_failing', 'spool_replaced'].includes(intake.pauseReason() ?? '');
    if (!closed && !failing()) closed = await within(SLOW_WRITE_GRACE_MS);
    if (closed) return;
    this.abandoned = await intake.abandonWrites();
    this.logger.error(
      {
        ...this.abandoned,
        timeoutMs: this.config.shutdownTimeoutMs,
        spool: this.spool?.replaced ?? 'writes failing',
      },
      'close: batches could not be written to the spool before the shutdown timeout; their messages ' +
        'stay unacknowledged in JetStream (in-process adds were rejected)',
    );
  }

  /** The batch ledger (LevelDB beside the spool, or PostgreSQL); never blocks delivery. */
  private async openLedger(): Promise<void> {
    const { config, logger } = this;
    this.ledger = await openLedger({
      databaseUrl: config.databaseUrl,
      spoolDir: config.spool.dir,
      logger,
    }).catch((error: unknown) => {
      logger.error({ err: (error as Error).message }, 'ledger unavailable; continuing without it');
      return undefined;
    });
    if (this.ledger) this.detachLedger = attachLedger(this.events, this.ledger, config.destination.url);
  }

  get batchLedger(): Ledger | undefined {
    return this.ledger;
  }

  /** Sequences at or below the ack floor can never come back: drop them from the index. */
  private async pruneSeqIndex(): Promise<void> {
    const state = await this.source?.consumerState();
    if (!state || !this.spool) return;
    await this.spool.pruneSeqs(state.ackFloor).catch((error: unknown) => {
      this.logger.warn({ err: (error as Error).message }, 'cannot prune the sequence index');
    });
  }

  private async shutdownParts(): Promise<void> {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    await this.source?.close().catch(() => undefined);
    await this.dispatcher?.stop();
    this.detachLedger?.();
    await this.ledger?.close();
    await this.transport?.close().catch(() => undefined);
    await this.spool?.close().catch(() => undefined);
  }
}

function timeAfter(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

const UNBOUND_DETAIL = {
  stream_deleted: 'the stream was deleted; re-creating it',
  stream_replaced: 'the stream was deleted and re-created; binding again',
  consumer_deleted: 'the durable consumer was deleted; re-creating it',
  consumer_replaced: 'the durable consumer was re-created; binding again',
} as const;

function unboundDetail(reason: keyof typeof UNBOUND_DETAIL | undefined): string | undefined {
  return reason === undefined ? undefined : UNBOUND_DETAIL[reason];
}

export class EmitterNotStartedError extends Error {
  readonly code = 'NOT_STARTED';
  constructor() {
    super('the emitter is not started: call start() first');
    this.name = 'EmitterNotStartedError';
  }
}
