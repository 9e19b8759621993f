/** A hand-drawn SVG chart: one panel per phase, throughput (left axis) and memory (right axis) over time. */

export interface ChartPoint {
  /** seconds since the phase started */
  t: number;
  /** events/s delivered at the sink */
  rate: number;
  /** emitter RSS, MB */
  rssMB: number;
  /** spool directory size, MB */
  spoolMB?: number;
  /** V8 heap used, MB */
  heapMB?: number;
}

export interface ChartPanel {
  title: string;
  points: ChartPoint[];
  /** shaded interval, seconds (e.g. the sink outage) */
  shade?: { from: number; to: number; label: string };
  /** horizontal reference on the rate axis (e.g. the offered rate) */
  reference?: { rate: number; label: string };
}

const W = 960;
const H = 250;
const M = { left: 70, right: 70, top: 30, bottom: 36 };
const COLORS = { rate: '#1f77b4', rss: '#d62728', spool: '#2ca02c', heap: '#9467bd', ref: '#7f7f7f' };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A "nice" axis maximum and step for 4-6 ticks. */
function niceScale(max: number): { max: number; step: number } {
  if (!(max > 0)) return { max: 1, step: 0.25 };
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  return { max: Math.ceil(max / step) * step, step };
}

const fmtNum = (v: number) =>
  v >= 1000 ? `${Math.round(v / 100) / 10}k` : Number.isInteger(v) ? String(v) : v.toFixed(1);

function panel(p: ChartPanel, y0: number): string {
  const iw = W - M.left - M.right;
  const ih = H - M.top - M.bottom;
  const tMax = Math.max(1, ...p.points.map((q) => q.t));
  const rate = niceScale(Math.max(p.reference?.rate ?? 0, ...p.points.map((q) => q.rate)) * 1.05);
  const mem = niceScale(Math.max(...p.points.map((q) => Math.max(q.rssMB, q.spoolMB ?? 0))) * 1.05);
  const tScale = niceScale(tMax);
  const x = (t: number) => M.left + (t / tMax) * iw;
  const yR = (v: number) => y0 + M.top + ih - (v / rate.max) * ih;
  const yM = (v: number) => y0 + M.top + ih - (v / mem.max) * ih;
  const out: string[] = [];
  out.push(`<text x="${M.left}" y="${y0 + 18}" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
  if (p.shade) {
    const a = x(Math.max(0, p.shade.from));
    const b = x(Math.min(tMax, p.shade.to));
    out.push(
      `<rect x="${a}" y="${y0 + M.top}" width="${Math.max(0, b - a)}" height="${ih}" fill="#f4cccc" opacity="0.6"/>`,
    );
    out.push(
      `<text x="${a + 4}" y="${y0 + M.top + 14}" font-size="11" fill="#990000">${esc(p.shade.label)}</text>`,
    );
  }
  // grid and axes
  for (let v = 0; v <= rate.max + 1e-9; v += rate.step) {
    const y = yR(v);
    out.push(`<line x1="${M.left}" x2="${M.left + iw}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(
      `<text x="${M.left - 6}" y="${y + 4}" font-size="11" text-anchor="end" fill="${COLORS.rate}">${fmtNum(v)}</text>`,
    );
  }
  for (let v = 0; v <= mem.max + 1e-9; v += mem.step) {
    out.push(
      `<text x="${M.left + iw + 6}" y="${yM(v) + 4}" font-size="11" fill="${COLORS.rss}">${fmtNum(v)}</text>`,
    );
  }
  for (let t = 0; t <= tMax + 1e-9; t += tScale.step) {
    out.push(
      `<text x="${x(t)}" y="${y0 + M.top + ih + 16}" font-size="11" text-anchor="middle">${fmtNum(t)}</text>`,
    );
  }
  out.push(`<rect x="${M.left}" y="${y0 + M.top}" width="${iw}" height="${ih}" fill="none" stroke="#999"/>`);
  out.push(
    `<text x="${M.left + iw / 2}" y="${y0 + H - 4}" font-size="11" text-anchor="middle">seconds</text>`,
  );
  out.push(
    `<text x="14" y="${y0 + M.top + ih / 2}" font-size="11" fill="${COLORS.rate}" transform="rotate(-90 14 ${y0 + M.top + ih / 2})" text-anchor="middle">events/s delivered</text>`,
  );
  out.push(
    `<text x="${W - 12}" y="${y0 + M.top + ih / 2}" font-size="11" fill="${COLORS.rss}" transform="rotate(90 ${W - 12} ${y0 + M.top + ih / 2})" text-anchor="middle">MB</text>`,
  );
  if (p.reference) {
    const y = yR(p.reference.rate);
    out.push(
      `<line x1="${M.left}" x2="${M.left + iw}" y1="${y}" y2="${y}" stroke="${COLORS.ref}" stroke-dasharray="6 4"/>`,
    );
    out.push(
      `<text x="${M.left + iw - 4}" y="${y - 4}" font-size="11" text-anchor="end" fill="${COLORS.ref}">${esc(p.reference.label)}</text>`,
    );
  }
  const line = (pts: Array<[number, number]>, color: string, dash = '') =>
    pts.length === 0
      ? ''
      : `<polyline fill="none" stroke="${color}" stroke-width="1.6"${dash ? ` stroke-dasharray="${dash}"` : ''} points="${pts
          .map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`)
          .join(' ')}"/>`;
  out.push(
    line(
      p.points.map((q) => [x(q.t), yR(q.rate)]),
      COLORS.rate,
    ),
  );
  out.push(
    line(
      p.points.map((q) => [x(q.t), yM(q.rssMB)]),
      COLORS.rss,
    ),
  );
  // optional series: only the points that carry them (line() draws nothing for none)
  const optional = (key: 'spoolMB' | 'heapMB') =>
    p.points.flatMap((q): Array<[number, number]> => {
      const v = q[key];
      return v === undefined ? [] : [[x(q.t), yM(v)]];
    });
  const spool = optional('spoolMB');
  const heap = optional('heapMB');
  out.push(line(spool, COLORS.spool, '4 3'));
  out.push(line(heap, COLORS.heap, '2 2'));
  // legend
  const ly = y0 + 14;
  const legend: Array<[string, string, string]> = [
    ['events/s', COLORS.rate, ''],
    ['emitter RSS MB', COLORS.rss, ''],
    ...(spool.length > 0 ? [['spool MB', COLORS.spool, '4 3'] as [string, string, string]] : []),
    ...(heap.length > 0 ? [['V8 heap MB', COLORS.heap, '2 2'] as [string, string, string]] : []),
  ];
  const lx = M.left + iw - legend.length * 115;
  legend.forEach(([name, color, dash], i) => {
    const cx = lx + i * 115;
    out.push(
      `<line x1="${cx}" x2="${cx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
    );
    out.push(`<text x="${cx + 26}" y="${ly}" font-size="11">${esc(name)}</text>`);
  });
  return out.filter(Boolean).join('\n');
}

export function renderChart(title: string, subtitle: string, panels: ChartPanel[]): string {
  const top = 50;
  const height = top + panels.length * (H + 10);
  const body = panels.map((p, i) => panel(p, top + i * (H + 10))).join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${M.left}" y="22" font-size="16" font-weight="bold">${esc(title)}</text>
<text x="${M.left}" y="40" font-size="11" fill="#555">${esc(subtitle)}</text>
${body}
</svg>
`;
}
