import { secretsOf, type Config } from './config/index.js';
import { DeliveryQueue } from './delivery/queue.js';
import { checkTransportOptions, createHttpTransport } from './delivery/http-transport.js';
import { Ingress } from './ingress/ingress.js';
import { checkNatsFiles } from './ingress/nats-files.js';
import { Redelivery } from './ingress/redelivery.js';
import { Intake, IntakeClosedError, type PauseReason } from './intake/intake.js';
import { InProcessInput } from './intake/in-process.js';
import { EmitterStatusView, type EmitterStatus } from './observe/emitter-status.js';
import { EmitterEvents } from './observe/events.js';
import { closeSummary } from './observe/log-summary.js';
import type { Ledger } from './observe/ledger/index.js';
import type { StatusSource } from './observe/status.js';
import { closeStages, delivered, shutdownStages, type Abandoned } from './shutdown.js';
import type { DeadLetter } from './spool/spool.js';
import * as stage from './stages.js';
import { deferred } from './util/deferred.js';
import { createLogger, type Logger } from './util/logger.js';

export { EmitterNotStartedError } from './stages.js';

/**
 * The emitter, the wiring root: builds the chain spool (replay) -> transport -> delivery ->
 * intake -> JetStream ingress, runs the lifecycle (start, add*, flush, wait, close) and shows one
 * status view of it. It never handles a message or a batch itself; close takes the chain down in
 * reverse (src/shutdown.ts).
 */

export interface EmitterOptions {
  logger?: Logger;
}

export class Emitter {
  readonly logger: Logger;
  /** typed events of everything that happens inside (metrics, ledger and views subscribe) */
  readonly events = new EmitterEvents();
  private readonly stages: stage.OpenStages = {};
  private readonly status: EmitterStatusView;
  private readonly inProcess = new InProcessInput(() => this.openIntake(), this.events);
  private starting?: Promise<void>;
  private closing?: Promise<void>;
  private readonly hurried = deferred();
  private abandoned?: Abandoned;

  constructor(
    readonly config: Config,
    options: EmitterOptions = {},
  ) {
    this.logger = options.logger ?? createLogger(config.logLevel, undefined, secretsOf(config));
    this.status = new EmitterStatusView(this.stages, this.events, config, () => this.closing !== undefined);
  }

  /** Open the spool, replay it, connect, and start consuming. Idempotent. */
  start(): Promise<void> {
    if (this.closing) return Promise.reject(new IntakeClosedError());
    return (this.starting ??= this.open().catch(async (error: unknown) => {
      await closeStages(this.stages);
      this.starting = undefined; // a failed start may be retried
      throw error;
    }));
  }

  /**
   * What the configuration alone can refuse (the destination URL, its TLS files, the headers, the
   * NATS credentials and CA files), refused before anything is opened. Throws TransportConfigError
   * or ConfigError. start() runs it first.
   */
  checkConfig(): void {
    checkTransportOptions(stage.transportOptions(this.config));
    if (this.config.nats) checkNatsFiles(this.config.nats);
  }

  private async open(): Promise<void> {
    const { config, logger, events, stages: s } = this;
    this.checkConfig();
    const spool = (s.spool = await stage.openSpool(config, logger, () => s.delivery?.rescan()));
    await stage.bindDestination(spool, config, logger);
    s.inspection = await stage.openStatechartInspection(config, logger);
    const ctx = { config, logger, events, spool, inspect: s.inspection?.inspect };
    const transport = (s.transport = createHttpTransport(stage.transportOptions(config)));
    s.ledger = await stage.openBatchLedger(ctx);
    const recheckIntake = () => s.intake?.recheck();
    const delivery = (s.delivery = new DeliveryQueue(stage.deliveryOptions(ctx, transport, recheckIntake)));
    const redelivery = new Redelivery(spool);
    const intake = (s.intake = new Intake(stage.intakeOptions(ctx, redelivery, delivery)));
    delivery.start();
    if (!config.nats) return;
    s.ingress = await Ingress.connect(stage.ingressOptions(ctx, config.nats, intake, redelivery));
    await s.ingress.start();
  }

  /** Resolves when the edge's batch is durable in the spool. Rejects InvalidItemError on bad input. */
  addEdge(edge: unknown): Promise<void> {
    return this.inProcess.edge(edge);
  }

  /** A NodeDomain, NodeIP or NodeCert, told apart by shape. */
  addNode(node: unknown): Promise<void> {
    return this.inProcess.node(node);
  }

  /**
   * A generic event under `subject`. With `text`, the JSON text `data` was parsed from, the batch
   * carries that text as it is instead of serialising `data` again (a pino transport has both).
   */
  add(subject: string, data: unknown, text?: string): Promise<void> {
    return this.inProcess.event(subject, data, text);
  }

  /**
   * undefined while adds are taken at once; while intake is paused (seals pending, spool full or
   * failing), a promise that resolves when they are taken again. A producer that awaits it before
   * each add holds at most the open batch and the batches being sealed in memory, not a queue of
   * waiting adds.
   */
  whenAccepting(): Promise<void> | undefined {
    return this.openIntake().whenAccepting();
  }

  /**
   * Why intake is paused ('seals_pending' passes within moments; 'spool_full', 'spool_write_failing'
   * and 'spool_replaced' last until the spool recovers), or undefined while it takes adds.
   */
  pauseReason(): PauseReason | undefined {
    return this.openIntake().status().paused;
  }

  private openIntake(): Intake {
    if (this.closing) throw new IntakeClosedError();
    return stage.opened(this.stages.intake);
  }

  /** Seal the open batch now; resolves when it (and every earlier one) is durable. */
  async flush(): Promise<void> {
    await this.openIntake().flush();
  }

  /** Resolves when every batch sealed so far is delivered, parked or dead-lettered. */
  wait(): Promise<void> {
    return delivered(this.stages);
  }

  /** What /ready, /api/v1/stats and /metrics read: the stages' own status, in one view. */
  statusSnapshot(): EmitterStatus {
    return this.status.snapshot();
  }

  /** The counters with the figures a host checks most (from `statusSnapshot()`). */
  get stats() {
    return this.status.stats();
  }

  statusSource(): StatusSource {
    return this.status.source();
  }

  /** Dead letters (rejected messages and permanently refused batches), oldest first. */
  deadLetters(limit?: number): Promise<DeadLetter[]> {
    return stage.opened(this.stages.spool).deadLetters.list(limit);
  }

  get batchLedger(): Ledger | undefined {
    return this.stages.ledger?.ledger;
  }

  /** Stop intake, seal, wait (bounded), then close NATS and the spool. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  /** Make close() stop waiting for deliveries now (a second SIGTERM); batches stay in the spool. */
  hurry(): void {
    this.hurried.resolve();
  }

  /**
   * False after a close that could not make all it had accepted durable (the spool kept failing until
   * the shutdown timeout; they stay unacked in the stream), or once the spool dir was deleted or replaced.
   */
  get closedDurably(): boolean {
    return this.abandoned === undefined && this.stages.spool?.handle.replaced === undefined;
  }

  private async shutdown(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const { config, logger, hurried } = this;
    const how = { timeoutMs: config.shutdownTimeoutMs, hurried: hurried.promise, logger };
    this.abandoned = await shutdownStages(this.stages, how);
    logger.info(closeSummary(this.events.counters, this.statusSnapshot()), 'closed');
  }
}
