import type { AnyStateMachine } from 'xstate';
import { breakerMachine } from '../../../machines/breaker.js';
import { bufferMachine } from '../../../machines/buffer.js';
import { deliveryMachine } from '../../../machines/delivery.js';
import { limiterMachine } from '../../../machines/limiter.js';
import { machineToGraph, type StateGraph } from './statechart.js';

/** The emitter's four statecharts, by name, with a one-line description each. */

export const MACHINE_NAMES = ['buffer', 'delivery', 'breaker', 'limiter'] as const;
export type MachineName = (typeof MACHINE_NAMES)[number];

export const MACHINES: Record<MachineName, { machine: AnyStateMachine; title: string }> = {
  buffer: { machine: bufferMachine, title: 'buffer — when the open batch is sealed' },
  delivery: { machine: deliveryMachine, title: 'delivery — one spooled batch, attempt by attempt' },
  breaker: { machine: breakerMachine, title: 'breaker — whether the destination origin may be tried' },
  limiter: {
    machine: limiterMachine,
    title: 'limiter — permits to the destination origin, how many at once',
  },
};

let graphs: Record<MachineName, StateGraph> | undefined;

/** The graphs of the real machine definitions (computed once). */
export function machineGraphs(): Record<MachineName, StateGraph> {
  graphs ??= {
    buffer: machineToGraph(bufferMachine),
    delivery: machineToGraph(deliveryMachine),
    breaker: machineToGraph(breakerMachine),
    limiter: machineToGraph(limiterMachine),
  };
  return graphs;
}
