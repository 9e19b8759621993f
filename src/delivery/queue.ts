import { createActor, fromPromise, type Actor } from 'xstate';
import {
  withJitter,
  type DeliveryOutput,
  type RetryPolicy,
  type SendInput,
} from '../../machines/delivery.js';
import type { Outcome } from '../../machines/outcome.js';
import type { EmitterEvents } from '../observe/events.js';
import type { InspectionObserver } from '../observe/inspect/index.js';
import type { DestinationRejecting } from '../observe/status.js';
import type { BatchState, KnownBatch, Spool } from '../spool/spool.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { Redactor } from '../util/redact.js';
import { BatchSender, type WireFormat } from './batch-sender.js';
import { Gate, maxConcurrencyOf, type Concurrency } from './gate.js';
import { HeldBodies, retainedBytes } from './held-bodies.js';
import type { HttpTransport } from './http-transport.js';
import { ParkSchedule } from './park-schedule.js';
import { Refusals } from './refusals.js';
import { DeliveryResults, type AttemptReport } from './results.js';

/**
 * The delivery queue: which spooled batches are delivered next, and the lifecycle of their
 * delivery statecharts (one per batch, each asking the gate for a permit before every attempt).
 * It never builds a body or touches the network (the batch sender does), and never writes the
 * spool (the results do).
 *
 * Memory stays bounded in an outage: at most `maxActive` delivery actors exist; further ids wait
 * in a bounded queue, and beyond that only in the spool, from which a scan refills the queue.
 * Parked batches come back when due on the monotonic clock.
 *
 * A batch handed over as it became durable keeps its body for its first attempt only (at most
 * `maxActive` such bodies and HELD_BODY_BYTES are held; beyond that one is read back like any
 * other). Every other
 * attempt, and every batch a scan found, reads the spool: a scan may list a batch just delivered,
 * whose read then finds it gone. A batch being written is left to its hand-over, never scanned,
 * so no scan can deliver it before its body arrives.
 */

/** A batch as the intake wrote it, handed over with its body. */
export interface HandedBatch extends KnownBatch {
  body: Buffer;
}

interface Queued {
  id: string;
  /** set only when the intake handed it over: dropped at its launch or first attempt */
  handed?: HandedBatch;
}

/** The origin's gate, logging and reporting each change of its circuit. */
function createGate(options: DeliveryQueueOptions): Gate {
  const { circuit, policy, logger, events } = options;
  return new Gate({
    breaker: {
      origin: options.transport.origin,
      failureThreshold: circuit.failureThreshold,
      resetTimeoutMs: circuit.resetTimeoutMs,
      maxResetTimeoutMs: Math.max(policy.maxDelayMs, circuit.resetTimeoutMs),
    },
    concurrency: options.concurrency,
    inspect: options.inspect,
    onCircuitChange: (e) => {
      logger.warn({ origin: e.origin, from: e.from, to: e.to }, `breaker ${e.to}`);
      events.emit('breaker', { origin: e.origin, from: e.from, to: e.to });
    },
  });
}

export interface DeliveryQueueOptions extends WireFormat {
  spool: Spool;
  transport: HttpTransport;
  logger: Logger;
  events: EmitterEvents;
  policy: RetryPolicy;
  circuit: { failureThreshold: number; resetTimeoutMs: number };
  concurrency: Concurrency;
  /** scrubs configured secrets (and bearer tokens, URL credentials) from what is kept */
  redactor: Redactor;
  /** how often parked batches are swept back in (default: the max retry delay) */
  sweepIntervalMs?: number;
  /** consecutive permanent refusals (no success between) after which the destination counts as rejecting everything */
  rejectingAfter?: number;
  /** waits are measured on `monoMs`; `wallMs` only stamps records (default: the system clocks) */
  clock?: Clock;
  /** streams the delivery, breaker and limiter statecharts to a Stately inspector */
  inspect?: InspectionObserver;
  onSpoolShrunk?(): void;
}

const QUEUE_LIMIT = 10_000;
/** bytes of handed-over bodies held for first attempts (a slow destination keeps them waiting) */
const HELD_BODY_BYTES = 16 * 1024 * 1024;
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

export class DeliveryQueue {
  readonly gate: Gate;
  private readonly active = new Map<string, DeliveryActor>();
  private readonly queue: Queued[] = [];
  private readonly queued = new Set<string>();
  /** the breaker's state when each running attempt started (for the attempt event) */
  private readonly breakerAtStart = new Map<string, string>();
  /** ids taken from the queue whose actor is being created */
  private readonly launching = new Set<string>();
  /** ids the intake is writing: their hand-over, not a scan, queues them */
  private readonly writing = new Set<string>();
  /** the handed-over body of an active delivery, for its own first attempt only */
  private readonly firstBodies = new Map<string, { owner: DeliveryActor; batch: HandedBatch }>();
  private needsScan = false;
  private scanning = false;
  /** a scan failed and none has succeeded since: the outage is logged once, not at every sweep */
  private scanFailing = false;
  private stopped = false;
  private sweepTimer?: NodeJS.Timeout;
  private idleWaiters: Array<() => void> = [];
  private readonly maxActive: number;
  private readonly held: HeldBodies;
  private readonly machine;
  private readonly clock: Clock;
  private readonly schedule: ParkSchedule;
  private readonly refusals: Refusals;
  private readonly results: DeliveryResults;

  constructor(private readonly options: DeliveryQueueOptions) {
    const { policy, logger } = options;
    this.maxActive = Math.max(16, maxConcurrencyOf(options.concurrency) * 4);
    this.held = new HeldBodies(this.maxActive, HELD_BODY_BYTES);
    this.clock = options.clock ?? systemClock;
    const parkDelayMs = options.sweepIntervalMs ?? policy.maxDelayMs;
    this.schedule = new ParkSchedule({
      clock: this.clock,
      parkDelayMs,
      longestWaitMs: Math.max(policy.maxDelayMs, parkDelayMs),
      onDue: () => this.rescan(),
    });
    this.refusals = new Refusals(logger, options.rejectingAfter);
    this.results = new DeliveryResults({ ...options, schedule: this.schedule, clock: this.clock });
    this.gate = createGate(options);
    const sender = new BatchSender({ ...options, clock: this.clock });
    const send = async ({ input, signal }: { input: SendInput; signal: AbortSignal }) => {
      const outcome = await sender.send(input.batchId, signal, this.takeFirstBody(input.batchId));
      this.gate.report(outcome, outcome.durationMs ?? 0);
      return outcome;
    };
    this.machine = withJitter(Math.random).provide({
      actors: { send: fromPromise<Outcome, SendInput>(send) },
    });
  }

  /** Replay: everything already in the spool, oldest first; then a periodic sweep. */
  start(): void {
    this.rescan();
    const every = this.options.sweepIntervalMs ?? Math.max(1000, this.options.policy.maxDelayMs);
    this.sweepTimer = setInterval(() => this.rescan(), every);
    this.sweepTimer.unref();
  }

  /** Scan the spool again (after it was reopened: batches that failed to start meanwhile are there). */
  rescan(): void {
    if (this.stopped) return;
    this.needsScan = true;
    this.pump();
  }

  /** A batch just became durable (a split's part): its delivery reads it from the spool. */
  enqueue(id: string): void {
    this.add(id);
  }

  /** The intake is about to write this batch: a scan leaves it alone until it is handed over. */
  expectHandOver(id: string): void {
    if (!this.stopped) this.writing.add(id);
  }

  /** The intake gave up writing it: if a write landed anyway, a scan finds it. */
  handOverGivenUp(id: string): void {
    if (this.writing.delete(id)) this.rescan();
  }

  /**
   * A batch just became durable, with its body for the first attempt. Only a batch announced by
   * `expectHandOver` (so no scan can have delivered it) keeps its body; any other is read back.
   */
  handOver(batch: HandedBatch): void {
    const id = batch.state.id;
    const announced = this.writing.delete(id);
    this.add(id, announced ? batch : undefined);
  }

  private add(id: string, handed?: HandedBatch): void {
    if (this.stopped || this.isKnown(id)) return;
    if (this.queue.length >= QUEUE_LIMIT) this.needsScan = true;
    else this.push(id, handed && this.held.admit(retainedBytes(handed.body)) ? handed : undefined);
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
    return this.refusals.rejecting();
  }

  deliveries(): DeliverySummary[] {
    return [...this.active.values()].map(summariseDelivery);
  }

  /** Resolves when no batch is queued, active, or waiting to be scanned from the spool. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Resolves when the origin is open or paused: waiting for deliveries is then futile. */
  originDown(): Promise<void> {
    return this.gate.originDown();
  }

  /** Stop all deliveries (in-flight requests are aborted; batches stay in the spool). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.schedule.stop();
    for (const actor of this.active.values()) actor.stop();
    this.active.clear();
    this.firstBodies.clear();
    this.writing.clear();
    this.gate.stop();
    this.notifyIdle(true);
  }

  private isKnown(id: string): boolean {
    return this.active.has(id) || this.queued.has(id) || this.launching.has(id) || this.writing.has(id);
  }

  private push(id: string, handed?: HandedBatch): void {
    this.queue.push(handed ? { id, handed } : { id });
    this.queued.add(id);
  }

  private isIdle(): boolean {
    const busy = this.active.size + this.launching.size + this.queue.length;
    return busy === 0 && !this.needsScan && !this.scanning;
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
      const { id, handed } = this.queue.shift() as Queued;
      this.queued.delete(id);
      this.launching.add(id);
      void this.launch(id, handed);
    }
    if (this.queue.length === 0 && this.needsScan && !this.scanning) void this.scan();
    this.notifyIdle();
  }

  /** Refill the queue from the spool: ids not active or queued, and not parked until later. */
  private async scan(): Promise<void> {
    this.scanning = true;
    this.needsScan = false;
    const now = this.clock.monoMs();
    try {
      let after: string | undefined;
      while (!this.stopped && this.queue.length < QUEUE_LIMIT) {
        const states = await this.options.spool.batches.list({ after, limit: SCAN_PAGE });
        if (states.length === 0) break;
        this.takeDue(states, now);
        after = states[states.length - 1]?.id;
      }
      this.scanFailing = false;
    } catch (error) {
      this.noteScanFailure(error);
    } finally {
      this.scanning = false;
    }
    this.pump();
  }

  /** While the disk stays full a scan fails at every sweep: said once an outage, then at debug. */
  private noteScanFailure(error: unknown): void {
    const fields = { err: (error as Error).message };
    if (this.scanFailing) this.options.logger.debug(fields, 'spool scan failed');
    else this.options.logger.error(fields, 'spool scan failed');
    this.scanFailing = true;
  }

  /** Queue the batches of one scanned page that are due; wake up for the earliest parked one. */
  private takeDue(states: BatchState[], now: number): void {
    for (const state of states) {
      if (this.isKnown(state.id)) continue;
      const due = state.parked ? this.schedule.dueOf(state) : now;
      if (due > now) {
        this.schedule.wakeAt(due);
      } else if (this.queue.length >= QUEUE_LIMIT) {
        this.needsScan = true;
        return;
      } else {
        this.push(state.id);
      }
    }
  }

  /**
   * One delivery actor for one batch, started from its record as handed over (while the write
   * that made it durable is still trusted) or as read now.
   */
  private async launch(id: string, handed?: HandedBatch): Promise<void> {
    const usable = handed && this.options.spool.handle.isSound(handed) ? handed : undefined;
    if (handed && !usable) this.held.release(retainedBytes(handed.body));
    // the delivery keeps its record to its end (through every retry): never the handed body
    const known = usable ? { state: usable.state, generation: usable.generation } : await this.read(id);
    this.launching.delete(id);
    if (!known || this.stopped) {
      if (usable) this.held.release(retainedBytes(usable.body));
      return this.pump();
    }
    this.schedule.forget(id);
    const record = known.state;
    const actor = this.createDelivery(record);
    this.active.set(id, actor);
    if (usable) this.firstBodies.set(id, { owner: actor, batch: usable });
    actor.subscribe({
      complete: () => {
        const output = actor.getSnapshot().output;
        if (output) void this.finish(known, output);
      },
      error: (error) => {
        this.options.logger.error({ batchId: id, err: (error as Error).message }, 'delivery actor failed');
        this.release(id);
      },
    });
    actor.start();
  }

  /** The record as read now, with the generation it was read on (undefined when it is gone). */
  private async read(id: string): Promise<KnownBatch | undefined> {
    const generation = this.options.spool.handle.generation;
    const state = await this.options.spool.batches.getState(id).catch(() => undefined);
    return state && { state, generation };
  }

  /** The handed-over body, for the first attempt of the delivery it was handed to; taken once. */
  private takeFirstBody(id: string): HandedBatch | undefined {
    const first = this.firstBodies.get(id);
    if (!first) return undefined;
    this.forgetFirstBody(id, first.batch);
    if (first.owner !== this.active.get(id) || !this.options.spool.handle.isSound(first.batch))
      return undefined;
    return first.batch;
  }

  private forgetFirstBody(id: string, batch: HandedBatch): void {
    this.firstBodies.delete(id);
    this.held.release(retainedBytes(batch.body));
  }

  private createDelivery(record: BatchState): DeliveryActor {
    const { policy, events } = this.options;
    const actor = createActor(this.machine, {
      input: {
        batchId: record.id,
        // a parked batch gets one more attempt per sweep
        attempts: record.parked ? Math.max(0, policy.maxAttempts - 1) : record.attempts,
        limiter: this.gate.permits,
        policy,
      },
      ...(this.options.inspect ? { inspect: this.options.inspect } : {}),
    });
    actor.on('sending', (e) => {
      this.breakerAtStart.set(e.batchId, this.gate.state);
      events.emit('sending', { batchId: e.batchId, attempt: e.attempt });
    });
    actor.on('attempt', (e) => void this.onAttempt(record, e));
    return actor;
  }

  private async onAttempt(record: BatchState, report: AttemptReport): Promise<void> {
    const { attempt, outcome, nextDelayMs } = report;
    const durationMs = outcome.durationMs ?? 0;
    const after = this.gate.state;
    const breaker = { atStart: this.breakerAtStart.get(record.id) ?? after, after };
    this.breakerAtStart.delete(record.id);
    this.options.events.emit('attempt', {
      batchId: record.id,
      attempt,
      outcome,
      durationMs,
      nextDelayMs,
      breaker,
    });
    this.refusals.note(outcome);
    await this.results.recordAttempt(record, report);
  }

  private async finish(known: KnownBatch, output: DeliveryOutput): Promise<void> {
    const parts = await this.results.apply(known.state, output, known);
    for (const id of parts) this.enqueue(id);
    this.release(known.state.id);
  }

  private release(id: string): void {
    const first = this.firstBodies.get(id);
    if (first) this.forgetFirstBody(id, first.batch);
    this.active.delete(id);
    this.breakerAtStart.delete(id);
    this.pump();
  }
}
