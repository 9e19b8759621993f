import { transitionLabel, type GraphState, type GraphTransition, type StateGraph } from './statechart.js';

/**
 * A statechart graph drawn as a self-contained inline SVG, server-side, with no library: a layered
 * layout (states in rows from the initial state down, back edges curved), states as boxes,
 * transitions between different states as labelled arrows. Transitions that stay in their state
 * are listed inside the box (`↻` re-enters the state, `·` is internal: actions only), handlers of
 * the machine root under the drawing. Styling is by class (see the page's CSS); the SVG has no
 * `style` attributes, so it passes a strict Content-Security-Policy.
 *
 * Every state is a `<g class="state" data-state="<id>">`, which the page's script marks `active`.
 */

const FONT = 11;
const CHAR_W = 6.7; // monospace advance at 11px, a little generous
const TITLE_CHAR_W = 7.6;
const LINE_H = 14;
const PAD_X = 10;
const PAD_Y = 8;
const TITLE_H = 18;
const GAP_X = 56;
const MIN_GAP_Y = 64;
const MARGIN = 24;
const MAX_CHARS = 60;

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const clip = (text: string): string => (text.length > MAX_CHARS ? `${text.slice(0, MAX_CHARS - 1)}…` : text);
const fmt = (n: number): string => (Math.round(n * 10) / 10).toString();

/** `event [guard]` and, when there are actions, `/ actions` on a second line. */
function labelLines(t: GraphTransition): string[] {
  const head = transitionLabel(t, { actions: false });
  return t.actions.length > 0 ? [head, `/ ${t.actions.join(', ')}`] : [head];
}

interface Box {
  state: GraphState;
  lines: Array<{ text: string; full: string; cls: string }>;
  w: number;
  h: number;
  x: number;
  y: number;
  layer: number;
}

interface Point {
  x: number;
  y: number;
}

/**
 * Rows: the longest path from the initial state over the graph without its back edges. An edge
 * u -> v is a back edge when it closes a cycle (v reaches u) and does not move away from the
 * initial state (BFS distance of v <= that of u); every cycle has one, so the rest is acyclic.
 * Inside a row, states keep their document order.
 */
function layers(ids: string[], initial: string | null, edges: Array<[string, string]>): Map<string, number> {
  const out = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const [s, t] of edges) if (s !== t && out.has(t)) out.get(s)?.push(t);
  const reach = (from: string): Set<string> => {
    const seen = new Set<string>([from]);
    const stack = [from];
    while (stack.length > 0) {
      for (const t of out.get(stack.pop()!) ?? []) {
        if (!seen.has(t)) {
          seen.add(t);
          stack.push(t);
        }
      }
    }
    return seen;
  };
  const dist = new Map<string, number>();
  const bfs = (from: string, base: number): void => {
    dist.set(from, base);
    const queue = [from];
    while (queue.length > 0) {
      const id = queue.shift()!;
      for (const t of out.get(id) ?? []) {
        if (!dist.has(t)) {
          dist.set(t, (dist.get(id) ?? 0) + 1);
          queue.push(t);
        }
      }
    }
  };
  if (initial !== null && out.has(initial)) bfs(initial, 0);
  for (const id of ids) if (!dist.has(id)) bfs(id, Math.max(0, ...dist.values()) + 1);
  const reaches = new Map(ids.map((id) => [id, reach(id)]));
  const forward = edges.filter(
    ([s, t]) =>
      s !== t && out.has(t) && !(reaches.get(t)?.has(s) && (dist.get(t) ?? 0) <= (dist.get(s) ?? 0)),
  );
  const layer = new Map<string, number>(ids.map((id) => [id, 0]));
  for (let i = 0; i < ids.length; i++) {
    let changed = false;
    for (const [s, t] of forward) {
      const next = (layer.get(s) ?? 0) + 1;
      if (next > (layer.get(t) ?? 0)) {
        layer.set(t, next);
        changed = true;
      }
    }
    if (!changed) break;
  }
  return layer;
}

interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

function overlap(a: Rect, b: Rect): number {
  const w = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}

function boundary(box: Box, toward: Point): Point {
  const cx = box.x + box.w / 2;
  const cy = box.y + box.h / 2;
  const dx = toward.x - cx;
  const dy = toward.y - cy;
  if (dx === 0 && dy === 0) return { x: cx, y: cy };
  const sx = dx === 0 ? Infinity : box.w / 2 / Math.abs(dx);
  const sy = dy === 0 ? Infinity : box.h / 2 / Math.abs(dy);
  const s = Math.min(sx, sy);
  return { x: cx + dx * s, y: cy + dy * s };
}

export interface SvgOptions {
  /** shown as the SVG's <title> (default: "<id> statechart") */
  title?: string;
}

/**
 * The control point of a curved arrow between two boxes: bent off the straight line, and around
 * the boxes of the rows in between, on the nearer side.
 */
function bendPoint(s: Box, t: Box, reverse: boolean, all: Box[]): Point {
  const c0 = { x: s.x + s.w / 2, y: s.y + s.h / 2 };
  const c2 = { x: t.x + t.w / 2, y: t.y + t.h / 2 };
  const dx = c2.x - c0.x;
  const dy = c2.y - c0.y;
  const len = Math.hypot(dx, dy) || 1;
  const bend = reverse && Math.abs(t.layer - s.layer) === 1 ? 36 : 60;
  const mid = { x: (c0.x + c2.x) / 2 - (dy / len) * bend, y: (c0.y + c2.y) / 2 + (dx / len) * bend };
  const lo = Math.min(s.layer, t.layer);
  const hi = Math.max(s.layer, t.layer);
  const between = all.filter((b) => b.layer > lo && b.layer < hi);
  const midX = (c0.x + c2.x) / 2;
  const blocked = between.filter((b) => b.x - 12 < midX + 40 && b.x + b.w + 12 > midX - 40);
  if (blocked.length === 0) return mid;
  const left = Math.min(...blocked.map((b) => b.x)) - 28;
  const right = Math.max(...blocked.map((b) => b.x + b.w)) + 28;
  const clearX = midX - left < right - midX ? left : right;
  return { x: 2 * clearX - midX, y: (c0.y + c2.y) / 2 };
}

/** Where an arrow's label goes: the first place along the arrow that hides no box and no other label. */
function placeLabel(
  lines: string[],
  arrow: { at: (f: number) => Point; straight: boolean; ctrl: Point; chord: Point },
  all: Box[],
  placed: Rect[],
): { tip: Point; w: number; h: number } {
  const { at, straight, ctrl, chord } = arrow;
  // which way the curve bulges: labels of curved arrows sit on the outside
  const bulge = { x: Math.sign(Math.round(ctrl.x - chord.x)), y: Math.sign(Math.round(ctrl.y - chord.y)) };
  const w = Math.max(...lines.map((l) => l.length * CHAR_W)) + 8;
  const h = lines.length * (LINE_H - 1) + 4;
  // the first place along the arrow where the label hides no box and no other label
  let best: { tip: Point; cost: number } | undefined;
  const shifts: Point[] = straight
    ? [
        { x: 0, y: 0 },
        { x: w / 2 + 6, y: 0 },
        { x: -w / 2 - 6, y: 0 },
      ]
    : [
        Math.abs(ctrl.x - chord.x) >= Math.abs(ctrl.y - chord.y)
          ? { x: bulge.x * (w / 2 + 6), y: 0 }
          : { x: 0, y: bulge.y * (h / 2 + 4) },
        { x: 0, y: 0 },
      ];
  const candidates = [0.5, 0.4, 0.6, 0.3, 0.7, 0.22, 0.78, 0.15, 0.85].flatMap((f) =>
    shifts.map((d) => ({ x: at(f).x + d.x, y: at(f).y + d.y })),
  );
  for (const tip of candidates) {
    const rect = { x: tip.x - w / 2, y: tip.y - h / 2, w, h };
    const cost =
      all.reduce((c, b) => c + overlap(rect, b), 0) * 4 + placed.reduce((c, r) => c + overlap(rect, r), 0);
    if (!best || cost < best.cost) best = { tip, cost };
    if (cost === 0) break;
  }
  return { tip: best!.tip, w, h };
}

/** An arrow's label: a white backdrop and one text line each (actions in their own class). */
function drawLabel(lines: string[], tip: Point, r: Rect): string {
  return (
    `<g class="edge-label"><rect x="${fmt(r.x)}" y="${fmt(r.y)}" width="${fmt(r.w)}" height="${fmt(r.h)}" rx="3" fill="#ffffff" fill-opacity="0.9"/>` +
    lines
      .map(
        (line, i) =>
          `<text x="${fmt(tip.x)}" y="${fmt(r.y + 2 + (i + 1) * (LINE_H - 1) - 3)}" text-anchor="middle"` +
          `${line.startsWith('/ ') ? ' class="actions"' : ''}>${escapeXml(line)}</text>`,
      )
      .join('') +
    `</g>`
  );
}

/** A state's box: its name, then its meta lines and the transitions that stay in it. */
function measureBox(state: GraphState, transitions: GraphTransition[]): Box {
  const lines: Box['lines'] = [];
  const add = (text: string, cls: string): void => {
    lines.push({ text: clip(text), full: text, cls });
  };
  if (state.type === 'compound' && state.initial) add(`initial ${state.initial}`, 'meta');
  for (const a of state.entry) add(`entry / ${a}`, 'meta');
  for (const i of state.invoke) add(`invoke ${i}`, 'meta');
  for (const a of state.exit) add(`exit / ${a}`, 'meta');
  for (const t of transitions.filter((x) => x.source === state.id)) {
    const self = t.targets.length === 1 && t.targets[0] === state.id;
    if (t.targets.length > 0 && !self) continue;
    add(`${self ? '↻' : '·'} ${transitionLabel(t)}`, self ? 'self' : 'internal');
  }
  const textW = Math.max(state.key.length * TITLE_CHAR_W, ...lines.map((l) => l.text.length * CHAR_W));
  return {
    state,
    lines,
    w: Math.ceil(Math.max(90, textW + 2 * PAD_X)),
    h: TITLE_H + PAD_Y + lines.length * LINE_H + (lines.length > 0 ? 4 : 0),
    x: 0,
    y: 0,
    layer: 0,
  };
}

/** A state's box as SVG elements, in a group the page's script marks `active`. */
function drawBox(box: Box): string[] {
  const out: string[] = [];
  const { state } = box;
  const cls = `state ${state.type}`;
  out.push(
    `<g class="${cls}" data-state="${escapeXml(state.id)}"><title>${escapeXml(
      [`${state.id} (${state.type})`, ...box.lines.map((l) => l.full)].join('\n'),
    )}</title>`,
  );
  out.push(
    `<rect class="box" x="${fmt(box.x)}" y="${fmt(box.y)}" width="${box.w}" height="${box.h}" rx="8" fill="#f4f6fb" stroke="#4a5568" stroke-width="1.4"/>`,
  );
  if (state.type === 'final') {
    out.push(
      `<rect class="inner" x="${fmt(box.x + 3)}" y="${fmt(box.y + 3)}" width="${box.w - 6}" height="${box.h - 6}" rx="6" fill="none" stroke="#4a5568"/>`,
    );
  }
  out.push(
    `<text class="name" x="${fmt(box.x + box.w / 2)}" y="${fmt(box.y + PAD_Y + 10)}" text-anchor="middle" font-weight="bold" font-size="12">${escapeXml(state.key)}</text>`,
  );
  box.lines.forEach((line, i) => {
    out.push(
      `<text class="${line.cls}" x="${fmt(box.x + PAD_X)}" y="${fmt(box.y + TITLE_H + PAD_Y + i * LINE_H + 6)}">${escapeXml(line.text)}</text>`,
    );
  });
  out.push(
    `<text class="badge" x="${fmt(box.x + box.w - 6)}" y="${fmt(box.y + 14)}" text-anchor="end" font-weight="bold"></text></g>`,
  );
  return out;
}

/** The initial state's marker: a dot and an arrow into its box. */
function drawInitial(b: Box, prefix: string): string[] {
  const cx = b.x + b.w / 2;
  return [
    `<circle class="initial" cx="${fmt(cx)}" cy="${fmt(b.y - 26)}" r="6" fill="#222"/>`,
    `<path class="edge" d="M${fmt(cx)},${fmt(b.y - 20)} L${fmt(cx)},${fmt(b.y)}" stroke="#555" stroke-width="1.3" marker-end="url(#${prefix}-arrow)"/>`,
  ];
}

/** The graph as an `<svg>` element (a string), ready to inline into HTML. */
export function graphToSvg(graph: StateGraph, opts: SvgOptions = {}): string {
  const prefix = graph.id.replace(/[^A-Za-z0-9_-]/g, '_');
  const title = opts.title ?? `${graph.id} statechart`;
  const targeted = graph.transitions.filter((t) => t.source !== '' && t.targets.length > 0);

  // --- boxes
  const boxes = new Map<string, Box>();
  for (const state of graph.states) boxes.set(state.id, measureBox(state, graph.transitions));

  // --- layout
  const edgeList: Array<[string, string]> = [];
  for (const t of targeted) for (const target of t.targets) edgeList.push([t.source, target]);
  const layerOf = layers([...boxes.keys()], graph.initial, edgeList);
  const rows: string[][] = [];
  for (const [id, layer] of layerOf) {
    rows[layer] ??= [];
    rows[layer].push(id);
    const box = boxes.get(id);
    if (box) box.layer = layer;
  }
  // one barycentre pass: order each row by the mean position of its predecessors
  const position = new Map<string, number>();
  rows.forEach((row, r) => {
    if (r > 0) {
      const key = (id: string): number => {
        const preds = edgeList.filter(([s, t]) => t === id && position.has(s)).map(([s]) => position.get(s)!);
        return preds.length > 0 ? preds.reduce((a, b) => a + b, 0) / preds.length : Infinity;
      };
      const keyed = row.map((id, i) => ({ id, k: key(id), i }));
      keyed.sort((a, b) => (a.k === b.k ? a.i - b.i : a.k - b.k));
      row.splice(0, row.length, ...keyed.map((e) => e.id));
    }
    row.forEach((id, i) => position.set(id, i - (row.length - 1) / 2));
  });

  // label lines between consecutive rows decide the row gap
  const groups = new Map<string, { source: string; target: string; lines: string[]; full: string[] }>();
  for (const t of targeted) {
    for (const target of t.targets) {
      if (target === t.source) continue;
      const key = `${t.source}\u0000${target}`;
      const g = groups.get(key) ?? { source: t.source, target, lines: [], full: [] };
      for (const line of labelLines(t)) g.lines.push(clip(line));
      g.full.push(transitionLabel(t));
      groups.set(key, g);
    }
  }
  const rowWidths = rows.map(
    (row) => row.reduce((w, id) => w + (boxes.get(id)?.w ?? 0), 0) + GAP_X * (row.length - 1),
  );
  const width = Math.max(...rowWidths, 200) + 2 * MARGIN;
  let y = MARGIN + 30; // room for the initial dot
  rows.forEach((row, r) => {
    let x = (width - (rowWidths[r] ?? 0)) / 2;
    const rowH = Math.max(...row.map((id) => boxes.get(id)?.h ?? 0));
    for (const id of row) {
      const box = boxes.get(id)!;
      box.x = x;
      box.y = y + (rowH - box.h) / 2;
      x += box.w + GAP_X;
    }
    const crossing = [...groups.values()].filter(
      (g) => Math.min(layerOf.get(g.source) ?? 0, layerOf.get(g.target) ?? 0) === r,
    );
    const spanning = [...groups.values()].filter((g) => {
      const a = layerOf.get(g.source) ?? 0;
      const b = layerOf.get(g.target) ?? 0;
      return Math.min(a, b) <= r && Math.max(a, b) > r;
    });
    const labelH = Math.max(0, ...crossing.map((g) => g.lines.length)) * (LINE_H - 1);
    const totalH = spanning.reduce((n, g) => n + g.lines.length, 0) * (LINE_H - 1);
    y += rowH + Math.max(MIN_GAP_Y, labelH * 1.6 + 30, totalH + 24);
  });

  const rootHandlers = graph.transitions.filter((t) => t.source === '');
  const footer = [
    ...(rootHandlers.length > 0
      ? ['in every state:', ...rootHandlers.map((t) => `  ${transitionLabel(t)}`)]
      : []),
    '↻ re-enters the state   · internal: actions only',
  ];
  const footerY = y - MIN_GAP_Y + 28;
  const bottom = footerY + footer.length * LINE_H + MARGIN;

  // --- drawing
  const out: string[] = [];
  out.push(`<title id="${prefix}-title">${escapeXml(title)}</title>`);
  out.push(
    `<defs><marker id="${prefix}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">` +
      `<path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>`,
  );

  // edges first, boxes over them, labels last
  const labels: string[] = [];
  const placed: Rect[] = [];
  const curveXs: number[] = [];
  for (const g of groups.values()) {
    const s = boxes.get(g.source);
    const t = boxes.get(g.target);
    if (!s || !t) continue;
    const c0 = { x: s.x + s.w / 2, y: s.y + s.h / 2 };
    const c2 = { x: t.x + t.w / 2, y: t.y + t.h / 2 };
    const reverse = groups.has(`${g.target}\u0000${g.source}`);
    const straight = t.layer === s.layer + 1 && !reverse;
    const mid = straight
      ? { x: (c0.x + c2.x) / 2, y: (c0.y + c2.y) / 2 }
      : bendPoint(s, t, reverse, [...boxes.values()]);
    const p0 = boundary(s, straight ? c2 : mid);
    const p2 = boundary(t, straight ? c0 : mid);
    const ctrl = straight ? { x: (p0.x + p2.x) / 2, y: (p0.y + p2.y) / 2 } : mid;
    const chord = { x: (p0.x + p2.x) / 2, y: (p0.y + p2.y) / 2 };
    curveXs.push((p0.x + 2 * ctrl.x + p2.x) / 4);
    const at = (f: number): Point => ({
      x: (1 - f) * (1 - f) * p0.x + 2 * f * (1 - f) * ctrl.x + f * f * p2.x,
      y: (1 - f) * (1 - f) * p0.y + 2 * f * (1 - f) * ctrl.y + f * f * p2.y,
    });
    out.push(
      `<path class="edge" data-source="${escapeXml(g.source)}" data-target="${escapeXml(g.target)}" ` +
        `d="M${fmt(p0.x)},${fmt(p0.y)} Q${fmt(ctrl.x)},${fmt(ctrl.y)} ${fmt(p2.x)},${fmt(p2.y)}" ` +
        `fill="none" stroke="#555" stroke-width="1.3" marker-end="url(#${prefix}-arrow)">` +
        `<title>${escapeXml(`${g.source} → ${g.target}: ${g.full.join('; ')}`)}</title></path>`,
    );
    const { tip, w, h } = placeLabel(g.lines, { at, straight, ctrl, chord }, [...boxes.values()], placed);
    const top = tip.y - h / 2;
    placed.push({ x: tip.x - w / 2, y: top, w, h });
    labels.push(drawLabel(g.lines, tip, { x: tip.x - w / 2, y: top, w, h }));
  }

  const first = graph.initial === null ? undefined : boxes.get(graph.initial);
  if (first) out.push(...drawInitial(first, prefix));

  for (const box of boxes.values()) out.push(...drawBox(box));
  out.push(...labels);
  footer.forEach((line, i) => {
    out.push(
      `<text class="footer" x="${MARGIN}" y="${fmt(footerY + i * LINE_H)}" xml:space="preserve">${escapeXml(line)}</text>`,
    );
  });
  out.push('</svg>');
  // the drawing's extent: boxes, labels, curves' control points (a bound of the curve), footer
  const xs = [0, width, ...footer.map((l) => MARGIN + l.length * CHAR_W + MARGIN)];
  for (const b of boxes.values()) xs.push(b.x - MARGIN, b.x + b.w + MARGIN);
  for (const r of placed) xs.push(r.x - 8, r.x + r.w + 8);
  for (const x of curveXs) xs.push(x - 8, x + 8);
  const minX = Math.floor(Math.min(...xs));
  const w = Math.ceil(Math.max(...xs) - minX);
  const h = Math.ceil(bottom);
  const head =
    `<svg xmlns="http://www.w3.org/2000/svg" class="statechart" data-machine="${escapeXml(graph.id)}" ` +
    `viewBox="${minX} 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-labelledby="${prefix}-title" ` +
    `font-family="ui-monospace, Menlo, Consolas, monospace" font-size="${FONT}">`;
  return [head, ...out].join('\n');
}
