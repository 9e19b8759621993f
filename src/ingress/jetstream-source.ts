import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import type { NatsConfig } from '../config/index.js';
import type { Acknowledgeable } from '../intake/intake.js';
import { parseAckSubject, type Delivery } from './delivery-facts.js';
import { Binding, BindingWatch } from './binding-watch.js';
import { JetStreamAck, replyQuietly } from './jetstream-ack.js';
import { AckPublisher } from './jetstream-ack-publisher.js';
import { AckGate, lookAtStream } from './ack-gate.js';
import { natsConnectionOptions } from './nats-connect.js';
import { PullSession, type SessionTrouble } from './pull-session.js';
import {
  consumerSettings,
  ensureResources,
  Remembered,
  SourceError,
  type UnboundReason,
} from './jetstream-resources.js';
import type { Logger } from '../util/logger.js';

/**
 * The JetStream source: the connection and the loop of consumer sessions, feeding every message
 * to a handler. The handler's promise is awaited before the next message, and nothing more is
 * pulled meanwhile: that is the backpressure (messages wait in the stream; see PullSession). It
 * never decodes a message or decides when to acknowledge it (the intake does, once durable).
 */

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

/** The consumer session a message came through (the same object for all of a session's messages). */
export interface ConsumerSession {
  readonly session: number;
  readonly incarnation: string;
}

export function originOf(from: ConsumerSession, receipt: number): Origin {
  return { incarnation: from.incarnation, session: from.session, receipt };
}

/**
 * A message, the session it came through and its receipt (see Origin), passed apart: an Origin per
 * message would be one more object for the collector at full speed; it is made where one is needed.
 */
export type MessageHandler = (
  msg: Msg,
  delivery: Delivery,
  from: ConsumerSession,
  receipt: number,
) => void | Promise<void>;
/** Awaited before the first message of every binding: what is keyed by stream sequence follows it. */
export type BindHandler = (incarnation: string) => void | Promise<void>;

/** How a session ends when its consumer or stream is gone (a 409, or the lookup before binding). */
function isMissingResource(error: unknown): boolean {
  const message = (error as Error | undefined)?.message ?? '';
  return /^(consumer deleted|consumer not found|stream not found)$/i.test(message);
}

/**
 * A pull request lives this long (nats.js's default is 30 s); heartbeats come at half of it, and
 * two missed ones make the session pull again, so a pull lost (e.g. to a leader change on a
 * cluster) stalls this instance about this long, not a minute.
 */
const PULL_EXPIRES_MS = 5_000;
/**
 * How much one pull asks for, and how long it waits: within the limits a durable consumer made by
 * hand may have (`max_batch`, `max_expires`), which the server enforces by refusing the whole pull.
 */
export function pullSize(
  batchSize: number,
  limits: { max_batch?: number; max_expires?: number },
): { maxMessages: number; expiresMs: number } {
  let maxMessages = Math.max(100, Math.min(1000, batchSize));
  if (limits.max_batch && limits.max_batch > 0) maxMessages = Math.min(maxMessages, limits.max_batch);
  let expiresMs = PULL_EXPIRES_MS;
  // nanoseconds; nats.js's pulls last at least 1 s
  if (limits.max_expires && limits.max_expires > 0)
    expiresMs = Math.max(1_000, Math.min(expiresMs, Math.floor(limits.max_expires / 1e6)));
  return { maxMessages, expiresMs };
}

/** Before binding again; also gives an operator re-creating a deleted stream the first go at it. */
const REBIND_DELAY_MS = 1_000;

export class JetStreamSource {
  private running?: Promise<void>;
  private stopped = false;
  /** cuts the wait between bindings short on stop() */
  private wake?: () => void;
  /** consumer sessions started so far: Origin.session */
  private sessions = 0;
  private readonly memory = new Remembered();
  private readonly watch: BindingWatch;
  private readonly acks: AckGate;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly config: NatsConfig,
    private readonly options: SourceOptions,
  ) {
    const look = lookAtStream(nc, config.stream);
    this.acks = new AckGate(nc, new AckPublisher(nc), look, options.logger);
    this.watch = new BindingWatch(nc, config, options.logger, this.memory, () => this.connected);
  }

  static async connect(config: NatsConfig, options: SourceOptions): Promise<JetStreamSource> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        ...(await natsConnectionOptions(config, 'batch-emitter')),
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
    return this.watch.bound;
  }

  private reconnecting = false;

  /** The bound stream's name and creation time (see Remembered.incarnation). */
  get incarnation(): string {
    return this.memory.incarnation;
  }

  private async ensure(): Promise<void> {
    await this.ensureResources();
    void this.watchStatus();
  }

  private ensureResources(): Promise<{ stream: boolean; consumer: boolean }> {
    const { batchSize, intervalMs, ackWaitMs, logger } = this.options;
    const settings = consumerSettings(batchSize, intervalMs, ackWaitMs);
    return ensureResources(this.nc, this.config, settings, logger, this.memory);
  }

  /** After a session ended: the stream and consumer again, saying what changed under us. */
  private async rebind(): Promise<void> {
    const { stream, durable } = this.config;
    const before = { incarnation: this.memory.incarnation, consumer: this.memory.consumerCreated };
    const created = await this.ensureResources();
    if (this.memory.incarnation !== before.incarnation && !created.stream) {
      this.options.logger.warn(
        { stream, was: before.incarnation, now: this.memory.incarnation },
        `stream ${stream} was deleted and re-created; its sequences start again, binding to the new stream`,
      );
    } else if (this.memory.consumerCreated !== before.consumer && !created.consumer) {
      this.options.logger.warn(
        { stream, durable },
        `durable consumer ${durable} on stream ${stream} was re-created; binding to it`,
      );
    }
  }

  private async watchStatus(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnecting') this.reconnecting = true;
      if (status.type === 'reconnect') this.reconnecting = false;
      if (status.type === 'disconnect' || status.type === 'reconnect') {
        this.options.logger.warn({ event: status.type }, `NATS ${status.type}`);
      }
      // the stream or the consumer may have been replaced while the connection was down; pulls
      // sent before are gone
      if (status.type === 'reconnect') {
        this.watch.checkSoon();
        this.watch.current?.pulls.reconnected();
      }
    }
  }

  /** The message's acknowledgement, detached from the message. */
  ackFor(delivery: Delivery, incarnation: string): Acknowledgeable {
    const { reply, seq, publishedMs } = delivery;
    return new JetStreamAck(this.acks, reply, seq, publishedMs, incarnation);
  }

  /** Let the message come again now (it is not of the bound stream, or cannot be placed yet). */
  nak(delivery: Delivery): void {
    replyQuietly(this.nc, delivery.reply, '-NAK');
  }

  /** The message is never to come again (it is dead-lettered). */
  term(delivery: Delivery, incarnation: string): void {
    this.acks.term(delivery.reply, incarnation);
  }

  /** Why the consumer is not bound (undefined while bound, or when the reason is a plain error). */
  get unboundReason(): UnboundReason | undefined {
    return this.watch.bound ? undefined : this.memory.unbound;
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
    this.watch.start(this.options.watchMs);
    let ensured = true; // connect() has just ensured the stream and the consumer
    while (!this.stopped) {
      let binding: Binding | undefined;
      try {
        if (!ensured) await this.rebind();
        ensured = false;
        await onBind(this.memory.incarnation);
        if (this.stopped) break;
        binding = await this.bindSession(handler);
        const ended = await binding.pulls.ended;
        if (ended) throw ended;
      } catch (error) {
        if (this.stopped) break;
        // a binding that keeps failing the same way is said once, until a consumer is bound again
        const said = !this.memory.sayOnce(`failed: ${(error as Error).message}`);
        if (!binding?.ended && !isMissingResource(error) && !said) {
          this.options.logger.warn(
            { err: (error as Error).message },
            'JetStream consumer failed; binding again',
          );
        }
        // a 409 "consumer deleted" ends the session before the check says what went
        if (binding && !binding.ended && isMissingResource(error)) this.memory.unbound = 'consumer_deleted';
      } finally {
        if (binding) binding.ended ??= 'failed';
        this.watch.released();
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

  /** Start a session on the consumer as it is now (one re-created since ensureConsumer is another). */
  private async bindSession(handler: MessageHandler): Promise<Binding> {
    const { stream, durable } = this.config;
    const jsm = await jetstreamManager(this.nc);
    const { created, name, config } = await jsm.consumers.info(stream, durable);
    const options = { stream, consumer: name, ...pullSize(this.options.batchSize, config) };
    const pulls: PullSession = new PullSession(this.nc, options, {
      handle: (msg, receipt): void | Promise<void> => {
        const delivery = msg.reply === undefined ? undefined : parseAckSubject(msg.reply);
        if (!delivery) return this.unplaceable(msg);
        // taken from a stream or consumer that is not the bound one any more: let it come again
        if (binding.ended) return this.nak(delivery);
        return handler(msg, delivery, binding, receipt);
      },
      letGo: (msg) => {
        if (msg.reply) replyQuietly(this.nc, msg.reply, '-NAK', PULL_EXPIRES_MS);
      },
      troubled: (trouble, detail) => this.troubled(trouble, detail),
    });
    const binding: Binding = new Binding(++this.sessions, this.memory.incarnation, created, pulls);
    this.watch.bind(binding);
    // a stop() while this session was being set up found no session to stop
    if (this.stopped) pulls.stop();
    else pulls.start();
    this.options.logger.debug(
      { session: binding.session, incarnation: binding.incarnation },
      'consumer session started',
    );
    return binding;
  }

  /** A deleted consumer or missed heartbeats: check the stream and the consumer at once. */
  private troubled(trouble: SessionTrouble, detail?: string): void {
    this.options.logger.debug({ trouble, detail }, 'consumer session trouble');
    if (trouble === 'pull_refused' && this.memory.sayOnce(`pull refused: ${detail}`)) {
      this.options.logger.warn(
        { reason: detail, durable: this.config.durable },
        'nats-server refused a pull request (a limit of the durable consumer, e.g. max_waiting or max_batch, set by hand?); pulling again after missed heartbeats',
      );
    }
    this.watch.checkSoon();
  }

  /**
   * A message whose ack subject does not read as JetStream's: it cannot be acked or placed in the
   * stream. Left alone, it comes again after ack_wait; said once.
   */
  private unplaceable(msg: Msg): void {
    if (!this.memory.sayOnce('unplaceable')) return;
    this.options.logger.error(
      { subject: msg.subject, reply: msg.reply },
      'a JetStream message came with an ack subject this version cannot read; it is left unacknowledged',
    );
  }

  /**
   * Whether the message with this origin is known to be of the bound stream incarnation: only
   * then may its sequence be looked up in the sequence index (see BindingWatch.confirm).
   */
  confirm(origin: Origin): Promise<boolean> {
    return this.watch.confirm(origin);
  }

  /** Stop pulling; messages pulled but not handled are redelivered later (never acked). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.watch.stop();
    await this.running?.catch(() => undefined);
  }

  /** Consumer counters, or undefined while the server cannot be asked. */
  async consumerState(): Promise<{ pending: number; ackPending: number; ackFloor: number } | undefined> {
    try {
      const jsm = await jetstreamManager(this.nc);
      const info = await jsm.consumers.info(this.config.stream, this.config.durable);
      this.watch.noteAckFloor(info);
      return {
        pending: info.num_pending,
        ackPending: info.num_ack_pending,
        ackFloor: info.ack_floor.stream_seq,
      };
    } catch {
      return undefined;
    }
  }

  /** Close the connection; acks asked for are sent (or dropped, see AckGate) and flushed first. */
  async close(): Promise<void> {
    await this.stop();
    if (!this.nc.isClosed()) {
      await this.acks.settled();
      await this.nc.flush().catch(() => undefined);
      await this.nc.close().catch(() => undefined);
    }
  }
}
