import { JetStreamApiCodes, jetstreamManager, type ConsumerInfo } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { NatsConfig } from '../config/index.js';
import { isApiError, type Remembered, type UnboundReason } from './jetstream-resources.js';
import type { PullSession } from './pull-session.js';
import type { Logger } from '../util/logger.js';

/**
 * Watching the bound consumer session: whether its stream and consumer are still the ones it bound
 * to, ending the session when not. Never creates a stream or consumer and never takes a message.
 */

/** One pull session on one consumer of one stream incarnation. */
export class Binding {
  ended?: UnboundReason | 'failed';
  /** every message received up to this one is known to be of the bound incarnation */
  confirmedUpTo = 0;
  /** a check in flight, with the receipts it covers */
  checking?: { covers: number; done: Promise<boolean> };

  constructor(
    readonly session: number,
    readonly incarnation: string,
    readonly consumerCreated: string,
    readonly pulls: PullSession,
  ) {}

  /** messages that reached the session so far (handed over in the same order) */
  get arrived(): number {
    return this.pulls.received;
  }
}

/**
 * How often a bound session checks that its stream and consumer are still the ones it bound to.
 * nats.js only notices a deleted consumer when a pull is waiting (409) or two heartbeats are
 * missed, and silently pulls from a consumer re-created under the same name.
 */
const WATCH_MS = 1_000;
const CHECK_TIMEOUT_MS = 2_000;

/** The bound session, the 1 s watchdog over it, and the checks that end it. */
export class BindingWatch {
  private bindingNow?: Binding;
  /** a consumer session is bound and not ended (set here only; the source reads it) */
  bound = false;
  private watchdog?: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly config: NatsConfig,
    private readonly logger: Logger,
    private readonly memory: Remembered,
    private readonly connected: () => boolean,
  ) {}

  /** Check the bound session every `watchMs` from now on. */
  start(watchMs = WATCH_MS): void {
    this.watchdog = setInterval(() => this.checkSoon(), watchMs);
    this.watchdog.unref();
  }

  /** The session bound last (ended or not). */
  get current(): Binding | undefined {
    return this.bindingNow;
  }

  /** A new session is bound: what was said and why it was unbound is over. */
  bind(binding: Binding): void {
    this.bindingNow = binding;
    this.bound = true;
    this.memory.everBound = true;
    this.memory.forgetSaid();
    this.memory.unbound = undefined;
  }

  /** The session's loop is over (stopped, failed or ended). */
  released(): void {
    this.bound = false;
  }

  /** No more checks; the bound session stops pulling. */
  stop(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.bindingNow?.pulls.stop();
  }

  /**
   * Whether the message with this origin is known to be of the bound stream incarnation: only
   * then may its sequence be looked up in the sequence index. A look at the stream, asked after
   * the message arrived, that still finds the bound incarnation proves it (a re-created stream
   * never gets its creation time back; a store restored from an earlier copy does, which is why
   * the sequence index also compares when a message was stored); one look covers every message
   * that arrived before it.
   * Resolves false when that cannot be shown; the session is then ending and the source binds
   * again.
   */
  async confirm(origin: { session: number; receipt: number }): Promise<boolean> {
    const binding = this.bindingNow;
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

  checkSoon(): void {
    const binding = this.bindingNow;
    if (!binding || binding.ended || !this.connected()) return;
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
  noteAckFloor(info: ConsumerInfo): void {
    const binding = this.bindingNow;
    if (!binding || binding.ended || info.created !== binding.consumerCreated) return;
    const seq = info.ack_floor.stream_seq;
    const last = this.memory.lastAckFloor;
    if (last?.incarnation === binding.incarnation && last.seq >= seq) return;
    this.memory.lastAckFloor = { incarnation: binding.incarnation, seq };
  }

  /** End a session whose stream or consumer is gone or another one; the loop binds again. */
  private end(binding: Binding, reason: UnboundReason): false {
    if (binding.ended) return false;
    binding.ended = reason;
    this.memory.unbound = reason;
    this.bound = false;
    this.logger.debug({ reason }, 'JetStream consumer session ended');
    binding.pulls.stop();
    return false;
  }
}
