import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  StorageType,
  type ClusterInfo,
  type ConsumerConfig,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import type { NatsConfig } from '../config/index.js';
import type { Logger } from '../util/logger.js';
import { isExactSequence } from '../model.js';

/**
 * The stream and the durable consumer on the server: found, created when missing, their settings
 * and their settling. Never consumes a message, and never changes an existing stream.
 */

export class SourceError extends Error {
  constructor(
    readonly code: 'NATS_CONNECT' | 'STREAM_CONFLICT' | 'STREAM_CREATE' | 'CONSUMER_CONFLICT',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SourceError';
  }
}

/** Why a consumer session was ended by the source itself. */
export type UnboundReason = 'stream_deleted' | 'stream_replaced' | 'consumer_deleted' | 'consumer_replaced';

/** What the source remembers of its stream and consumer across bindings. */
export class Remembered {
  /**
   * The stream's name and creation time: stream sequences are only comparable within one
   * incarnation of a stream (a deleted and re-created stream starts again at 1).
   */
  incarnation = '';
  /** the bound consumer's creation time: a consumer re-created under the same name differs */
  consumerCreated = '';
  /** why the consumer is not bound, while the source knows */
  unbound?: UnboundReason;
  /** set once a consumer was bound: a stream or consumer missing after that was deleted */
  everBound = false;
  /**
   * The bound consumer's ack floor last seen, with the stream incarnation it belongs to: a durable
   * deleted under us is re-created after it, so the stream is not sent again from its start.
   */
  lastAckFloor?: { incarnation: string; seq: number };
  /** what was said about the current outage (a re-creation that fails is tried again every second) */
  private readonly said = new Set<string>();

  sayOnce(what: string): boolean {
    if (this.said.has(what)) return false;
    this.said.add(what);
    return true;
  }

  forgetSaid(): void {
    this.said.clear();
  }
}

export function isApiError(error: unknown, code: number): boolean {
  return error instanceof JetStreamApiError && error.code === code;
}

/** ack_wait must outlast the time a message can sit in the open batch plus the spool write. */
export function consumerSettings(
  batchSize: number,
  intervalMs: number,
  ackWaitMs?: number,
): { ackWaitMs: number; maxAckPending: number } {
  return {
    ackWaitMs: ackWaitMs ?? Math.max(60_000, 2 * intervalMs + 60_000),
    // the open batch plus the batches being written (Intake's MAX_PENDING_SEALS) may hold unacked messages
    // measured: 8 batches in flight gave 1.37x the throughput of 5 (npm run bench)
    maxAckPending: Math.max(8 * batchSize, 1000),
  };
}

/** How long start-up waits for a new consumer's RAFT group to settle. */
const CONSUMER_SETTLE_MS = 10_000;

/** A single server reports no cluster; a cluster's group needs a leader and a current quorum. */
export function consumerSettled(cluster: ClusterInfo | undefined): boolean {
  if (!cluster) return true;
  if (!cluster.leader) return false;
  // a quorum, not every follower: with a node down its replica is never current
  const replicas = cluster.replicas ?? [];
  const current = 1 + replicas.filter((r) => r.current).length;
  return current > (replicas.length + 1) / 2;
}

/**
 * The stream and the durable consumer as start-up makes them: found, or created when missing.
 * Returns which of them this call created.
 */
export async function ensureResources(
  nc: NatsConnection,
  config: NatsConfig,
  settings: { ackWaitMs: number; maxAckPending: number },
  logger: Logger,
  memory: Remembered,
): Promise<{ stream: boolean; consumer: boolean }> {
  const jsm = await jetstreamManager(nc);
  const stream = await ensureStream(jsm, config, logger, memory);
  const consumer = await ensureConsumer(jsm, config, settings, logger, memory, stream);
  await untilConsumerLed(nc, config, logger);
  return { stream, consumer };
}

async function ensureStream(
  jsm: JetStreamManager,
  config: NatsConfig,
  logger: Logger,
  memory: Remembered,
): Promise<boolean> {
  const { stream, subjects, durable } = config;
  try {
    const info = await jsm.streams.info(stream);
    memory.incarnation = `${stream}@${info.created}`;
    const existing = info.config.subjects ?? [];
    const missing = subjects.filter((s) => !existing.includes(s));
    if (missing.length > 0) {
      throw new SourceError(
        'STREAM_CONFLICT',
        `stream ${stream} exists with subjects [${existing.join(', ')}] but TRANSMITTER_NATS_SUBJECTS asks for [${subjects.join(', ')}]; ` +
          'not changing an existing stream: fix the variable or the stream',
      );
    }
    return false;
  } catch (error) {
    if (!isApiError(error, JetStreamApiCodes.StreamNotFound)) throw error;
    memory.unbound = 'stream_deleted';
    if (memory.everBound && memory.sayOnce('stream_deleted')) {
      logger.warn(
        { stream, durable },
        `stream ${stream} was deleted; re-creating it and durable consumer ${durable}`,
      );
    }
    try {
      const created = await jsm.streams.add({ name: stream, subjects, storage: StorageType.File });
      memory.incarnation = `${stream}@${created.created}`;
      logger.info({ stream, subjects }, 'created JetStream stream');
      return true;
    } catch (cause) {
      throw new SourceError('STREAM_CREATE', `cannot create stream ${stream}: ${(cause as Error).message}`, {
        cause,
      });
    }
  }
}

/** `streamCreated`: the stream was just created, so of course it has no consumer yet. */
async function ensureConsumer(
  jsm: JetStreamManager,
  config: NatsConfig,
  settings: { ackWaitMs: number; maxAckPending: number },
  logger: Logger,
  memory: Remembered,
  streamCreated: boolean,
): Promise<boolean> {
  const { stream, durable } = config;
  const { ackWaitMs, maxAckPending } = settings;
  try {
    const info = await jsm.consumers.info(stream, durable);
    if (info.config.ack_policy !== AckPolicy.Explicit) {
      throw new SourceError(
        'CONSUMER_CONFLICT',
        `consumer ${durable} on ${stream} has ack_policy ${info.config.ack_policy}; batch-emitter needs explicit acks`,
      );
    }
    memory.consumerCreated = info.created;
    if (info.config.ack_wait !== nanos(ackWaitMs) || (info.config.max_ack_pending ?? 0) < maxAckPending) {
      await jsm.consumers.update(stream, durable, {
        ack_wait: nanos(ackWaitMs),
        max_ack_pending: maxAckPending,
      });
    }
    return false;
  } catch (error) {
    if (!isApiError(error, JetStreamApiCodes.ConsumerNotFound)) throw error;
    // everything up to the old consumer's ack floor is spooled (here or by a peer): start after it
    const floor = memory.lastAckFloor;
    // beyond 2^53 the next sequence cannot be named exactly: from the start, duplicates but no gap
    const resumeAt =
      floor?.incarnation === memory.incarnation && floor.seq > 0 && isExactSequence(floor.seq + 1)
        ? floor.seq + 1
        : undefined;
    if (!streamCreated) memory.unbound = 'consumer_deleted';
    if (memory.everBound && !streamCreated && memory.sayOnce('consumer_deleted')) {
      logger.warn(
        { stream, durable, fromSeq: resumeAt ?? 1 },
        `durable consumer ${durable} on stream ${stream} was deleted; re-creating`,
      );
    }
    const wanted: Partial<ConsumerConfig> = {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      ...(resumeAt === undefined
        ? { deliver_policy: DeliverPolicy.All }
        : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: resumeAt }),
      ack_wait: nanos(ackWaitMs),
      max_ack_pending: maxAckPending,
    };
    const info = await jsm.consumers.add(stream, wanted);
    memory.consumerCreated = info.created;
    logger.info({ stream, durable, ackWaitMs, maxAckPending }, 'created durable consumer');
    return true;
  }
}

/**
 * On a cluster a new consumer answers `info` before its RAFT group has a leader and current
 * replicas; pulls sent in that moment go unanswered, and the client only pulls again once two
 * idle heartbeats are missed. So wait for the group (bounded: a consumer that never settles is
 * consumed anyway, and PULL_EXPIRES_MS bounds any stall).
 */
async function untilConsumerLed(nc: NatsConnection, config: NatsConfig, logger: Logger): Promise<void> {
  const { stream, durable } = config;
  const deadline = Date.now() + CONSUMER_SETTLE_MS;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      // a leaderless group answers "cluster not available" or not at all: not settled yet
      const jsm = await jetstreamManager(nc, { timeout: 2000, checkAPI: false });
      const { cluster } = await jsm.consumers.info(stream, durable);
      if (consumerSettled(cluster)) return;
      last = `leader ${cluster?.leader || 'none'}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  logger.warn(
    { stream, durable, last },
    `consumer has no leader with a current quorum after ${CONSUMER_SETTLE_MS / 1000} s; consuming anyway`,
  );
}
