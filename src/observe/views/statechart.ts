import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { toDirectedGraph, type DirectedGraphNode } from 'xstate/graph';
import { actionName, asList, delayName, guardName, invokeNames } from './names.js';

/**
 * Statechart views: a plain, JSON-safe graph of a machine's real definition, built from xstate's
 * own directed graph (`toDirectedGraph` of `xstate/graph`: state nodes and one edge per transition
 * target). Pure functions, for `batch-emitter machines` and the /debug page; they never run a
 * machine. What the directed graph leaves out is read from the public transition objects it
 * carries: guards, actions, `after` delays and `reenter`; eventless `always` transitions (not
 * edges of the graph) from their state node.
 */

export type StateType = 'atomic' | 'compound' | 'parallel' | 'final' | 'history';

/**
 * `on`: an event handler; `after`: a delayed transition (`delay` names the delay);
 * `always`: an eventless transition; `done` / `error`: an invoked actor finished / failed
 * (`invoke` names its id); `doneState`: a compound state reached its final child.
 */
export type TransitionKind = 'on' | 'after' | 'always' | 'done' | 'error' | 'doneState';

export interface GraphState {
  /** the state's path joined with '.', e.g. `filling` or `parent.child`; '' is the root */
  id: string;
  key: string;
  /** parent id, null for top-level states */
  parent: string | null;
  type: StateType;
  /** id of the initial child of a compound state */
  initial?: string;
  /** entry / exit action names, invoked actor sources */
  entry: string[];
  exit: string[];
  invoke: string[];
  description?: string;
}

export interface GraphTransition {
  /** source state id ('' = the machine root: handled in every state) */
  source: string;
  /** target state ids; empty for a targetless transition (actions only, no state change) */
  targets: string[];
  kind: TransitionKind;
  /** the event name as the machine sees it (`xstate.after.…` for delays, '' for `always`) */
  event: string;
  /** a readable event label: `ADD`, `after interval`, `always`, `onDone send`, `onError send` */
  label: string;
  guard?: string;
  /** `after` only: the delay's name (or `<n>ms` for a literal delay) */
  delay?: string;
  actions: string[];
  reenter: boolean;
  /** position among the candidates for the same event in the same state (guards are tried in order) */
  order: number;
}

export interface StateGraph {
  /** machine id */
  id: string;
  /** id of the top-level initial state */
  initial: string | null;
  /** every state node except the root, in document order */
  states: GraphState[];
  transitions: GraphTransition[];
}

type Kind = Pick<GraphTransition, 'kind' | 'label'> & { delay?: string };
type TransitionDef = NonNullable<AnyStateNode['always']>[number];

const stateId = (node: AnyStateNode): string => node.path.join('.');

/** after / onDone / onError / done / on, from the event type xstate gives the transition */
function classify(t: TransitionDef): Kind {
  const event = t.eventType;
  if (event.startsWith('xstate.after.')) {
    const delay = delayName((t as { delay?: unknown }).delay);
    return { kind: 'after', label: `after ${delay}`, delay };
  }
  const actor = /^xstate\.(done|error)\.actor\.(.+)$/.exec(event);
  if (actor) {
    const done = actor[1] === 'done';
    return { kind: done ? 'done' : 'error', label: `${done ? 'onDone' : 'onError'} ${actor[2] ?? ''}` };
  }
  if (event.startsWith('xstate.done.state.')) return { kind: 'doneState', label: 'done' };
  return { kind: 'on', label: event };
}

function toTransition(t: TransitionDef, event: string, order: number, kind: Kind): GraphTransition {
  const guard = guardName(t.guard);
  return {
    source: stateId(t.source),
    targets: (t.target ?? []).map(stateId),
    kind: kind.kind,
    event,
    label: kind.label,
    ...(guard !== undefined ? { guard } : {}),
    ...(kind.delay !== undefined ? { delay: kind.delay } : {}),
    actions: t.actions.map(actionName),
    reenter: Boolean(t.reenter),
    order,
  };
}

/**
 * A node's transitions: its edges grouped back into transitions (an edge per target; a targetless
 * transition is an edge back to its source), numbered per event in the order guards are tried,
 * then its eventless `always` transitions.
 */
function transitionsOf(node: DirectedGraphNode): GraphTransition[] {
  const out: GraphTransition[] = [];
  const seen = new Set<TransitionDef>();
  const tried = new Map<string, number>();
  for (const { transition } of node.edges) {
    if (seen.has(transition)) continue;
    seen.add(transition);
    const order = tried.get(transition.eventType) ?? 0;
    tried.set(transition.eventType, order + 1);
    out.push(toTransition(transition, transition.eventType, order, classify(transition)));
  }
  (node.stateNode.always ?? []).forEach((t, i) =>
    out.push(toTransition(t, '', i, { kind: 'always', label: 'always' })),
  );
  return out;
}

function toState(node: AnyStateNode, root: AnyStateNode): GraphState {
  const initial = node.type === 'compound' ? node.initial.target[0] : undefined;
  return {
    id: stateId(node),
    key: node.key,
    parent: node.parent && node.parent !== root ? stateId(node.parent) : null,
    type: node.type,
    ...(initial ? { initial: stateId(initial) } : {}),
    // from the config: the node's own lists also hold the timers xstate adds for `after`
    entry: asList(node.config.entry).map(actionName),
    exit: asList(node.config.exit).map(actionName),
    invoke: invokeNames(node.config.invoke),
    ...(node.description ? { description: node.description } : {}),
  };
}

/** The graph of a machine's definition: every state node and every transition, in document order. */
export function machineToGraph(machine: AnyStateMachine): StateGraph {
  const root = toDirectedGraph(machine);
  const states: GraphState[] = [];
  const transitions: GraphTransition[] = transitionsOf(root);
  const walk = (node: DirectedGraphNode): void => {
    for (const child of node.children) {
      states.push(toState(child.stateNode, root.stateNode));
      transitions.push(...transitionsOf(child));
      walk(child);
    }
  };
  walk(root);
  const initial = root.stateNode.initial?.target[0];
  return { id: machine.id, initial: initial ? stateId(initial) : null, states, transitions };
}

/** `event [guard] / actions`, the UML transition label. */
export function transitionLabel(t: GraphTransition, opts: { actions?: boolean } = {}): string {
  let label = t.label;
  if (t.guard !== undefined) label += ` [${t.guard}]`;
  if (opts.actions !== false && t.actions.length > 0) label += ` / ${t.actions.join(', ')}`;
  return label;
}
