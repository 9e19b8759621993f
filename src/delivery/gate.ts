import { createActor, fromCallback, type ActorOptions, type AnyActorLogic, type AnyActorRef } from 'xstate';
import {
  breakerEventOf,
  breakerMachine,
  type BreakerInput,
  type BreakerStateName,
} from '../../machines/breaker.js';
import { limiterMachine, type LimiterEvent, type LimiterInput } from '../../machines/limiter.js';
import type { Outcome } from '../../machines/outcome.js';
import type { InspectionObserver } from '../observe/inspect/index.js';
import { breakerStatus, type BreakerStatus } from '../observe/status.js';

/**
 * The gate of one destination origin: its circuit breaker (may the origin be tried?) and its
 * concurrency limiter (how many requests at once), wired together. Deliveries send ACQUIRE,
 * RELEASE and CANCEL to `permits`; the gate hands each outcome to the breaker before the permit
 * goes back to the limiter (a permit freed by the failure that opens the circuit must not be handed
 * out again), passes the breaker's state changes to the limiter, and measured round trips too.
 * It decides nothing itself and never makes a request.
 */

/** `TRANSMITTER_CONCURRENCY`: a fixed number of requests at once, or adaptive. */
export type Concurrency = number | 'adaptive';

/** The upper bound of the adaptive limit (and the HTTP connections kept for it). */
const ADAPTIVE_MAX_CONCURRENCY = 64;

export function maxConcurrencyOf(concurrency: Concurrency): number {
  return concurrency === 'adaptive' ? ADAPTIVE_MAX_CONCURRENCY : concurrency;
}

export function limiterInputOf(concurrency: Concurrency): LimiterInput {
  return {
    mode: concurrency === 'adaptive' ? 'adaptive' : 'fixed',
    maxConcurrency: maxConcurrencyOf(concurrency),
  };
}

export interface CircuitChange {
  origin: string;
  from: BreakerStateName;
  to: BreakerStateName;
}

type Clock = NonNullable<ActorOptions<AnyActorLogic>['clock']>;

export interface GateOptions {
  breaker: BreakerInput;
  concurrency: Concurrency;
  onCircuitChange?(change: CircuitChange): void;
  /** the clock of the breaker's waits (tests: XState's SimulatedClock) */
  clock?: Clock;
  /** streams the breaker and limiter statecharts to a Stately inspector */
  inspect?: InspectionObserver;
}

export class Gate {
  readonly breaker;
  readonly limiter;
  /** the actor deliveries send ACQUIRE, RELEASE and CANCEL to; the limiter answers PERMIT */
  readonly permits: AnyActorRef;
  private circuit: BreakerStateName = 'closed';

  constructor(private readonly options: GateOptions) {
    const shared = {
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.inspect ? { inspect: options.inspect } : {}),
    };
    this.breaker = createActor(breakerMachine, { input: options.breaker, ...shared });
    this.limiter = createActor(limiterMachine, { input: limiterInputOf(options.concurrency), ...shared });
    this.breaker.subscribe((snapshot) => this.follow(snapshot.value as BreakerStateName));
    this.permits = createActor(
      fromCallback<LimiterEvent>(({ receive }) => receive((event) => this.route(event))),
    );
    this.limiter.start();
    this.breaker.start();
    this.permits.start();
  }

  get state(): BreakerStateName {
    return this.breaker.getSnapshot().value;
  }

  /** A finished request: its round trip counts when the destination accepted it. */
  report(outcome: Outcome, durationMs: number): void {
    if (outcome.kind === 'success') this.limiter.send({ type: 'RTT', rttMs: durationMs });
  }

  status(): BreakerStatus {
    return breakerStatus(this.breaker.getSnapshot(), this.limiter.getSnapshot());
  }

  /** Resolves when the breaker is open or paused: waiting for deliveries is then futile. */
  originDown(): Promise<void> {
    const down = () => this.state === 'open' || this.state === 'paused';
    if (down()) return Promise.resolve();
    return new Promise((resolve) => {
      const sub = this.breaker.subscribe(() => {
        if (!down()) return;
        sub.unsubscribe();
        resolve();
      });
    });
  }

  stop(): void {
    this.permits.stop();
    this.breaker.stop();
    this.limiter.stop();
  }

  private route(event: LimiterEvent): void {
    if (event.type === 'RELEASE') this.judge(event.ref, event.outcome);
    this.limiter.send(event);
  }

  /** The breaker hears the outcome of a permit still held (a duplicate RELEASE counts once). */
  private judge(ref: AnyActorRef, outcome: Outcome): void {
    const { holders, probe } = this.limiter.getSnapshot().context;
    if (holders.includes(ref)) this.breaker.send(breakerEventOf(outcome, probe === ref));
  }

  private follow(to: BreakerStateName): void {
    const from = this.circuit;
    if (to === from) return;
    this.circuit = to;
    this.limiter.send({ type: 'CIRCUIT', state: to });
    this.options.onCircuitChange?.({ origin: this.options.breaker.origin, from, to });
  }
}
