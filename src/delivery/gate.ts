import { createActor, type Actor, type AnyActorRef } from 'xstate';
import { breakerMachine } from '../../machines/breaker.js';
import type { EmitterEvents } from '../observe/events.js';
import type { Logger } from '../util/logger.js';

/**
 * The gate in front of the destination origin: the one place the delivery queue meets the breaker
 * statechart (permits, circuit, Retry-After pause). Delivery machines talk to `ref` themselves
 * (ACQUIRE before each attempt, RELEASE with the outcome); the gate never sends a batch.
 */

export interface GateOptions {
  origin: string;
  logger: Logger;
  events: EmitterEvents;
  circuit: { failureThreshold: number; resetTimeoutMs: number };
  /** cap of the reset timeout and of a Retry-After pause */
  maxWaitMs: number;
  concurrency: number;
}

export type Breaker = Actor<typeof breakerMachine>;

export interface DeliveryGate {
  /** the actor the delivery machines ask for permits */
  readonly ref: AnyActorRef;
  /** the breaker actor, for status and /debug */
  readonly breaker: Breaker;
  /** resolves once the origin is open or paused: waiting for deliveries is then futile */
  originDown(): Promise<void>;
  stop(): void;
}

function startBreaker(options: GateOptions): Breaker {
  const breaker = createActor(breakerMachine, {
    input: {
      origin: options.origin,
      failureThreshold: options.circuit.failureThreshold,
      resetTimeoutMs: options.circuit.resetTimeoutMs,
      maxResetTimeoutMs: Math.max(options.maxWaitMs, options.circuit.resetTimeoutMs),
      maxConcurrency: options.concurrency,
    },
  });
  breaker.on('stateChanged', (e) => {
    options.logger.warn({ origin: e.origin, from: e.from, to: e.to }, `breaker ${e.to}`);
    options.events.emit('breaker', { origin: e.origin, from: e.from, to: e.to });
  });
  return breaker.start();
}

export function createGate(options: GateOptions): DeliveryGate {
  const breaker = startBreaker(options);
  const down = () => ['open', 'paused'].includes(String(breaker.getSnapshot().value));
  return {
    ref: breaker,
    breaker,
    originDown: () =>
      new Promise((resolve) => {
        if (down()) return resolve();
        const sub = breaker.subscribe(() => {
          if (!down()) return;
          sub.unsubscribe();
          resolve();
        });
      }),
    stop: () => breaker.stop(),
  };
}
