import type { AnyStateMachine } from 'xstate';
import { breakerMachine } from '../../../machines/breaker.js';
import { bufferMachine } from '../../../machines/buffer.js';
import { deliveryMachine } from '../../../machines/delivery.js';
import { limiterMachine } from '../../../machines/limiter.js';
import { machineToGraph, type StateGraph } from './statechart.js';

/**
 * The emitter's statecharts as one list, in the order they are shown: every view (`batch-emitter
 * machines`, /debug, /debug/machines) loops over it, so a new machine is one entry here. Reads
 * definitions only; never starts an actor.
 */

export interface MachineEntry {
  /** the name the CLI's --machine and the JSON views use */
  name: string;
  machine: AnyStateMachine;
  /** a one-line description */
  title: string;
  /** the heading of its section on the /debug page */
  heading: string;
}

export const MACHINES: readonly MachineEntry[] = [
  {
    name: 'buffer',
    machine: bufferMachine,
    title: 'buffer — when the open batch is sealed',
    heading: 'Buffer',
  },
  {
    name: 'delivery',
    machine: deliveryMachine,
    title: 'delivery — one spooled batch, attempt by attempt',
    heading: 'Deliveries',
  },
  {
    name: 'breaker',
    machine: breakerMachine,
    title: 'breaker — whether the destination origin may be tried',
    heading: 'Breaker',
  },
  {
    name: 'limiter',
    machine: limiterMachine,
    title: 'limiter — permits to the destination origin, how many at once',
    heading: 'Limiter',
  },
];

export const MACHINE_NAMES: readonly string[] = MACHINES.map((m) => m.name);

let graphs: Record<string, StateGraph> | undefined;

/** The graphs of the real machine definitions, by name (computed once). */
export function machineGraphs(): Record<string, StateGraph> {
  graphs ??= Object.fromEntries(MACHINES.map((m) => [m.name, machineToGraph(m.machine)]));
  return graphs;
}
