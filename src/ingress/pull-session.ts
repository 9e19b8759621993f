import {
  createInbox,
  nanos,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';

/**
 * One session of pulling from a durable consumer, over a core subscription to an inbox of its
 * own. Messages go to the handler in arrival order, one call each; a call that returns a promise
 * holds the ones behind it. Messages asked for and messages received but not handled stay within
 * one pull's worth (`maxMessages`) together, so a handler that stops taking messages leaves the
 * rest in the stream (for this instance's peers, and without copies piling up at each ack_wait). nats.js's consume() does
 * the same job through an async iterator, whose promises per message were a tenth of the
 * emitter's allocation at full speed. It never acknowledges a message (the handler's owner does).
 *
 * The server answers a pull with messages, then a status on the inbox: 408 when the pull expired
 * (with what it had left to send), 409 for a deleted consumer and for limits, and 100 as an idle
 * heartbeat while a pull waits. Two heartbeat periods without a word while a pull is out mean the
 * pull was lost (a leader change, a restarted server): the session pulls afresh and says so.
 */

export interface PullSessionOptions {
  /** `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` */
  stream: string;
  consumer: string;
  /** messages asked for at most (pulled again once under three quarters of it are outstanding) */
  maxMessages: number;
  expiresMs: number;
}

/** What the session notices that its owner may want to check (the consumer or stream may be gone). */
export type SessionTrouble = 'consumer_deleted' | 'heartbeats_missed' | 'no_responders' | 'pull_refused';

export type PulledHandler = (msg: Msg, receipt: number) => void | Promise<void>;

/** What the session's owner does with each message, and with those it lets go unhandled. */
export interface PulledMessages {
  handle: PulledHandler;
  /**
   * A message received but never handed over (the session stopped). It is to come again once the
   * pulls this session may have left waiting have expired (`expiresMs`): sooner, the server could
   * send it back to this session's inbox.
   */
  letGo(msg: Msg): void;
  /** something the owner may want to check (the consumer or the stream may be gone) */
  troubled(trouble: SessionTrouble, detail?: string): void;
}

/** A status the server ended the session with (400, a deleted consumer). */
export class PullSessionError extends Error {
  constructor(
    readonly status: number,
    description: string,
  ) {
    super(description);
    this.name = 'PullSessionError';
  }
}

const PENDING_MESSAGES = 'Nats-Pending-Messages';

export class PullSession {
  /** messages received so far (statuses aside): the last one's receipt */
  received = 0;
  /** messages asked for by pulls and neither received nor given up by the server */
  private outstanding = 0;
  /** received while the handler was busy, in order; `next` is the first not handled */
  private waiting: Msg[] = [];
  private next = 0;
  private busy = false;
  private done = false;
  /** where pulls ask the server to send; a new one after each reconnection (see reconnected) */
  private inbox = '';
  private readonly pullSubject: string;
  private readonly pullThreshold: number;
  private readonly heartbeatMs: number;
  private sub?: Subscription;
  private monitor?: NodeJS.Timeout;
  /** heartbeat periods passed without a word while a pull was out */
  private silentPeriods = 0;
  private endWith!: (error: Error | undefined) => void;
  /** how the session ended: undefined when stopped, else the error that ended it */
  readonly ended = new Promise<Error | undefined>((resolve) => (this.endWith = resolve));

  constructor(
    private readonly nc: NatsConnection,
    private readonly options: PullSessionOptions,
    private readonly owner: PulledMessages,
  ) {
    this.pullSubject = `$JS.API.CONSUMER.MSG.NEXT.${options.stream}.${options.consumer}`;
    this.pullThreshold = Math.round(options.maxMessages * 0.75);
    // as nats.js: half the pull's life, within 0.5-30 s
    this.heartbeatMs = Math.min(30_000, Math.max(500, options.expiresMs / 2));
  }

  start(): void {
    this.subscribe();
    this.monitor = setInterval(() => this.checkHeartbeats(), this.heartbeatMs);
    this.monitor.unref();
    void this.nc.closed().then(() => this.stop());
    this.refill();
  }

  /**
   * Stop pulling; messages received and not handled are let go (never acked: they come again).
   * The inbox stays open for the life of a pull, and lets go what still arrives there: the server
   * has no way to take back a pull, and would deliver to a closed inbox, each message then waiting
   * out ack_wait.
   */
  stop(error?: Error): void {
    if (this.done) return;
    this.done = true;
    if (this.monitor) clearInterval(this.monitor);
    for (let i = this.next; i < this.waiting.length; i++) this.owner.letGo(this.waiting[i] as Msg);
    this.waiting = [];
    this.next = 0;
    this.endWith(error);
    if (this.outstanding === 0 || this.nc.isClosed()) return this.unsubscribe(this.sub);
    this.retire(this.sub);
  }

  private subscribe(): void {
    const inbox = createInbox();
    this.inbox = inbox;
    this.sub = this.nc.subscribe(inbox, {
      callback: (error, msg) => {
        if (error) this.stop(error);
        else if (inbox !== this.inbox) this.retired(msg, inbox);
        else this.arrived(msg);
      },
    });
  }

  /** Keep an inbox for the life of a pull, letting go what still arrives there. */
  private retire(sub: Subscription | undefined): void {
    setTimeout(() => this.unsubscribe(sub), this.options.expiresMs).unref();
  }

  private retired(msg: Msg, inbox: string): void {
    if (msg.subject !== inbox) this.owner.letGo(msg);
  }

  private unsubscribe(sub: Subscription | undefined): void {
    try {
      sub?.unsubscribe();
    } catch {
      // a closed connection has no subscriptions left
    }
  }

  /** The connection is back: pulls sent before may be gone (see pullAfresh). */
  reconnected(): void {
    this.pullAfresh();
  }

  private arrived(msg: Msg): void {
    if (this.done) return this.retired(msg, this.inbox);
    this.silentPeriods = 0;
    if (msg.subject === this.inbox) return this.onStatus(msg);
    this.received++;
    if (this.outstanding > 0) this.outstanding--;
    if (this.busy || this.next < this.waiting.length) this.waiting.push(msg);
    else this.handle(msg, this.received);
    this.refill();
  }

  private handle(msg: Msg, receipt: number): void {
    let pending: void | Promise<void>;
    try {
      pending = this.owner.handle(msg, receipt);
    } catch (error) {
      return this.stop(error as Error);
    }
    if (!pending) return;
    this.busy = true;
    pending.then(
      () => {
        this.busy = false;
        this.drain();
      },
      (error: unknown) => this.stop(error as Error),
    );
  }

  /** Hand over what waited while the handler was busy, until it is busy again. */
  private drain(): void {
    while (!this.done && !this.busy && this.next < this.waiting.length) {
      const receipt = this.received - (this.waiting.length - this.next) + 1;
      const msg = this.waiting[this.next] as Msg;
      this.waiting[this.next++] = undefined as unknown as Msg;
      this.handle(msg, receipt);
      this.refill();
    }
    if (this.next === this.waiting.length) {
      this.waiting.length = 0;
      this.next = 0;
    }
    this.refill();
  }

  /**
   * Pull again once what is asked for and what waits to be handled are under three quarters of
   * `maxMessages`, up to all of it: a handler that stops taking messages holds at most that many.
   */
  private refill(): void {
    if (this.done) return;
    const held = this.outstanding + this.waiting.length - this.next;
    if (held > this.pullThreshold) return;
    const batch = this.options.maxMessages - held;
    this.outstanding += batch;
    this.silentPeriods = 0;
    const request = {
      batch,
      expires: nanos(this.options.expiresMs),
      idle_heartbeat: nanos(this.heartbeatMs),
    };
    try {
      this.nc.publish(this.pullSubject, JSON.stringify(request), { reply: this.inbox });
    } catch (error) {
      this.stop(error as Error);
    }
  }

  private onStatus(msg: Msg): void {
    const code = msg.headers?.code ?? 0;
    const description = (msg.headers?.description ?? '').toLowerCase();
    if (code === 100) return; // an idle heartbeat
    // the pull ended (expired, or cut short) with this many of its messages unsent
    const left = Number.parseInt(msg.headers?.get(PENDING_MESSAGES) ?? '', 10);
    if (left > 0) this.outstanding = Math.max(0, this.outstanding - left);
    if (code === 400) return this.stop(new PullSessionError(code, description || 'bad request'));
    if (code === 409 && description === 'consumer deleted') {
      this.owner.troubled('consumer_deleted');
      return this.stop(new PullSessionError(code, description));
    }
    // the pulls went with the old leader of the consumer: ask the new one at once
    if (code === 409 && description === 'leadership change') return this.pullAfresh();
    // a pull refused whole (a limit of the consumer, e.g. max_waiting or max_batch): what it asked
    // for is not known here, so it stays counted until heartbeats are missed; say why meanwhile
    if (code === 409 && !(left > 0)) this.owner.troubled('pull_refused', description);
    if (code === 503) this.owner.troubled('no_responders');
    this.refill();
  }

  /**
   * Silence while a pull is out: it was lost; count the pull as gone and ask again. The check
   * right after a word counts as silent too, so three checks in a row mean two whole periods
   * without a word (as nats.js): a heartbeat a hair late is not a lost pull, and pulling afresh
   * while it lives would ask for twice `maxMessages`.
   */
  private checkHeartbeats(): void {
    if (this.done || this.outstanding === 0) return;
    if (++this.silentPeriods < 3) return;
    this.silentPeriods = 0;
    this.owner.troubled('heartbeats_missed');
    this.pullAfresh();
  }

  /**
   * Count the pulls sent so far as gone and ask again, to a new inbox. They may be gone (a
   * restarted server, a new leader) or may live on (the same server, which keeps a pull whose
   * inbox had its subscriber back in time, or a pull only slow to say so): what they still send
   * to the old inbox is let go, instead of asking for twice `maxMessages`.
   */
  private pullAfresh(): void {
    if (this.done) return;
    const old = this.sub;
    this.subscribe();
    this.retire(old);
    this.outstanding = 0;
    this.refill();
  }
}
