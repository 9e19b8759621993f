import { secretsOf, type Config, type NatsConfig } from './config/index.js';
import type { DeliveryQueue, DeliveryQueueOptions } from './delivery/queue.js';
import { maxConcurrencyOf } from './delivery/gate.js';
import type { HttpTransport, HttpTransportOptions } from './delivery/http-transport.js';
import type { Ingress, IngressOptions } from './ingress/ingress.js';
import type { Redelivery } from './ingress/redelivery.js';
import type { Intake, IntakeOptions } from './intake/intake.js';
import type { EmitterEvents } from './observe/events.js';
import type { Inspection, InspectionObserver } from './observe/inspect/index.js';
import { spoolSummary } from './observe/log-summary.js';
import { attachLedger, openLedger, type Ledger } from './observe/ledger/index.js';
import { destinationKey, Spool, SpoolDestinationError } from './spool/spool.js';
import type { Logger } from './util/logger.js';
import { Redactor } from './util/redact.js';
import { VERSION } from './util/version.js';

/**
 * The stages of the chain as the emitter holds them, and how the configuration becomes each
 * stage's own options (plain mappings, so that the wiring root reads as the chain). Nothing here
 * starts a stage or decides anything about a message or a batch.
 */

/** The stages opened so far, in chain order (a failed start closes exactly these). */
export interface OpenStages {
  spool?: Spool;
  transport?: HttpTransport;
  /** the batch ledger beside the chain, fed by its events */
  ledger?: { ledger: Ledger; detach(): void };
  delivery?: DeliveryQueue;
  intake?: Intake;
  ingress?: Ingress;
  /** the stream of statechart inspection events, when TRANSMITTER_INSPECT is set */
  inspection?: Inspection;
}

/** A stage the caller needs open; EmitterNotStartedError before start() has opened it. */
export function opened<T>(stage: T | undefined): T {
  if (!stage) throw new EmitterNotStartedError();
  return stage;
}

export class EmitterNotStartedError extends Error {
  readonly code = 'NOT_STARTED';
  constructor() {
    super('the emitter is not started: call start() first');
    this.name = 'EmitterNotStartedError';
  }
}

/** What every stage after the spool is built with. */
export interface StageContext {
  config: Config;
  logger: Logger;
  events: EmitterEvents;
  spool: Spool;
  /** the actors' inspection observer, when TRANSMITTER_INSPECT is set */
  inspect?: InspectionObserver;
}

/** The spool, opened; `onReopened` is told after each successful reopen of its store. */
export async function openSpool(config: Config, logger: Logger, onReopened: () => void): Promise<Spool> {
  const spool = await Spool.open(config.spool.dir, { logger, onReopened });
  logger.info({ dir: config.spool.dir, ...spoolSummary(spool.status()) }, 'spool open');
  return spool;
}

/**
 * The Stately inspector link (TRANSMITTER_INSPECT), or none; it connects in the background. Its
 * modules load only when it is configured: an emitter without it never pays for them.
 */
export async function openStatechartInspection(
  config: Config,
  logger: Logger,
): Promise<Inspection | undefined> {
  if (config.inspectUrl === undefined) return undefined;
  const { openInspection } = await import('./observe/inspect/index.js');
  logger.info(
    { inspector: new URL(config.inspectUrl).origin },
    'streaming the statecharts to a Stately inspector',
  );
  return openInspection(config.inspectUrl, logger, secretsOf(config));
}

/**
 * The spool holds batches accepted for one destination: bind a new spool (or one an older version
 * wrote, which recorded none) to the configured destination; refuse another destination while the
 * spool holds anything (SpoolDestinationError). An empty spool follows the configuration.
 */
export async function bindDestination(spool: Spool, config: Config, logger: Logger): Promise<void> {
  const configured = destinationKey(config.destination.url);
  const recorded = await spool.destination.recorded();
  if (recorded === configured) return;
  const { batches, deadLetters, quarantined } = spool.status();
  const holds = { batches, deadLetters, quarantined };
  const empty = batches + deadLetters + quarantined === 0;
  if (recorded !== undefined && !empty) throw new SpoolDestinationError(spool.dir, recorded, configured);
  await spool.destination.record(configured);
  const where = { dir: spool.dir, destination: configured };
  if (recorded !== undefined) {
    logger.warn({ ...where, previous: recorded }, 'spool was empty: bound to the configured destination');
  } else if (!empty) {
    logger.warn(
      { ...where, ...holds },
      'spool recorded no destination (written by an older version): adopted the configured one, ' +
        'where its batches go',
    );
  } else {
    logger.info(where, 'spool bound to its destination');
  }
}

export function transportOptions(config: Config): HttpTransportOptions {
  const d = config.destination;
  return {
    url: d.url,
    authToken: d.authToken,
    clientCertPath: d.clientCertPath,
    clientKeyPath: d.clientKeyPath,
    caCertPath: d.caCertPath,
    allowInsecureHttp: d.allowInsecureHttp,
    headers: d.headers,
    connectTimeoutMs: Math.min(10_000, d.requestTimeoutMs),
    requestTimeoutMs: d.requestTimeoutMs,
    connections: maxConcurrencyOf(d.concurrency),
    userAgent: `batch-emitter/${VERSION}`,
  };
}

export function deliveryOptions(
  { config, logger, events, spool, inspect }: StageContext,
  transport: HttpTransport,
  onSpoolShrunk: () => void,
): DeliveryQueueOptions {
  return {
    spool,
    transport,
    logger,
    events,
    policy: { ...config.retry, jitter: 0.2 },
    circuit: config.circuit,
    concurrency: config.destination.concurrency,
    compression: config.destination.compression,
    gzipLevel: config.destination.gzipLevel,
    bodyFormat: config.destination.bodyFormat,
    redactor: new Redactor(secretsOf(config)),
    inspect,
    onSpoolShrunk,
  };
}

export function intakeOptions(
  { config, logger, events, spool, inspect }: StageContext,
  seqTracker: Redelivery,
  delivery: DeliveryQueue,
): IntakeOptions {
  return {
    spool,
    logger,
    events,
    probeId: config.probeId,
    runId: config.runId,
    maxItems: config.batch.maxItems,
    maxBytes: config.batch.maxBytes,
    intervalMs: config.batch.intervalMs,
    compression: config.destination.compression,
    gzipLevel: config.destination.gzipLevel,
    spoolMaxBytes: config.spool.maxBytes,
    onWriting: (id) => delivery.expectHandOver(id),
    onWriteGivenUp: (id) => delivery.handOverGivenUp(id),
    onDurable: (state, { body, written }) =>
      delivery.handOver({ state, body, generation: written.generation }),
    seqTracker,
    inspect,
  };
}

export function ingressOptions(
  { config, logger, events, spool }: StageContext,
  nats: NatsConfig,
  intake: IngressOptions['intake'],
  redelivery: Redelivery,
): IngressOptions {
  const { maxItems: batchSize, intervalMs } = config.batch;
  return { nats, batchSize, intervalMs, intake, redelivery, spool, events, logger };
}

/** The batch ledger (LevelDB beside the spool, or PostgreSQL), attached; none when it cannot open. */
export async function openBatchLedger({
  config,
  logger,
  events,
}: StageContext): Promise<OpenStages['ledger']> {
  const ledger = await openLedger({
    databaseUrl: config.databaseUrl,
    spoolDir: config.spool.dir,
    logger,
  }).catch((error: unknown) => {
    logger.error({ err: (error as Error).message }, 'ledger unavailable; continuing without it');
    return undefined;
  });
  return ledger && { ledger, detach: attachLedger(events, ledger, config.destination.url) };
}
