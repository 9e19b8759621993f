import { describe, expect, it } from 'vitest';
import { assign, setup, type AnyStateMachine } from 'xstate';
import { breakerMachine } from '../../machines/breaker.js';
import { bufferMachine } from '../../machines/buffer.js';
import { deliveryMachine } from '../../machines/delivery.js';
import { limiterMachine } from '../../machines/limiter.js';
import { CHAR_W, layoutGraph, type Point, type Rect } from '../../src/observe/views/layout.js';
import { machineToGraph } from '../../src/observe/views/statechart.js';

const REAL: Array<[string, AnyStateMachine]> = [
  ['buffer', bufferMachine],
  ['delivery', deliveryMachine],
  ['breaker', breakerMachine],
  ['limiter', limiterMachine],
];

const overlap = (a: Rect, b: Rect): number =>
  Math.max(0, Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x)) *
  Math.max(0, Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y));

const inside = (inner: Rect, outer: Rect): boolean =>
  inner.x >= outer.x &&
  inner.y >= outer.y &&
  inner.x + inner.w <= outer.x + outer.w &&
  inner.y + inner.h <= outer.y + outer.h;

/** on the border of the rectangle (within 1 px) */
const onBorder = (p: Point, r: Rect): boolean => {
  const near = (a: number, b: number): boolean => Math.abs(a - b) <= 1;
  const inX = p.x >= r.x - 1 && p.x <= r.x + r.w + 1;
  const inY = p.y >= r.y - 1 && p.y <= r.y + r.h + 1;
  return (
    (inX && (near(p.y, r.y) || near(p.y, r.y + r.h))) || (inY && (near(p.x, r.x) || near(p.x, r.x + r.w)))
  );
};

describe('statechart layout (elkjs)', () => {
  it.each(REAL)(
    '%s: every transition an edge from box to box, no two boxes or labels overlap',
    async (_n, machine) => {
      const graph = machineToGraph(machine);
      const layout = await layoutGraph(graph);
      expect(layoutGraph(graph)).toBe(layoutGraph(graph)); // computed once per graph
      expect(layout.nodes.map((n) => n.state.id)).toEqual(graph.states.map((s) => s.id));
      const box = new Map(layout.nodes.map((n) => [n.state.id, n]));
      const between = graph.transitions.flatMap((t) =>
        t.source === '' ? [] : t.targets.filter((x) => x !== t.source).map((x) => `${t.source}>${x}`),
      );
      expect(layout.edges.map((e) => `${e.source}>${e.target}`).sort()).toEqual(between.sort());
      for (const e of layout.edges) {
        expect(e.points.length).toBeGreaterThanOrEqual(2);
        expect(
          onBorder(e.points[0] as Point, box.get(e.source) as Rect),
          `${e.source}>${e.target} start`,
        ).toBe(true);
        expect(
          onBorder(e.points.at(-1) as Point, box.get(e.target) as Rect),
          `${e.source}>${e.target} end`,
        ).toBe(true);
        const label = e.label;
        expect(label).toBeDefined();
        for (const line of label?.lines ?? []) expect(label?.w).toBeGreaterThanOrEqual(line.length * CHAR_W);
      }
      const rects: Array<[string, Rect]> = [
        ...layout.nodes.map((n): [string, Rect] => [n.state.id, n]),
        ...layout.edges.map((e): [string, Rect] => [`label ${e.source}>${e.target}`, e.label as Rect]),
      ];
      for (let i = 0; i < rects.length; i++) {
        for (let j = i + 1; j < rects.length; j++) {
          const [a, ra] = rects[i] as [string, Rect];
          const [b, rb] = rects[j] as [string, Rect];
          expect(overlap(ra, rb), `${a} / ${b}`).toBe(0);
        }
      }
      for (const [, r] of rects)
        expect(inside(r, { x: 0, y: 0, w: layout.width, h: layout.height })).toBe(true);
      expect(layout.initials.map((i) => i.target)).toEqual([graph.initial]);
    },
  );

  it('nests a compound state: its children and its initial dot inside its box', async () => {
    const machine = setup({ actions: { begin: assign({}) } }).createMachine({
      id: 'nested',
      initial: 'idle',
      states: {
        idle: { on: { GO: 'busy' } },
        busy: {
          initial: 'one',
          entry: 'begin',
          states: { one: { on: { NEXT: 'two' } }, two: { type: 'final' } },
          onDone: 'idle',
        },
      },
    });
    const layout = await layoutGraph(machineToGraph(machine));
    const byId = new Map(layout.nodes.map((n) => [n.state.id, n]));
    const busy = byId.get('busy');
    expect(busy?.container).toBe(true);
    for (const child of ['busy.one', 'busy.two'])
      expect(inside(byId.get(child) as Rect, busy as Rect)).toBe(true);
    // the container's own lines (entry / begin) sit above its children
    const top = Math.min(...['busy.one', 'busy.two'].map((c) => byId.get(c)?.y ?? 0));
    expect(top - (busy?.y ?? 0)).toBeGreaterThan(18 + 14);
    const dot = layout.initials.find((i) => i.parent === 'busy');
    expect(dot?.target).toBe('busy.one');
    const d = dot?.dot as Point;
    expect(d.x > (busy?.x ?? 0) && d.y > (busy?.y ?? 0)).toBe(true);
    expect(layout.edges.map((e) => `${e.source}>${e.target}`).sort()).toEqual([
      'busy.one>busy.two',
      'busy>idle',
      'idle>busy',
    ]);
  });
});
