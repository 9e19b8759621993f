import type { AnyStateMachine } from 'xstate';

/**
 * Statechart views: a plain, JSON-safe graph read from a machine's real definition
 * (`machine.root`: state nodes, `initial`, `transitions`, `after`, `always`), and its Mermaid
 * `stateDiagram-v2` text. Pure functions: used by `batch-emitter machines` and by the /debug page.
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

/** The subset of xstate's StateNode that is read here (kept structural on purpose). */
interface NodeLike {
  key: string;
  path: string[];
  type: StateType;
  states: Record<string, NodeLike>;
  parent?: NodeLike;
  description?: string;
  initial?: { target?: ReadonlyArray<NodeLike> };
  config: { invoke?: unknown; entry?: unknown; exit?: unknown };
  transitions: Map<string, ReadonlyArray<TransitionLike>>;
  after: ReadonlyArray<{ eventType: string; delay: unknown }>;
  always?: ReadonlyArray<TransitionLike>;
}

interface TransitionLike {
  target?: ReadonlyArray<NodeLike> | undefined;
  guard?: unknown;
  actions: readonly unknown[];
  reenter?: boolean;
  eventType: string | null;
}

const nodeId = (node: NodeLike): string => node.path.join('.');

const COMBINATORS: Record<string, string> = { checkAnd: ' && ', checkOr: ' || ' };

/** `'full'`, `{type, params}` -> `lastOutcomeIs(kind=success)`, `and([...])` -> `a && b`. */
export function guardName(guard: unknown): string | undefined {
  if (guard === undefined || guard === null) return undefined;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    const g = guard as { check?: { name?: string }; guards?: unknown[]; name?: string };
    if (Array.isArray(g.guards)) {
      const parts = g.guards.map((inner) => guardName(inner) ?? '?');
      const check = g.check?.name ?? '';
      if (check === 'checkNot') return parts.length === 1 ? `!${parts[0]}` : `!(${parts.join(' || ')})`;
      const joiner = COMBINATORS[check] ?? ', ';
      return parts.length === 1 ? (parts[0] as string) : `(${parts.join(joiner)})`;
    }
    return g.name ? g.name : 'inline guard';
  }
  if (typeof guard === 'object') {
    const g = guard as { type?: unknown; params?: unknown };
    if (typeof g.type !== 'string') return 'guard';
    return `${g.type}${paramsText(g.params)}`;
  }
  return String(guard);
}

function paramsText(params: unknown): string {
  if (params === undefined || params === null) return '';
  if (typeof params === 'function') return '(…)';
  if (typeof params !== 'object') return `(${String(params)})`;
  const parts = Object.entries(params as Record<string, unknown>).map(([k, v]) =>
    typeof v === 'object' || typeof v === 'function' ? `${k}=…` : `${k}=${String(v)}`,
  );
  return `(${parts.join(', ')})`;
}

/** Action names: `'count'`, `{type:'seal', params:{trigger:'size'}}` -> `seal(trigger=size)`. */
export function actionName(action: unknown): string {
  if (typeof action === 'string') return action;
  if (typeof action === 'function') {
    const f = action as { type?: unknown; name?: string };
    if (typeof f.type === 'string') return f.type;
    return f.name ? f.name : 'inline action';
  }
  if (action && typeof action === 'object') {
    const a = action as { type?: unknown; params?: unknown };
    if (typeof a.type === 'string') return `${a.type}${paramsText(a.params)}`;
  }
  return 'action';
}

const asList = (raw: unknown): unknown[] => (raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]);

function invokeNames(node: NodeLike): string[] {
  return asList(node.config.invoke).map((inv) => {
    const i = inv as { id?: unknown; src?: unknown };
    const src = typeof i.src === 'string' ? i.src : 'inline actor';
    return typeof i.id === 'string' && i.id !== src ? `${i.id}: ${src}` : src;
  });
}

function delayName(delay: unknown): string {
  if (typeof delay === 'number') return `${delay}ms`;
  if (typeof delay === 'string') return /^\d+$/.test(delay) ? `${delay}ms` : delay;
  return 'delay';
}

function classify(
  node: NodeLike,
  event: string,
): Pick<GraphTransition, 'kind' | 'label'> & { delay?: string } {
  const after = node.after.find((a) => a.eventType === event);
  if (after) {
    const delay = delayName(after.delay);
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

function toTransition(
  source: NodeLike,
  t: TransitionLike,
  event: string,
  order: number,
  base: Pick<GraphTransition, 'kind' | 'label'> & { delay?: string },
): GraphTransition {
  const guard = guardName(t.guard);
  return {
    source: nodeId(source),
    targets: (t.target ?? []).map(nodeId),
    kind: base.kind,
    event,
    label: base.label,
    ...(guard !== undefined ? { guard } : {}),
    ...(base.delay !== undefined ? { delay: base.delay } : {}),
    actions: t.actions.map(actionName),
    reenter: Boolean(t.reenter),
    order,
  };
}

function transitionsOf(node: NodeLike): GraphTransition[] {
  const out: GraphTransition[] = [];
  for (const [event, list] of node.transitions) {
    const base = classify(node, event);
    list.forEach((t, i) => out.push(toTransition(node, t, event, i, base)));
  }
  (node.always ?? []).forEach((t, i) =>
    out.push(toTransition(node, t, '', i, { kind: 'always', label: 'always' })),
  );
  return out;
}

/** The graph of a machine's definition: every state node and every transition, in document order. */
export function machineToGraph(machine: AnyStateMachine): StateGraph {
  const root = machine.root as unknown as NodeLike;
  const states: GraphState[] = [];
  const transitions: GraphTransition[] = transitionsOf(root);
  const walk = (node: NodeLike): void => {
    for (const child of Object.values(node.states)) {
      const initial = child.type === 'compound' ? child.initial?.target?.[0] : undefined;
      states.push({
        id: nodeId(child),
        key: child.key,
        parent: child.parent && child.parent !== root ? nodeId(child.parent) : null,
        type: child.type,
        ...(initial ? { initial: nodeId(initial) } : {}),
        // from the config: the node's own lists also hold the timers xstate adds for `after`
        entry: asList(child.config.entry).map(actionName),
        exit: asList(child.config.exit).map(actionName),
        invoke: invokeNames(child),
        ...(child.description ? { description: child.description } : {}),
      });
      transitions.push(...transitionsOf(child));
      walk(child);
    }
  };
  walk(root);
  const initial = root.initial?.target?.[0];
  return { id: machine.id, initial: initial ? nodeId(initial) : null, states, transitions };
}

/** `event [guard] / actions`, the UML transition label. */
export function transitionLabel(t: GraphTransition, opts: { actions?: boolean } = {}): string {
  let label = t.label;
  if (t.guard !== undefined) label += ` [${t.guard}]`;
  if (opts.actions !== false && t.actions.length > 0) label += ` / ${t.actions.join(', ')}`;
  return label;
}

// ---------------------------------------------------------------------------------------------
// Mermaid

/** Mermaid state ids: letters, digits and '_' only; a nested path joins with '__'. */
export function mermaidId(stateId: string): string {
  return stateId.replace(/\./g, '__').replace(/[^A-Za-z0-9_]/g, '_');
}

/** Text safe inside a Mermaid transition label or note: no statement separators or entity codes. */
function mermaidText(text: string): string {
  return text.replace(/[;#\n\r]/g, ' ').replace(/:/g, '꞉');
}

export interface MermaidOptions {
  /** prefix a `---\ntitle: …\n---` front matter block (default false: starts with stateDiagram-v2) */
  title?: string;
  /** include action names in transition labels (default true) */
  actions?: boolean;
}

/**
 * The graph as a Mermaid `stateDiagram-v2`: `[*] --> initial`, one line per transition
 * (`source --> target : event [guard] / actions`; a targetless transition is a self-loop marked
 * "(internal)"), finals `--> [*]`, compound states as `state x { … }`, handlers of the machine
 * root as a note on the initial state.
 */
export function graphToMermaid(graph: StateGraph, opts: MermaidOptions = {}): string {
  const lines: string[] = [];
  if (opts.title !== undefined) lines.push('---', `title: ${mermaidText(opts.title)}`, '---');
  lines.push('stateDiagram-v2');
  lines.push(`  accTitle: ${mermaidText(opts.title ?? `${graph.id} statechart`)}`);
  const label = (t: GraphTransition): string => {
    const text = transitionLabel(t, { actions: opts.actions });
    return mermaidText(t.targets.length === 0 ? `${text} (internal)` : text);
  };
  const byParent = new Map<string | null, GraphState[]>();
  for (const s of graph.states) byParent.set(s.parent, [...(byParent.get(s.parent) ?? []), s]);

  const emitLevel = (parent: string | null, indent: string, initial: string | null): void => {
    const children = byParent.get(parent) ?? [];
    if (initial) lines.push(`${indent}[*] --> ${mermaidId(initial)}`);
    for (const s of children) {
      const id = mermaidId(s.id);
      if (s.key !== id) lines.push(`${indent}state "${mermaidText(s.key)}" as ${id}`);
      if (byParent.has(s.id)) {
        lines.push(`${indent}state ${id} {`);
        emitLevel(s.id, `${indent}  `, s.initial ?? null);
        lines.push(`${indent}}`);
      }
      if (s.type === 'final') lines.push(`${indent}${id} --> [*]`);
    }
    for (const s of children) {
      for (const t of graph.transitions.filter((x) => x.source === s.id)) {
        const targets = t.targets.length === 0 ? [s.id] : t.targets;
        for (const target of targets) {
          lines.push(`${indent}${mermaidId(s.id)} --> ${mermaidId(target)} : ${label(t)}`);
        }
      }
    }
  };
  emitLevel(null, '  ', graph.initial);

  const rootHandlers = graph.transitions.filter((t) => t.source === '');
  if (rootHandlers.length > 0 && graph.initial) {
    lines.push(`  note right of ${mermaidId(graph.initial)}`);
    lines.push('    in every state:');
    for (const t of rootHandlers) {
      const to = t.targets.length > 0 ? ` → ${t.targets.join(', ')}` : '';
      lines.push(`    ${label(t)}${mermaidText(to)}`);
    }
    lines.push('  end note');
  }
  return `${lines.join('\n')}\n`;
}
