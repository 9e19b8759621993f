import { readFile } from 'node:fs/promises';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  StorageType,
  type ClusterInfo,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { connect, credsAuthenticator, nanos, type NatsConnection } from '@nats-io/transport-node';
import type { NatsConfig } from '../config.js';
import type { Acknowledgeable } from '../intake.js';
import { deliveryOf, type Delivery } from './delivery.js';
import type { Logger } from '../logger.js';

/**
 * The JetStream source: ensures the stream and the durable pull consumer (explicit ack), then
 * feeds every message to a handler through the async iterator. The handler's promise is awaited
 * before the next message: that is how backpressure stops pulling (messages wait in the stream).
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

export interface SourceOptions {
  batchSize: number;
  intervalMs: number;
  /** overrides the derived ack_wait (TRANSMITTER_NATS_ACK_WAIT_S) */
  ackWaitMs?: number;
  logger: Logger;
}

export type MessageHandler = (msg: JsMsg, delivery: Delivery) => void | Promise<void>;

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

function isApiError(error: unknown, code: number): boolean {
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
/**
 * A pull request lives this long (the client's default is 30 s); heartbeats come at half of it,
 * and two missed ones make the client pull again, so a pull lost (e.g. to a leader change on a
 * cluster) stalls this instance about this long, not a minute.
 */
const PULL_EXPIRES_MS = 5_000;

/** A single server reports no cluster; a cluster's group needs a leader and a current quorum. */
export function consumerSettled(cluster: ClusterInfo | undefined): boolean {
  if (!cluster) return true;
  if (!cluster.leader) return false;
  // a quorum, not every follower: with a node down its replica is never current
  const replicas = cluster.replicas ?? [];
  const current = 1 + replicas.filter((r) => r.current).length;
  return current > (replicas.length + 1) / 2;
}

export class JetStreamSource {
  private messages?: ConsumerMessages;
  private running?: Promise<void>;
  private stopped = false;
  private consumerBound = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly config: NatsConfig,
    private readonly options: SourceOptions,
  ) {}

  static async connect(config: NatsConfig, options: SourceOptions): Promise<JetStreamSource> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: config.servers,
        name: 'batch-emitter',
        user: config.user,
        pass: config.password,
        token: config.token,
        authenticator: config.credsFile ? credsAuthenticator(await readFile(config.credsFile)) : undefined,
        tls: config.tlsCaFile ? { caFile: config.tlsCaFile } : undefined,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
      });
    } catch (error) {
      throw new SourceError(
        'NATS_CONNECT',
        `cannot connect to NATS at ${config.servers.join(',')}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    const source = new JetStreamSource(nc, config, options);
    try {
      await source.ensure();
    } catch (error) {
      await nc.close().catch(() => undefined);
      throw error;
    }
    return source;
  }

  get connected(): boolean {
    return !this.nc.isClosed() && !this.reconnecting;
  }

  get bound(): boolean {
    return this.consumerBound;
  }

  private reconnecting = false;
  /**
   * The stream's name and creation time: stream sequences are only comparable within one
   * incarnation of a stream (a deleted and re-created stream starts again at 1).
   */
  incarnation = '';

  private async ensure(): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    await this.ensureStream(jsm);
    await this.ensureConsumer(jsm);
    await this.untilConsumerLed();
    void this.watchStatus();
  }

  private async ensureStream(jsm: JetStreamManager): Promise<void> {
    const { stream, subjects } = this.config;
    try {
      const info = await jsm.streams.info(stream);
      this.incarnation = `${stream}@${info.created}`;
      const existing = info.config.subjects ?? [];
      const missing = subjects.filter((s) => !existing.includes(s));
      if (missing.length > 0) {
        throw new SourceError(
          'STREAM_CONFLICT',
          `stream ${stream} exists with subjects [${existing.join(', ')}] but TRANSMITTER_NATS_SUBJECTS asks for [${subjects.join(', ')}]; ` +
            'not changing an existing stream: fix the variable or the stream',
        );
      }
    } catch (error) {
      if (!isApiError(error, JetStreamApiCodes.StreamNotFound)) throw error;
      try {
        const created = await jsm.streams.add({ name: stream, subjects, storage: StorageType.File });
        this.incarnation = `${stream}@${created.created}`;
        this.options.logger.info({ stream, subjects }, 'created JetStream stream');
      } catch (cause) {
        throw new SourceError(
          'STREAM_CREATE',
          `cannot create stream ${stream}: ${(cause as Error).message}`,
          { cause },
        );
      }
    }
  }

  private async ensureConsumer(jsm: JetStreamManager): Promise<void> {
    const { stream, durable } = this.config;
    const { ackWaitMs, maxAckPending } = consumerSettings(
      this.options.batchSize,
      this.options.intervalMs,
      this.options.ackWaitMs,
    );
    try {
      const info = await jsm.consumers.info(stream, durable);
      if (info.config.ack_policy !== AckPolicy.Explicit) {
        throw new SourceError(
          'CONSUMER_CONFLICT',
          `consumer ${durable} on ${stream} has ack_policy ${info.config.ack_policy}; batch-emitter needs explicit acks`,
        );
      }
      if (info.config.ack_wait !== nanos(ackWaitMs) || (info.config.max_ack_pending ?? 0) < maxAckPending) {
        await jsm.consumers.update(stream, durable, {
          ack_wait: nanos(ackWaitMs),
          max_ack_pending: maxAckPending,
        });
      }
    } catch (error) {
      if (!isApiError(error, JetStreamApiCodes.ConsumerNotFound)) throw error;
      const config: Partial<ConsumerConfig> = {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(ackWaitMs),
        max_ack_pending: maxAckPending,
      };
      await jsm.consumers.add(stream, config);
      this.options.logger.info({ stream, durable, ackWaitMs, maxAckPending }, 'created durable consumer');
    }
  }

  /**
   * On a cluster a new consumer answers `info` before its RAFT group has a leader and current
   * replicas; pulls sent in that moment go unanswered, and the client only pulls again once two
   * idle heartbeats are missed. So wait for the group (bounded: a consumer that never settles is
   * consumed anyway, and PULL_EXPIRES_MS bounds any stall).
   */
  private async untilConsumerLed(): Promise<void> {
    const { stream, durable } = this.config;
    const deadline = Date.now() + CONSUMER_SETTLE_MS;
    let last = 'no answer';
    while (Date.now() < deadline) {
      try {
        // a leaderless group answers "cluster not available" or not at all: not settled yet
        const jsm = await jetstreamManager(this.nc, { timeout: 2000, checkAPI: false });
        const { cluster } = await jsm.consumers.info(stream, durable);
        if (consumerSettled(cluster)) return;
        last = `leader ${cluster?.leader || 'none'}`;
      } catch (error) {
        last = (error as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    this.options.logger.warn(
      { stream, durable, last },
      `consumer has no leader with a current quorum after ${CONSUMER_SETTLE_MS / 1000} s; consuming anyway`,
    );
  }

  private async watchStatus(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnecting') this.reconnecting = true;
      if (status.type === 'reconnect') this.reconnecting = false;
      if (status.type === 'disconnect' || status.type === 'reconnect') {
        this.options.logger.warn({ event: status.type }, `NATS ${status.type}`);
      }
    }
  }

  /** The message's acknowledgement, detached from the message. */
  ackFor(msg: JsMsg, delivery: Delivery): Acknowledgeable {
    const { reply, seq, publishedMs } = delivery;
    if (reply !== '') return new JetStreamAck(this.nc, reply, seq, publishedMs);
    return { seq, publishedMs, ack: () => msg.ack() };
  }

  /** Start delivering messages to `handler` until stop(). Re-binds after consumer errors. */
  start(handler: MessageHandler): void {
    this.running ??= this.loop(handler);
  }

  private async loop(handler: MessageHandler): Promise<void> {
    const js = jetstream(this.nc);
    const maxMessages = Math.max(100, Math.min(1000, this.options.batchSize));
    while (!this.stopped) {
      try {
        const consumer = await js.consumers.get(this.config.stream, this.config.durable);
        this.messages = await consumer.consume({ max_messages: maxMessages, expires: PULL_EXPIRES_MS });
        this.consumerBound = true;
        for await (const msg of this.messages) {
          const pending = handler(msg, deliveryOf(msg));
          if (pending) await pending;
          if (this.stopped) break;
        }
      } catch (error) {
        if (this.stopped) break;
        this.options.logger.warn(
          { err: (error as Error).message },
          'JetStream consumer failed; binding again',
        );
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        this.consumerBound = false;
      }
    }
  }

  /** Stop pulling; messages pulled but not handled are redelivered later (never acked). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.messages?.stop();
    await this.running?.catch(() => undefined);
  }

  /** Consumer counters, or undefined while the server cannot be asked. */
  async consumerState(): Promise<{ pending: number; ackPending: number; ackFloor: number } | undefined> {
    try {
      const jsm = await jetstreamManager(this.nc);
      const info = await jsm.consumers.info(this.config.stream, this.config.durable);
      return {
        pending: info.num_pending,
        ackPending: info.num_ack_pending,
        ackFloor: info.ack_floor.stream_seq,
      };
    } catch {
      return undefined;
    }
  }

  /** Close the connection; acks already sent are flushed first. */
  async close(): Promise<void> {
    await this.stop();
    if (!this.nc.isClosed()) {
      await this.nc.flush().catch(() => undefined);
      await this.nc.close().catch(() => undefined);
    }
  }
}
