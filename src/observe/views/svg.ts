import {
  CHAR_W,
  FONT,
  LINE_H,
  PAD_X,
  PAD_Y,
  TITLE_H,
  layoutGraph,
  type EdgeLayout,
  type GraphLayout,
  type InitialLayout,
  type NodeLayout,
  type Point,
} from './layout.js';
import { transitionLabel, type StateGraph } from './statechart.js';

/**
 * A statechart drawn as a self-contained inline SVG, server-side, from the coordinates elkjs
 * computed (layout.ts): states as boxes (compound states as boxes holding their children),
 * transitions between different states as arrows along the layout's edge sections with their
 * labels where the layout put them. Transitions that stay in their state are listed inside the box
 * (`↻` re-enters the state, `·` is internal: actions only), handlers of the machine root under the
 * drawing. Styling is by class (see the page's CSS); the SVG has no `style` attributes, so it
 * passes a strict Content-Security-Policy.
 *
 * Every state is a `<g class="state" data-state="<id>">`, which the page's script marks `active`.
 */

const MARGIN = 8;

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const fmt = (n: number): string => (Math.round(n * 10) / 10).toString();

export interface SvgOptions {
  /** shown as the SVG's <title> (default: "<id> statechart") */
  title?: string;
}

/** A polyline through the layout's points, its corners rounded. */
function pathOf(points: Point[]): string {
  const [first, ...rest] = points;
  if (!first) return '';
  const out = [`M${fmt(first.x)},${fmt(first.y)}`];
  rest.forEach((p, i) => {
    const prev = points[i] as Point;
    const next = rest[i + 1];
    if (!next) {
      out.push(`L${fmt(p.x)},${fmt(p.y)}`);
      return;
    }
    const r = Math.min(
      6,
      Math.hypot(p.x - prev.x, p.y - prev.y) / 2,
      Math.hypot(next.x - p.x, next.y - p.y) / 2,
    );
    const toward = (q: Point, d: number): Point => {
      const len = Math.hypot(q.x - p.x, q.y - p.y) || 1;
      return { x: p.x + ((q.x - p.x) / len) * d, y: p.y + ((q.y - p.y) / len) * d };
    };
    const a = toward(prev, r);
    const b = toward(next, r);
    out.push(`L${fmt(a.x)},${fmt(a.y)}`, `Q${fmt(p.x)},${fmt(p.y)} ${fmt(b.x)},${fmt(b.y)}`);
  });
  return out.join(' ');
}

/** An arrow and its label (a white backdrop and one text line each, actions in their own class). */
function drawEdge(edge: EdgeLayout, prefix: string): { path: string; label: string } {
  const full = transitionLabel(edge.transition);
  const path =
    `<path class="edge" data-source="${escapeXml(edge.source)}" data-target="${escapeXml(edge.target)}" ` +
    `d="${pathOf(edge.points)}" fill="none" stroke="#555" stroke-width="1.3" marker-end="url(#${prefix}-arrow)">` +
    `<title>${escapeXml(`${edge.source} → ${edge.target}: ${full}`)}</title></path>`;
  const l = edge.label;
  if (!l) return { path, label: '' };
  const label =
    `<g class="edge-label" data-source="${escapeXml(edge.source)}" data-target="${escapeXml(edge.target)}">` +
    `<rect x="${fmt(l.x)}" y="${fmt(l.y)}" width="${fmt(l.w)}" height="${fmt(l.h)}" rx="3" fill="#ffffff" fill-opacity="0.9"/>` +
    l.lines
      .map(
        (line, i) =>
          `<text x="${fmt(l.x + l.w / 2)}" y="${fmt(l.y + 2 + (i + 1) * (LINE_H - 1) - 3)}" text-anchor="middle"` +
          `${line.startsWith('/ ') ? ' class="actions"' : ''}>${escapeXml(line)}</text>`,
      )
      .join('') +
    `</g>`;
  return { path, label };
}

/** A state's box as SVG elements, in a group the page's script marks `active`. */
function drawNode(node: NodeLayout): string {
  const { state } = node;
  const out: string[] = [];
  out.push(
    `<g class="state ${state.type}${node.container ? ' container' : ''}" data-state="${escapeXml(state.id)}">` +
      `<title>${escapeXml([`${state.id} (${state.type})`, ...node.lines.map((l) => l.full)].join('\n'))}</title>`,
  );
  out.push(
    `<rect class="box" x="${fmt(node.x)}" y="${fmt(node.y)}" width="${fmt(node.w)}" height="${fmt(node.h)}" rx="8" fill="#f4f6fb" stroke="#4a5568" stroke-width="1.4"/>`,
  );
  if (state.type === 'final') {
    out.push(
      `<rect class="inner" x="${fmt(node.x + 3)}" y="${fmt(node.y + 3)}" width="${fmt(node.w - 6)}" height="${fmt(node.h - 6)}" rx="6" fill="none" stroke="#4a5568"/>`,
    );
  }
  const titleX = node.container ? node.x + PAD_X : node.x + node.w / 2;
  out.push(
    `<text class="name" x="${fmt(titleX)}" y="${fmt(node.y + PAD_Y + 10)}"${node.container ? '' : ' text-anchor="middle"'} font-weight="bold" font-size="12">${escapeXml(state.key)}</text>`,
  );
  node.lines.forEach((line, i) => {
    out.push(
      `<text class="${line.cls}" x="${fmt(node.x + PAD_X)}" y="${fmt(node.y + TITLE_H + PAD_Y + i * LINE_H + 6)}">${escapeXml(line.text)}</text>`,
    );
  });
  out.push(
    `<text class="badge" x="${fmt(node.x + node.w - 6)}" y="${fmt(node.y + 14)}" text-anchor="end" font-weight="bold"></text></g>`,
  );
  return out.join('');
}

/** An initial state's marker: a dot and an arrow into its box. */
function drawInitial(initial: InitialLayout, prefix: string): string {
  return (
    `<circle class="initial" cx="${fmt(initial.dot.x)}" cy="${fmt(initial.dot.y)}" r="6" fill="#222"/>` +
    `<path class="edge initial" d="${pathOf(initial.points)}" fill="none" stroke="#555" stroke-width="1.3" marker-end="url(#${prefix}-arrow)"/>`
  );
}

/** The graph, laid out, as an `<svg>` element (a string), ready to inline into HTML. */
export function layoutToSvg(graph: StateGraph, layout: GraphLayout, opts: SvgOptions = {}): string {
  const prefix = graph.id.replace(/[^A-Za-z0-9_-]/g, '_');
  const title = opts.title ?? `${graph.id} statechart`;
  const rootHandlers = graph.transitions.filter((t) => t.source === '');
  const footer = [
    ...(rootHandlers.length > 0
      ? ['in every state:', ...rootHandlers.map((t) => `  ${transitionLabel(t)}`)]
      : []),
    '↻ re-enters the state   · internal: actions only',
  ];
  const footerY = layout.height + 4;
  const width = Math.ceil(
    Math.max(layout.width, 2 * MARGIN + Math.max(...footer.map((l) => l.length * CHAR_W))),
  );
  const height = Math.ceil(footerY + footer.length * LINE_H + MARGIN);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="statechart" data-machine="${escapeXml(graph.id)}" ` +
      `viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-labelledby="${prefix}-title" ` +
      `font-family="ui-monospace, Menlo, Consolas, monospace" font-size="${FONT}">`,
  );
  out.push(`<title id="${prefix}-title">${escapeXml(title)}</title>`);
  out.push(
    `<defs><marker id="${prefix}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">` +
      `<path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>`,
  );
  // containers first, then edges, the boxes over them, labels last
  for (const node of layout.nodes.filter((n) => n.container)) out.push(drawNode(node));
  const drawn = layout.edges.map((e) => drawEdge(e, prefix));
  for (const d of drawn) out.push(d.path);
  for (const i of layout.initials) out.push(drawInitial(i, prefix));
  for (const node of layout.nodes.filter((n) => !n.container)) out.push(drawNode(node));
  for (const d of drawn) if (d.label) out.push(d.label);
  footer.forEach((line, i) => {
    out.push(
      `<text class="footer" x="${MARGIN + PAD_X}" y="${fmt(footerY + i * LINE_H + 10)}" xml:space="preserve">${escapeXml(line)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}

/** The graph as an `<svg>` element: laid out by elkjs (once per graph), then drawn. */
export async function graphToSvg(graph: StateGraph, opts: SvgOptions = {}): Promise<string> {
  return layoutToSvg(graph, await layoutGraph(graph), opts);
}
