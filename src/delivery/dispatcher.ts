import { createActor, fromPromise, type Actor } from 'xstate';
import {
  withJitter,
  type DeliveryOutput,
  type RetryPolicy,
  type SendInput,
} from '../../machines/delivery.js';
import type { Outcome } from '../../machines/outcome.js';
import {
  decodeBody,
  encodeBody,
  rawBody,
  splitDocument,
  toDiscoveries,
  toSpoolRecord,
} from '../spool/batch-codec.js';
import { systemClock, type Clock } from '../util/clock.js';
import { uuidv7 } from '../util/ids.js';
import type { EmitterEvents } from '../observe/events.js';
import type { Redactor } from '../util/redact.js';
import type { Logger } from '../util/logger.js';
import type { BatchState, Spool } from '../spool/spool.js';
import type { DestinationRejecting } from '../observe/status.js';
import type { HttpTransport } from './http-transport.js';
import { Gate, maxConcurrencyOf, type Concurrency } from './gate.js';

/**
 * The dispatcher runs one delivery statechart per spooled batch against the origin's gate
 * (breaker and concurrency limiter), and applies their decisions to the spool: delete when delivered, replace by halves
 * on a split, move to dead letters when permanent, mark parked when attempts run out.
 *
 * Memory stays bounded in an outage: at most `maxActive` delivery actors exist (each holds an id,
 * never a body); further ids wait in a bounded queue, and beyond that only in the spool, from
 * which a scan refills the queue. Parked batches are picked up by the periodic sweep.
 */

export interface DispatcherOptions {
  spool: Spool;
  transport: HttpTransport;
  logger: Logger;
  events: EmitterEvents;
  policy: RetryPolicy;
  circuit: { failureThreshold: number; resetTimeoutMs: number };
  concurrency: Concurrency;
  compression: 'gzip' | 'none';
  /** `discoveries` re-shapes each body as {"discoveries":[...]} for receivers built for the transmitter seed */
  bodyFormat: 'batch' | 'discoveries';
  /** scrubs configured secrets (and bearer tokens, URL credentials) from what is kept */
  redactor: Redactor;
  /** how often parked batches are swept back in (default: the max retry delay) */
  sweepIntervalMs?: number;
  /** consecutive permanent refusals (no success between) after which the destination counts as rejecting everything */
  rejectingAfter?: number;
  /** waits are measured on `monoMs`; `wallMs` only stamps records (default: the system clocks) */
  clock?: Clock;
  onSpoolShrunk?(): void;
}

const QUEUE_LIMIT = 10_000;
const REJECTING_AFTER = 5;
const SCAN_PAGE = 1000;

type DeliveryActor = Actor<ReturnType<typeof withJitter>>;

export interface DeliverySummary {
  batchId: string;
  state: unknown;
  attempts: number;
  nextDelayMs?: number;
}

/** A delivery actor as /debug and the stats show it. */
export function summariseDelivery(actor: DeliveryActor): DeliverySummary {
  const s = actor.getSnapshot();
  return {
    batchId: s.context.batchId,
    state: s.value,
    attempts: s.context.attempts,
    nextDelayMs: s.context.nextDelayMs,
  };
}

/** The log line of a dead-lettered batch: a refused credential says what to check. */
export function deadLetterMessage(status: number | undefined): string {
  if (status === 401 || status === 403) {
    return (
      `batch dead-lettered: destination refused the credentials (${status}): ` +
      'check TRANSMITTER_AUTH_TOKEN / client certificate'
    );
  }
  return 'batch dead-lettered (permanent failure)';
}

export class Dispatcher {
  readonly gate: Gate;
  private readonly active = new Map<string, DeliveryActor>();
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  /** ids taken from the queue whose actor is being created */
  private readonly launching = new Set<string>();
  private needsScan = false;
  private scanning = false;
  private stopped = false;
  private sweepTimer?: NodeJS.Timeout;
  private idleWaiters: Array<() => void> = [];
  private readonly maxActive: number;
  private readonly machine;
  private readonly lastDurationMs = new Map<string, number>();
  /** monotonic time at which a parked batch is due again (the spool's notBefore is wall-clock) */
  private readonly dueAt = new Map<string, number>();
  private wakeTimer?: NodeJS.Timeout;
  private wakeAtMs?: number;
  private readonly clock: Clock;
  /** permanent refusals since the last success */
  private refusals = 0;
  private lastRefusalStatus?: number;

  constructor(private readonly options: DispatcherOptions) {
    this.maxActive = Math.max(16, maxConcurrencyOf(options.concurrency) * 4);
    this.clock = options.clock ?? systemClock;
    this.gate = new Gate({
      breaker: {
        origin: options.transport.origin,
        failureThreshold: options.circuit.failureThreshold,
        resetTimeoutMs: options.circuit.resetTimeoutMs,
        maxResetTimeoutMs: Math.max(options.policy.maxDelayMs, options.circuit.resetTimeoutMs),
      },
      concurrency: options.concurrency,
      onCircuitChange: (e) => {
        options.logger.warn({ origin: e.origin, from: e.from, to: e.to }, `breaker ${e.to}`);
        options.events.emit('breaker', { origin: e.origin, from: e.from, to: e.to });
      },
    });
    this.machine = withJitter(Math.random).provide({
      actors: { send: fromPromise<Outcome, SendInput>(({ input, signal }) => this.send(input, signal)) },
    });
  }

  /** Replay: everything already in the spool, oldest first. */
  start(): void {
    this.needsScan = true;
    this.pump();
    const every = this.options.sweepIntervalMs ?? Math.max(1000, this.options.policy.maxDelayMs);
    this.sweepTimer = setInterval(() => {
      this.needsScan = true;
      this.pump();
    }, every);
    this.sweepTimer.unref();
  }

  /** Scan the spool again (after it was reopened: batches that failed to start meanwhile are there). */
  rescan(): void {
    if (this.stopped) return;
    this.needsScan = true;
    this.pump();
  }

  /** A batch just became durable. */
  enqueue(id: string): void {
    if (this.stopped || this.active.has(id) || this.queued.has(id) || this.launching.has(id)) return;
    if (this.queue.length >= QUEUE_LIMIT) {
      this.needsScan = true;
    } else {
      this.queue.push(id);
      this.queued.add(id);
    }
    this.pump();
  }

  get activeCount(): number {
    return this.active.size;
  }

  get queuedCount(): number {
    return this.queue.length;
  }

  /** Set while the destination refuses every batch (the last N outcomes permanent), until a success. */
  rejecting(): DestinationRejecting | undefined {
    if (this.refusals < (this.options.rejectingAfter ?? REJECTING_AFTER)) return undefined;
    return { consecutive: this.refusals, lastStatus: this.lastRefusalStatus };
  }

  deliveries(): DeliverySummary[] {
    return [...this.active.values()].map(summariseDelivery);
  }

  /** Resolves when no batch is queued, active, or waiting to be scanned from the spool. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Resolves when the origin's breaker is open or paused: waiting for deliveries is then futile. */
  originDown(): Promise<void> {
    return this.gate.originDown();
  }

  /** Stop all deliveries (in-flight requests are aborted; batches stay in the spool). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    for (const actor of this.active.values()) actor.stop();
    this.active.clear();
    this.gate.stop();
    this.notifyIdle(true);
  }

  private isIdle(): boolean {
    return (
      this.active.size === 0 &&
      this.launching.size === 0 &&
      this.queue.length === 0 &&
      !this.needsScan &&
      !this.scanning
    );
  }

  private notifyIdle(force = false): void {
    if (!force && !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private pump(): void {
    if (this.stopped) return;
    while (this.active.size + this.launching.size < this.maxActive && this.queue.length > 0) {
      const id = this.queue.shift() as string;
      this.queued.delete(id);
      this.launching.add(id);
      void this.launch(id);
    }
    if (this.queue.length === 0 && this.needsScan && !this.scanning) void this.scan();
    this.notifyIdle();
  }

  /** Refill the queue from the spool: ids not active or queued, and not parked until later. */
  private async scan(): Promise<void> {
    this.scanning = true;
    this.needsScan = false;
    let nextDue: number | undefined;
    try {
      let after: string | undefined;
      const now = this.clock.monoMs();
      while (!this.stopped && this.queue.length < QUEUE_LIMIT) {
        const states = await this.options.spool.listStates({ after, limit: SCAN_PAGE });
        if (states.length === 0) break;
        for (const state of states) {
          if (this.active.has(state.id) || this.queued.has(state.id) || this.launching.has(state.id))
            continue;
          if (state.parked) {
            const due = this.dueOf(state);
            if (due > now) {
              nextDue = Math.min(nextDue ?? due, due);
              continue;
            }
          }
          if (this.queue.length >= QUEUE_LIMIT) {
            this.needsScan = true;
            break;
          }
          this.queue.push(state.id);
          this.queued.add(state.id);
        }
        after = states[states.length - 1]?.id;
      }
    } catch (error) {
      this.options.logger.error({ err: (error as Error).message }, 'spool scan failed');
    } finally {
      this.scanning = false;
    }
    if (nextDue !== undefined) this.wakeAt(nextDue);
    this.pump();
  }

  /**
   * When a parked batch is due, on the monotonic clock. A batch parked by this process has its
   * due time in memory; one read from the spool after a restart has only the wall-clock
   * notBefore, trusted for at most the longest wait this dispatcher ever sets (a clock set back
   * cannot hold a batch longer than that).
   */
  private dueOf(state: BatchState): number {
    const known = this.dueAt.get(state.id);
    if (known !== undefined) return known;
    const left = Math.max(0, (state.notBefore ?? 0) - this.clock.wallMs());
    const due = this.clock.monoMs() + Math.min(left, this.longestWaitMs());
    this.dueAt.set(state.id, due);
    return due;
  }

  private get parkDelayMs(): number {
    return this.options.sweepIntervalMs ?? this.options.policy.maxDelayMs;
  }

  private longestWaitMs(): number {
    return Math.max(this.options.policy.maxDelayMs, this.parkDelayMs);
  }

  /** Scan again when the earliest parked batch is due (sooner than the periodic sweep). */
  private wakeAt(dueMs: number): void {
    if (this.stopped || (this.wakeAtMs !== undefined && this.wakeAtMs <= dueMs)) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeAtMs = dueMs;
    this.wakeTimer = setTimeout(
      () => {
        this.wakeTimer = undefined;
        this.wakeAtMs = undefined;
        this.needsScan = true;
        this.pump();
      },
      Math.max(0, dueMs - this.clock.monoMs()),
    );
    this.wakeTimer.unref();
  }

  private async launch(id: string): Promise<void> {
    const state = await this.options.spool.getState(id).catch(() => undefined);
    if (!state || this.stopped) {
      this.launching.delete(id);
      this.pump();
      return;
    }
    this.dueAt.delete(id);
    const actor = createActor(this.machine, {
      input: {
        batchId: id,
        // a parked batch gets one more attempt per sweep
        attempts: state.parked ? Math.max(0, this.options.policy.maxAttempts - 1) : state.attempts,
        limiter: this.gate.permits,
        policy: this.options.policy,
      },
    });
    this.active.set(id, actor);
    this.launching.delete(id);
    actor.on('sending', (e) =>
      this.options.events.emit('sending', { batchId: e.batchId, attempt: e.attempt }),
    );
    actor.on('attempt', (e) => void this.recordAttempt(state, e.outcome, e.attempt, e.nextDelayMs));
    actor.subscribe({
      complete: () => {
        const output = actor.getSnapshot().output;
        if (output) void this.finish(state, output);
      },
      error: (error) => {
        this.options.logger.error({ batchId: id, err: (error as Error).message }, 'delivery actor failed');
        this.release(id);
      },
    });
    actor.start();
  }

  private async send(input: SendInput, signal: AbortSignal): Promise<Outcome> {
    const batch = await this.options.spool.get(input.batchId);
    if (!batch) return { kind: 'permanent', status: 0, reason: 'batch no longer in the spool' };
    const { body, contentEncoding } = await this.wireBody(batch.state, batch.body);
    const meta = { batchId: input.batchId, contentEncoding, itemCount: batch.state.itemCount };
    const started = performance.now();
    const outcome = await this.options.transport.post(body, meta, signal);
    const durationMs = performance.now() - started;
    this.lastDurationMs.set(input.batchId, durationMs);
    this.gate.report(outcome, durationMs);
    // a careless receiver may echo our token back: scrub before it reaches history, dead letters or logs
    if (outcome.kind === 'permanent' && outcome.bodyExcerpt !== undefined) {
      return { ...outcome, bodyExcerpt: this.options.redactor.scrub(outcome.bodyExcerpt) };
    }
    return outcome;
  }

  /** The stored body as it goes on the wire: as stored when possible, re-encoded otherwise. */
  private async wireBody(
    state: BatchState,
    stored: Buffer,
  ): Promise<{ body: Buffer; contentEncoding: 'gzip' | 'identity' }> {
    const wanted = this.options.compression === 'gzip' ? 'gzip' : 'identity';
    if (this.options.bodyFormat === 'discoveries') {
      const json = JSON.stringify(toDiscoveries(await decodeBody(state, stored)));
      return { body: await encodeBody(json, wanted), contentEncoding: wanted };
    }
    if (state.encoding === wanted) return { body: stored, contentEncoding: wanted };
    return { body: await rawBody(state, stored), contentEncoding: 'identity' };
  }

  private async recordAttempt(
    state: BatchState,
    outcome: Outcome,
    attempt: number,
    nextDelayMs?: number,
  ): Promise<void> {
    const durationMs = this.lastDurationMs.get(state.id) ?? 0;
    this.lastDurationMs.delete(state.id);
    this.options.events.emit('attempt', { batchId: state.id, attempt, outcome, durationMs, nextDelayMs });
    this.noteRefusals(outcome);
    if (outcome.kind !== 'retryable') return;
    const log = this.options.logger;
    log.warn(
      { batchId: state.id, attempt, reason: outcome.reason, status: outcome.status, nextDelayMs },
      'delivery attempt failed',
    );
    const notBefore = nextDelayMs === undefined ? undefined : this.clock.wallMs() + nextDelayMs;
    await this.options.spool
      .updateState({ ...state, attempts: attempt, notBefore, lastError: outcome.reason })
      .catch((error: unknown) => log.error({ err: (error as Error).message }, 'cannot record attempt'));
  }

  private noteRefusals(outcome: Outcome): void {
    if (outcome.kind === 'success') {
      if (this.rejecting()) this.options.logger.info('the destination accepts batches again');
      this.refusals = 0;
    } else if (outcome.kind === 'permanent' && outcome.status > 0) {
      // status 0: not an answer of the destination (the batch left the spool meanwhile)
      this.refusals += 1;
      this.lastRefusalStatus = outcome.status;
      if (this.refusals === (this.options.rejectingAfter ?? REJECTING_AFTER)) {
        this.options.logger.error(
          { consecutive: this.refusals, status: outcome.status },
          'the destination refuses every batch: each is dead-lettered; /ready fails until one is accepted',
        );
      }
    }
  }

  private async finish(state: BatchState, output: DeliveryOutput): Promise<void> {
    const { spool, logger } = this.options;
    try {
      switch (output.result) {
        case 'delivered':
          await spool.delete(state.id);
          logger.info({ batchId: state.id, attempts: output.attempts }, 'batch delivered');
          break;
        case 'split':
          await this.split(state);
          break;
        case 'deadLettered':
          // a batch quarantined while being read (unreadable on disk) is not a dead letter
          if (!(await this.deadLetter(state, output))) return;
          break;
        case 'parked':
          await this.park(state, output);
          break;
      }
      this.options.events.emit('finished', {
        batchId: state.id,
        result: output.result,
        attempts: output.attempts,
        createdAtMs: Date.parse(state.createdAt),
        items: state.itemCount,
      });
    } catch (error) {
      logger.error(
        { batchId: state.id, err: (error as Error).message },
        'cannot apply delivery result; batch stays spooled',
      );
    } finally {
      this.options.onSpoolShrunk?.();
      this.release(state.id);
    }
  }

  private release(id: string): void {
    this.active.delete(id);
    this.pump();
  }

  private async split(state: BatchState): Promise<void> {
    const batch = await this.options.spool.get(state.id);
    if (!batch) return;
    const doc = await decodeBody(batch.state, batch.body);
    const halves = splitDocument(doc, uuidv7);
    const parts = await Promise.all(
      halves.map((half) =>
        toSpoolRecord(half, batch.state.encoding, { subjects: state.subjects, parentId: state.id }),
      ),
    );
    await this.options.spool.replace(state.id, parts);
    this.options.events.emit('split', {
      parentId: state.id,
      parts: parts.map((p) => ({
        batchId: p.state.id,
        items: p.state.itemCount,
        storedBytes: p.state.storedBytes,
      })),
    });
    this.options.logger.warn(
      { batchId: state.id, parts: parts.map((p) => ({ id: p.state.id, items: p.state.itemCount })) },
      'batch too large for the endpoint (413): split in two',
    );
    for (const part of parts) this.enqueue(part.state.id);
  }

  private async deadLetter(state: BatchState, output: DeliveryOutput): Promise<boolean> {
    const outcome = output.lastOutcome;
    const permanent = outcome?.kind === 'permanent' ? outcome : undefined;
    const moved = await this.options.spool.deadLetterBatch(state.id, {
      reason: permanent?.reason ?? 'permanent failure',
      at: new Date().toISOString(),
      status: permanent?.status,
      // a careless receiver may echo our token back: never keep it
      bodyExcerpt: permanent?.bodyExcerpt,
      subjects: state.subjects,
      history: output.history,
    });
    if (!moved) {
      this.options.logger.error(
        { batchId: state.id },
        'batch quarantined: it could not be read from the spool',
      );
      return false;
    }
    this.options.logger.error(
      { batchId: state.id, status: permanent?.status, reason: permanent?.reason },
      deadLetterMessage(permanent?.status),
    );
    return true;
  }

  private async park(state: BatchState, output: DeliveryOutput): Promise<void> {
    const every = this.parkDelayMs;
    const lastError = output.lastOutcome?.kind === 'retryable' ? output.lastOutcome.reason : undefined;
    this.dueAt.set(state.id, this.clock.monoMs() + every);
    await this.options.spool.updateState({
      ...state,
      attempts: output.attempts,
      parked: true,
      notBefore: this.clock.wallMs() + every,
      lastError,
    });
    this.wakeAt(this.clock.monoMs() + every);
    this.options.logger.warn(
      { batchId: state.id, attempts: output.attempts, lastError },
      'batch parked: attempts exhausted, kept in spool',
    );
  }
}
