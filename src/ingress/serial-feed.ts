import { deferred } from '../util/deferred.js';

/** handed-over slots kept at the front of the queue before it is cut down to the waiting ones */
const COMPACT_AFTER = 1024;

/**
 * Items pushed synchronously (by nats.js's consume callback), handed to `handle` one at a time in
 * the order they came: while the promise `handle` returned for one is pending, the later ones
 * wait. This is what a `for await` over nats.js's iterator did, without an async generator step,
 * a promise and a microtask per message. It never throws into the pusher: the first error a
 * handling throws or rejects with halts it (items pushed later wait for close()) and settles `failed`.
 */
export class SerialFeed<T> {
  /** handed-over slots are cleared, so the feed never keeps an item alive once handed over */
  private waiting: (T | undefined)[] = [];
  /** index in `waiting` of the next item to hand over */
  private next = 0;
  private inFlight?: Promise<void>;
  /** no more handing over (closed, or a handling failed) */
  private halted = false;
  /** closed: pushes are dropped (the caller has stopped the source first) */
  private closed = false;
  /** a push from inside a handling is picked up by the drain already running */
  private draining = false;
  private readonly failure = deferred<Error>();

  private holdTimer?: NodeJS.Timeout;

  /**
   * `held`: called once a single handling has been pending for `holdLimitMs` (the caller stops
   * what pushes, so nothing piles up behind a long pause).
   */
  constructor(
    private readonly handle: (item: T) => void | Promise<void>,
    private readonly hold?: { limitMs: number; held: () => void },
  ) {}

  /** Settles with the first error of a handling (nothing is handed over after it); never rejects. */
  get failed(): Promise<Error> {
    return this.failure.promise;
  }

  push(item: T): void {
    if (this.closed) return;
    this.waiting.push(item);
    if (this.inFlight === undefined && !this.draining && !this.halted) this.drain();
  }

  /**
   * Hand nothing more over. Resolves, once the handling in flight (if any) has settled, with the
   * items never handed over, in order.
   */
  async close(): Promise<T[]> {
    this.halted = true;
    this.closed = true;
    const unhandled = this.waiting.slice(this.next) as T[];
    this.waiting = [];
    this.next = 0;
    await this.inFlight;
    return unhandled;
  }

  private drain(): void {
    this.draining = true;
    while (!this.halted && this.inFlight === undefined && this.next < this.waiting.length) {
      const item = this.waiting[this.next] as T;
      this.waiting[this.next++] = undefined;
      try {
        const pending = this.handle(item);
        if (pending) {
          this.inFlight = pending.then(this.resume, this.fail);
          if (this.hold) this.holdTimer = setTimeout(this.hold.held, this.hold.limitMs).unref();
        }
      } catch (error) {
        this.fail(error);
      }
    }
    this.draining = false;
    if (this.halted) return;
    if (this.next === this.waiting.length) {
      this.waiting.length = 0;
      this.next = 0;
    } else if (this.next >= COMPACT_AFTER) {
      // a feed that is never empty (messages keep coming while handlings wait) would grow for ever
      this.waiting = this.waiting.slice(this.next);
      this.next = 0;
    }
  }

  private readonly resume = (): void => {
    clearTimeout(this.holdTimer);
    this.inFlight = undefined;
    this.drain();
  };

  private readonly fail = (error: unknown): void => {
    clearTimeout(this.holdTimer);
    this.inFlight = undefined;
    this.halted = true;
    this.failure.resolve(error instanceof Error ? error : new Error(String(error)));
  };
}
