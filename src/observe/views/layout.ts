import type { ElkExtendedEdge, ElkLabel, ElkNode } from 'elkjs/lib/elk.bundled.js';
import { transitionLabel, type GraphState, type GraphTransition, type StateGraph } from './statechart.js';

/**
 * Where every part of a statechart drawing goes, computed by elkjs (the Eclipse Layout Kernel,
 * layered algorithm) in this process: states are nodes sized from their text, compound states are
 * nodes holding their children, each transition between different states is an edge whose label
 * ELK places itself so that it covers no node and no other label. Transitions that stay in their
 * state are text lines inside the state's box. The result holds absolute coordinates only; the
 * SVG is drawn from it (svg.ts). Computed once per graph and cached: the definitions never change.
 */

/** monospace text metrics at the drawing's sizes (a little generous: the box must hold the text) */
export const FONT = 11;
export const CHAR_W = 6.7;
export const TITLE_CHAR_W = 7.6;
export const LINE_H = 14;
export const PAD_X = 10;
export const PAD_Y = 8;
export const TITLE_H = 18;
const MAX_CHARS = 60;
const SPLIT_AT = 24;
const INITIAL_SIZE = 12;

export interface Point {
  x: number;
  y: number;
}

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface BoxLine {
  /** as drawn (clipped to MAX_CHARS) */
  text: string;
  /** unclipped, for the tooltip */
  full: string;
  /** meta (entry/exit/invoke/initial), self (re-enters) or internal (actions only) */
  cls: 'meta' | 'self' | 'internal';
}

export interface NodeLayout extends Rect {
  state: GraphState;
  lines: BoxLine[];
  /** whether it holds child states (drawn as a container, its lines under the title) */
  container: boolean;
}

export interface EdgeLayout {
  transition: GraphTransition;
  source: string;
  target: string;
  /** start, bend points, end */
  points: Point[];
  label?: Rect & { lines: string[] };
}

export interface InitialLayout {
  /** the parent state ('' for the machine) */
  parent: string;
  target: string;
  dot: Point;
  points: Point[];
}

export interface GraphLayout {
  width: number;
  height: number;
  nodes: NodeLayout[];
  edges: EdgeLayout[];
  initials: InitialLayout[];
}

const clip = (text: string): string => (text.length > MAX_CHARS ? `${text.slice(0, MAX_CHARS - 1)}…` : text);

/**
 * A transition's label lines: `event [guard]` (the guard on a line of its own when both are long),
 * then `/ actions` when there are any.
 */
export function labelLines(t: GraphTransition): string[] {
  const head = transitionLabel(t, { actions: false });
  const split = t.guard !== undefined && head.length > SPLIT_AT ? [t.label, `[${t.guard}]`] : [head];
  return (t.actions.length > 0 ? [...split, `/ ${t.actions.join(', ')}`] : split).map(clip);
}

export const textWidth = (lines: string[], charW = CHAR_W): number =>
  Math.max(0, ...lines.map((l) => l.length * charW));

/** A state's own lines: what it does on entry/exit, what it invokes, the transitions that stay in it. */
export function boxLines(state: GraphState, transitions: GraphTransition[]): BoxLine[] {
  const lines: BoxLine[] = [];
  const add = (text: string, cls: BoxLine['cls']): void => {
    lines.push({ text: clip(text), full: text, cls });
  };
  for (const a of state.entry) add(`entry / ${a}`, 'meta');
  for (const i of state.invoke) add(`invoke ${i}`, 'meta');
  for (const a of state.exit) add(`exit / ${a}`, 'meta');
  for (const t of transitions.filter((x) => x.source === state.id)) {
    const self = t.targets.length === 1 && t.targets[0] === state.id;
    if (t.targets.length > 0 && !self) continue;
    add(`${self ? '↻' : '·'} ${transitionLabel(t)}`, self ? 'self' : 'internal');
  }
  return lines;
}

/** The box size a state's text needs (for a container: its header, above the children). */
function boxSize(state: GraphState, lines: BoxLine[]): { w: number; h: number } {
  const text = Math.max(state.key.length * TITLE_CHAR_W, textWidth(lines.map((l) => l.text)));
  return {
    w: Math.ceil(Math.max(90, text + 2 * PAD_X)),
    h: TITLE_H + PAD_Y + lines.length * LINE_H + (lines.length > 0 ? 4 : 0),
  };
}

const LAYOUT_OPTIONS: Record<string, string> = {
  'elk.algorithm': 'layered',
  'elk.direction': 'DOWN',
  'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
  'elk.edgeRouting': 'ORTHOGONAL',
  'elk.edgeLabels.placement': 'CENTER',
  'elk.layered.nodePlacement.strategy': 'NETWORK_SIMPLEX',
  // layers follow the machine: depth first from the initial dot, so back edges point up
  'elk.layered.cycleBreaking.strategy': 'DEPTH_FIRST',
  'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
  'elk.spacing.nodeNode': '24',
  'elk.spacing.edgeEdge': '12',
  'elk.spacing.edgeNode': '18',
  'elk.spacing.edgeLabel': '4',
  'elk.spacing.labelNode': '8',
  'elk.layered.spacing.nodeNodeBetweenLayers': '36',
  'elk.layered.spacing.edgeNodeBetweenLayers': '16',
  'elk.layered.spacing.edgeEdgeBetweenLayers': '10',
  'elk.padding': '[top=16,left=16,bottom=16,right=16]',
  'elk.json.shapeCoords': 'ROOT',
  'elk.json.edgeCoords': 'ROOT',
};

const LABEL_PAD_X = 8;
const LABEL_LINE_H = LINE_H - 1;

function elkLabel(lines: string[]): ElkLabel {
  return {
    text: lines.join('\n'),
    width: Math.ceil(textWidth(lines) + LABEL_PAD_X),
    height: lines.length * LABEL_LINE_H + 4,
  };
}

const initialId = (parent: string): string => `${parent}#initial`;

/** The ELK graph of a statechart: nested nodes, one edge per transition target, one initial dot per level. */
function toElk(graph: StateGraph): {
  root: ElkNode;
  lines: Map<string, BoxLine[]>;
  edges: Map<string, EdgeLayout>;
} {
  const lines = new Map<string, BoxLine[]>();
  const nodes = new Map<string, ElkNode>();
  const root: ElkNode = { id: '', layoutOptions: LAYOUT_OPTIONS, children: [], edges: [] };
  const parentOf = (s: GraphState): ElkNode => (s.parent === null ? root : (nodes.get(s.parent) ?? root));
  const hasChildren = new Set(graph.states.map((s) => s.parent).filter((p): p is string => p !== null));
  for (const state of graph.states) {
    const own = boxLines(state, graph.transitions);
    lines.set(state.id, own);
    const size = boxSize(state, own);
    const node: ElkNode = hasChildren.has(state.id)
      ? {
          id: state.id,
          children: [],
          layoutOptions: {
            'elk.padding': `[top=${size.h + 14},left=14,bottom=14,right=14]`,
            'elk.nodeSize.constraints': 'MINIMUM_SIZE',
            'elk.nodeSize.minimum': `(${size.w}, ${size.h + 40})`,
          },
        }
      : { id: state.id, width: size.w, height: size.h };
    nodes.set(state.id, node);
    parentOf(state).children?.push(node);
  }
  // the initial dot of the machine and of each compound state, an edge into the initial child
  const initials: Array<[string, string]> = [];
  if (graph.initial !== null) initials.push(['', graph.initial]);
  for (const s of graph.states) if (s.initial && hasChildren.has(s.id)) initials.push([s.id, s.initial]);
  for (const [parent, target] of initials) {
    const container = parent === '' ? root : nodes.get(parent);
    container?.children?.unshift({ id: initialId(parent), width: INITIAL_SIZE, height: INITIAL_SIZE });
    root.edges?.push({ id: `init:${parent}`, sources: [initialId(parent)], targets: [target] });
  }
  const edges = new Map<string, EdgeLayout>();
  graph.transitions.forEach((t, i) => {
    if (t.source === '') return; // root handlers: listed under the drawing
    t.targets.forEach((target, j) => {
      if (target === t.source || !nodes.has(target)) return; // stays: a line in the box
      const id = `t${i}.${j}`;
      const label = labelLines(t);
      const edge: ElkExtendedEdge = { id, sources: [t.source], targets: [target], labels: [elkLabel(label)] };
      root.edges?.push(edge);
      edges.set(id, { transition: t, source: t.source, target, points: [] });
    });
  });
  return { root, lines, edges };
}

function sectionPoints(edge: ElkExtendedEdge): Point[] {
  return (edge.sections ?? []).flatMap((s) => [s.startPoint, ...(s.bendPoints ?? []), s.endPoint]);
}

type Elk = { layout(root: ElkNode): Promise<ElkNode> };
let elk: Promise<Elk> | undefined;

/**
 * Loaded on the first drawing, not at start-up: compiling elkjs costs the process ~35 MB of RSS,
 * which only an operator opening /debug should pay. A CommonJS module: its `default` export is
 * the constructor (the type declarations say so too).
 */
function loadElk(): Promise<Elk> {
  elk ??= import('elkjs/lib/elk.bundled.js').then((mod) => new mod.default.default());
  return elk;
}

async function computeLayout(graph: StateGraph): Promise<GraphLayout> {
  const { root, lines, edges } = toElk(graph);
  const done = await (await loadElk()).layout(root);
  const nodes: NodeLayout[] = [];
  const byState = new Map(graph.states.map((s) => [s.id, s]));
  const walk = (node: ElkNode): void => {
    for (const child of node.children ?? []) {
      const state = byState.get(child.id);
      if (state) {
        nodes.push({
          state,
          lines: lines.get(state.id) ?? [],
          container: (child.children ?? []).length > 0,
          x: child.x ?? 0,
          y: child.y ?? 0,
          w: child.width ?? 0,
          h: child.height ?? 0,
        });
      }
      walk(child);
    }
  };
  walk(done);
  const initials: InitialLayout[] = [];
  const dots = new Map<string, Point>();
  const findDots = (node: ElkNode): void => {
    for (const child of node.children ?? []) {
      if (child.id.endsWith('#initial')) {
        dots.set(child.id, { x: (child.x ?? 0) + INITIAL_SIZE / 2, y: (child.y ?? 0) + INITIAL_SIZE / 2 });
      }
      findDots(child);
    }
  };
  findDots(done);
  const outEdges: EdgeLayout[] = [];
  for (const e of done.edges ?? []) {
    const points = sectionPoints(e);
    if (e.id.startsWith('init:')) {
      const parent = e.id.slice('init:'.length);
      const dot = dots.get(initialId(parent));
      if (dot) initials.push({ parent, target: e.targets[0] ?? '', dot, points });
      continue;
    }
    const edge = edges.get(e.id);
    if (!edge) continue;
    const l = e.labels?.[0];
    outEdges.push({
      ...edge,
      points,
      ...(l
        ? {
            label: {
              x: l.x ?? 0,
              y: l.y ?? 0,
              w: l.width ?? 0,
              h: l.height ?? 0,
              lines: (l.text ?? '').split('\n'),
            },
          }
        : {}),
    });
  }
  return { width: done.width ?? 0, height: done.height ?? 0, nodes, edges: outEdges, initials };
}

const cache = new WeakMap<StateGraph, Promise<GraphLayout>>();

/** The layout of a graph, computed once per graph object (the machines' graphs are cached too). */
export function layoutGraph(graph: StateGraph): Promise<GraphLayout> {
  let layout = cache.get(graph);
  if (!layout) {
    layout = computeLayout(graph);
    cache.set(graph, layout);
    layout.catch(() => cache.delete(graph));
  }
  return layout;
}
