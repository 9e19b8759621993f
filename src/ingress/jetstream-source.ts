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
  type ConsumerInfo,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { connect, credsAuthenticator, nanos, type NatsConnection } from '@nats-io/transport-node';
import type { NatsConfig } from '../config/index.js';
import type { Acknowledgeable } from '../intake/intake.js';
import { deliveryOf, type Delivery } from './delivery-facts.js';
import type { Logger } from '../util/logger.js';

/**
 * The JetStream source: ensures the stream and the durable pull consumer (explicit ack), then
 * feeds every message to a handler through the async iterator. The handler's promise is awaited
 * before the next message: that is how backpressure stops pulling (messages wait in the stream).
 * It never decodes a message or decides when to acknowledge it (the intake does, once durable).
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
  /** how often a bound session checks its stream and consumer (WATCH_MS); tests turn it down */
  watchMs?: number;
}

/**
 * Where a message came from: the consumer session that took it, the stream incarnation that
 * session was bound to, and its place in the order the session received messages (see
 * JetStreamSource.confirm).
 */
export interface Origin {
  incarnation: string;
  session: number;
  receipt: number;
}

export type MessageHandler = (msg: JsMsg, delivery: Delivery, origin: Origin) => void | Promise<void>;
/** Awaited before the first message of every binding: what is keyed by stream sequence follows it. */
export type BindHandler = (incarnation: string) => void | Promise<void>;

/** Why a consumer session was ended by the source itself. */
export type UnboundReason = 'stream_deleted' | 'stream_replaced' | 'consumer_deleted' | 'consumer_replaced';

/** One consume() session on one consumer of one stream incarnation. */
class Binding {
  ended?: UnboundReason | 'failed';
  /** every message received up to this one is known to be of the bound incarnation */
  confirmedUpTo = 0;
  /** a check in flight, with the receipts it covers */
  checking?: { covers: number; done: Promise<boolean> };

  constructor(
    readonly session: number,
    readonly incarnation: string,
    readonly consumerCreated: string,
    readonly messages: ConsumerMessages,
  ) {}

  /** messages that reached the session so far (yielded in the same order) */
  get arrived(): number {
    return this.messages.getReceived();
  }
}

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

function isApiError(error: unknown, code: number): boolean {
  return error instanceof JetStreamApiError && error.code === code;
}

/** How consume() ends when its consumer or stream is gone (abort_on_missing_resource). */
function isMissingResource(error: unknown): boolean {
  const message = (error as Error | undefined)?.message ?? '';
  return /^(consumer deleted|consumer not found|stream not found)$/i.test(message);
}

export function nakQuietly(msg: JsMsg): void {
  try {
    msg.nak();
  } catch {
    // a closed connection: the message comes again after ack_wait
  }
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
/**
 * How often a bound session checks that its stream and consumer are still the ones it bound to.
 * nats.js only notices a deleted consumer when a pull is waiting (409) or two heartbeats are
 * missed, and silently pulls from a consumer re-created under the same name.
 */
const WATCH_MS = 1_000;
const CHECK_TIMEOUT_MS = 2_000;
/** Before binding again; also gives an operator re-creating a deleted stream the first go at it. */
const REBIND_DELAY_MS = 1_000;

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
  private binding?: Binding;
  private running?: Promise<void>;
  private stopped = false;
  /** cuts the wait between bindings short on stop() */
  private wake?: () => void;
  private consumerBound = false;
  /** why the consumer is not bound, while the source knows */
  private unbound?: UnboundReason;
  /** consumer sessions started so far: Origin.session */
  private sessions = 0;
  private watchdog?: NodeJS.Timeout;
  /** the bound consumer's creation time: a consumer re-created under the same name differs */
  private consumerCreated = '';
  /** set once a consumer was bound: a stream or consumer missing after that was deleted */
  private everBound = false;
  /**
   * The bound consumer's ack floor last seen, with the stream incarnation it belongs to: a durable
   * deleted under us is re-created after it, so the stream is not sent again from its start.
   */
  private lastAckFloor?: { incarnation: string; seq: number };
  /** what was said about the current outage (a re-creation that fails is tried again every second) */
  private readonly said = new Set<string>();

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
    await this.ensureResources();
    void this.watchStatus();
  }

  /**
   * The stream and the durable consumer as start-up makes them: found, or created when missing.
   * Returns which of them this call created.
   */
  private async ensureResources(): Promise<{ stream: boolean; consumer: boolean }> {
    const jsm = await jetstreamManager(this.nc);
    const stream = await this.ensureStream(jsm);
    const consumer = await this.ensureConsumer(jsm, stream);
    await this.untilConsumerLed();
    return { stream, consumer };
  }

  /** After a session ended: the stream and consumer again, saying what changed under us. */
  private async rebind(): Promise<void> {
    const { stream, durable } = this.config;
    const before = { incarnation: this.incarnation, consumer: this.consumerCreated };
    const created = await this.ensureResources();
    if (this.incarnation !== before.incarnation && !created.stream) {
      this.options.logger.warn(
        { stream, was: before.incarnation, now: this.incarnation },
        `stream ${stream} was deleted and re-created; its sequences start again, binding to the new stream`,
      );
    } else if (this.consumerCreated !== before.consumer && !created.consumer) {
      this.options.logger.warn(
        { stream, durable },
        `durable consumer ${durable} on stream ${stream} was re-created; binding to it`,
      );
    }
  }

  private async ensureStream(jsm: JetStreamManager): Promise<boolean> {
    const { stream, subjects, durable } = this.config;
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
      return false;
    } catch (error) {
      if (!isApiError(error, JetStreamApiCodes.StreamNotFound)) throw error;
      this.unbound = 'stream_deleted';
      if (this.everBound && this.sayOnce('stream_deleted')) {
        this.options.logger.warn(
          { stream, durable },
          `stream ${stream} was deleted; re-creating it and durable consumer ${durable}`,
        );
      }
      try {
        const created = await jsm.streams.add({ name: stream, subjects, storage: StorageType.File });
        this.incarnation = `${stream}@${created.created}`;
        this.options.logger.info({ stream, subjects }, 'created JetStream stream');
        return true;
      } catch (cause) {
        throw new SourceError(
          'STREAM_CREATE',
          `cannot create stream ${stream}: ${(cause as Error).message}`,
          { cause },
        );
      }
    }
  }

  /** `streamCreated`: the stream was just created, so of course it has no consumer yet. */
  private async ensureConsumer(jsm: JetStreamManager, streamCreated: boolean): Promise<boolean> {
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
      this.consumerCreated = info.created;
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
      const floor = this.lastAckFloor;
      const resumeAt = floor?.incarnation === this.incarnation && floor.seq > 0 ? floor.seq + 1 : undefined;
      if (!streamCreated) this.unbound = 'consumer_deleted';
      if (this.everBound && !streamCreated && this.sayOnce('consumer_deleted')) {
        this.options.logger.warn(
          { stream, durable, fromSeq: resumeAt ?? 1 },
          `durable consumer ${durable} on stream ${stream} was deleted; re-creating`,
        );
      }
      const config: Partial<ConsumerConfig> = {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        ...(resumeAt === undefined
          ? { deliver_policy: DeliverPolicy.All }
          : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: resumeAt }),
        ack_wait: nanos(ackWaitMs),
        max_ack_pending: maxAckPending,
      };
      const info = await jsm.consumers.add(stream, config);
      this.consumerCreated = info.created;
      this.options.logger.info({ stream, durable, ackWaitMs, maxAckPending }, 'created durable consumer');
      return true;
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
      // the stream or the consumer may have been replaced while the connection was down
      if (status.type === 'reconnect') this.checkSoon();
    }
  }

  /** The message's acknowledgement, detached from the message. */
  ackFor(msg: JsMsg, delivery: Delivery, origin: Origin): Acknowledgeable {
    const { reply, seq, publishedMs } = delivery;
    if (reply !== '') return new JetStreamAck(this.nc, reply, seq, publishedMs, origin.incarnation);
    return { seq, publishedMs, incarnation: origin.incarnation, ack: () => msg.ack() };
  }

  /** Why the consumer is not bound (undefined while bound, or when the reason is a plain error). */
  get unboundReason(): UnboundReason | undefined {
    return this.consumerBound ? undefined : this.unbound;
  }

  /**
   * Start delivering messages to `handler` until stop(). Re-binds after consumer errors, and when
   * the stream or the consumer was deleted or replaced (re-creating them as at start-up);
   * `onBind` is awaited with the stream's incarnation before each binding's first message.
   */
  start(handler: MessageHandler, onBind: BindHandler = () => undefined): void {
    this.running ??= this.loop(handler, onBind);
  }

  private async loop(handler: MessageHandler, onBind: BindHandler): Promise<void> {
    const js = jetstream(this.nc);
    const maxMessages = Math.max(100, Math.min(1000, this.options.batchSize));
    this.watchdog = setInterval(() => this.checkSoon(), this.options.watchMs ?? WATCH_MS);
    this.watchdog.unref();
    let ensured = true; // connect() has just ensured the stream and the consumer
    while (!this.stopped) {
      let binding: Binding | undefined;
      try {
        if (!ensured) await this.rebind();
        ensured = false;
        await onBind(this.incarnation);
        if (this.stopped) break;
        const consumer = await js.consumers.get(this.config.stream, this.config.durable);
        // bind to what was fetched: a consumer re-created since ensureConsumer is another one
        const { created } = await consumer.info(true);
        const messages = await consumer.consume({
          max_messages: maxMessages,
          expires: PULL_EXPIRES_MS,
          // a deleted consumer ends the session instead of pulling from a namesake later
          abort_on_missing_resource: true,
        });
        binding = new Binding(++this.sessions, this.incarnation, created, messages);
        this.binding = binding;
        this.consumerBound = true;
        this.everBound = true;
        this.said.clear();
        this.unbound = undefined;
        void this.watchConsumer(binding);
        this.options.logger.debug(
          { session: binding.session, incarnation: binding.incarnation },
          'consumer session started',
        );
        for await (const msg of messages) {
          if (binding.ended) {
            // taken from a stream or consumer that is not the bound one any more: let it come again
            nakQuietly(msg);
            continue;
          }
          const pending = handler(msg, deliveryOf(msg), {
            incarnation: binding.incarnation,
            session: binding.session,
            // the iterator yields in arrival order: this is the message's place in it
            receipt: messages.getProcessed(),
          });
          if (pending) await pending;
          if (this.stopped) break;
        }
      } catch (error) {
        if (this.stopped) break;
        // a binding that keeps failing the same way is said once, until a consumer is bound again
        const said = !this.sayOnce(`failed: ${(error as Error).message}`);
        if (!binding?.ended && !isMissingResource(error) && !said) {
          this.options.logger.warn(
            { err: (error as Error).message },
            'JetStream consumer failed; binding again',
          );
        }
        // a 409 "consumer deleted" ends the iterator before the check says what went
        if (binding && !binding.ended && isMissingResource(error)) this.unbound = 'consumer_deleted';
      } finally {
        if (binding) binding.ended ??= 'failed';
        this.consumerBound = false;
      }
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, REBIND_DELAY_MS);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** The session's own notifications: a deleted consumer or missed heartbeats are checked at once. */
  private async watchConsumer(binding: Binding): Promise<void> {
    for await (const note of binding.messages.status()) {
      if (
        note.type === 'consumer_deleted' ||
        note.type === 'consumer_not_found' ||
        note.type === 'stream_not_found' ||
        note.type === 'heartbeats_missed'
      )
        this.checkSoon();
    }
  }

  /**
   * Whether the message with this origin is known to be of the bound stream incarnation: only
   * then may its sequence be looked up in the sequence index. A look at the stream, asked after
   * the message arrived, that still finds the bound incarnation proves it (a replaced stream
   * never gets its creation time back); one look covers every message that arrived before it.
   * Resolves false when that cannot be shown; the session is then ending and the source binds
   * again.
   */
  async confirm(origin: Origin): Promise<boolean> {
    const binding = this.binding;
    if (!binding || binding.ended || binding.session !== origin.session) return false;
    if (origin.receipt <= binding.confirmedUpTo) return true;
    try {
      const inFlight = binding.checking;
      const ok =
        inFlight && inFlight.covers >= origin.receipt
          ? await inFlight.done
          : await this.checkBinding(binding, false);
      return ok && origin.receipt <= binding.confirmedUpTo;
    } catch {
      return false;
    }
  }

  private checkSoon(): void {
    const binding = this.binding;
    if (!binding || binding.ended || this.reconnecting || this.nc.isClosed()) return;
    void this.checkBinding(binding, true).catch(() => undefined);
  }

  /**
   * Ask the server whether the bound stream (and, with `consumerToo`, the consumer) is still the
   * one bound to; ends the session when not. Resolves true when the stream is.
   */
  private checkBinding(binding: Binding, consumerToo: boolean): Promise<boolean> {
    const covers = binding.arrived;
    const done = this.askBinding(binding, covers, consumerToo).finally(() => {
      if (binding.checking?.done === done) binding.checking = undefined;
    });
    binding.checking = { covers, done };
    return done;
  }

  private async askBinding(binding: Binding, covers: number, consumerToo: boolean): Promise<boolean> {
    const { stream, durable } = this.config;
    const jsm = await jetstreamManager(this.nc, { timeout: CHECK_TIMEOUT_MS, checkAPI: false });
    const [streamInfo, consumerInfo] = await Promise.all([
      jsm.streams.info(stream).catch((error: unknown) => {
        if (isApiError(error, JetStreamApiCodes.StreamNotFound)) return undefined;
        throw error;
      }),
      consumerToo
        ? jsm.consumers.info(stream, durable).catch((error: unknown) => {
            if (isApiError(error, JetStreamApiCodes.ConsumerNotFound)) return undefined;
            if (isApiError(error, JetStreamApiCodes.StreamNotFound)) return undefined;
            throw error;
          })
        : undefined,
    ]);
    if (binding.ended) return false;
    if (!streamInfo) return this.end(binding, 'stream_deleted');
    if (`${stream}@${streamInfo.created}` !== binding.incarnation)
      return this.end(binding, 'stream_replaced');
    if (covers > binding.confirmedUpTo) binding.confirmedUpTo = covers;
    if (consumerInfo) this.noteAckFloor(consumerInfo);
    // the stream is the bound one: messages already taken are of it, whatever became of the consumer
    if (consumerToo && !consumerInfo) this.end(binding, 'consumer_deleted');
    else if (consumerInfo && consumerInfo.created !== binding.consumerCreated)
      this.end(binding, 'consumer_replaced');
    return true;
  }

  /** Keep the ack floor of the bound consumer (not of a namesake that replaced it). */
  private noteAckFloor(info: ConsumerInfo): void {
    const binding = this.binding;
    if (!binding || binding.ended || info.created !== binding.consumerCreated) return;
    const seq = info.ack_floor.stream_seq;
    const last = this.lastAckFloor;
    if (last?.incarnation === binding.incarnation && last.seq >= seq) return;
    this.lastAckFloor = { incarnation: binding.incarnation, seq };
  }

  private sayOnce(what: string): boolean {
    if (this.said.has(what)) return false;
    this.said.add(what);
    return true;
  }

  /** End a session whose stream or consumer is gone or another one; the loop binds again. */
  private end(binding: Binding, reason: UnboundReason): false {
    if (binding.ended) return false;
    binding.ended = reason;
    this.unbound = reason;
    this.consumerBound = false;
    this.options.logger.debug({ reason }, 'JetStream consumer session ended');
    binding.messages.stop();
    return false;
  }

  /** Stop pulling; messages pulled but not handled are redelivered later (never acked). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    if (this.watchdog) clearInterval(this.watchdog);
    this.binding?.messages.stop();
    await this.running?.catch(() => undefined);
  }

  /** Consumer counters, or undefined while the server cannot be asked. */
  async consumerState(): Promise<{ pending: number; ackPending: number; ackFloor: number } | undefined> {
    try {
      const jsm = await jetstreamManager(this.nc);
      const info = await jsm.consumers.info(this.config.stream, this.config.durable);
      this.noteAckFloor(info);
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
