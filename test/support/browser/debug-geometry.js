/*
 * Run in the /debug page by test/integration/debug-page-chromium.test.ts (as a string, through
 * playwright's page.evaluate): geometry checks on what Chromium drew.
 */
'use strict';
/* global DOMPoint */

/** Overlaps and texts out of place in each card's statechart and in the origin strip. */
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- called by the test's page.evaluate
function problems() {
  const out = [];
  const overlap = (a, b) =>
    Math.max(0, Math.min(a.right, b.right) - Math.max(a.left, b.left)) *
    Math.max(0, Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top));
  const inside = (inner, outer) =>
    inner.left >= outer.left - 0.5 &&
    inner.right <= outer.right + 0.5 &&
    inner.top >= outer.top - 0.5 &&
    inner.bottom <= outer.bottom + 0.5;
  for (const card of document.querySelectorAll('section.machine')) {
    const svg = card.querySelector('svg.statechart');
    if (!svg) {
      out.push({ card: card.id, what: 'no statechart' });
      continue;
    }
    const items = [];
    for (const g of svg.querySelectorAll('g.state:not(.container)')) {
      const box = g.querySelector('rect.box');
      const r = box.getBoundingClientRect();
      items.push({ name: `state ${g.getAttribute('data-state')}`, r });
      for (const t of g.querySelectorAll('text')) {
        if (t.textContent && !inside(t.getBoundingClientRect(), r)) {
          out.push({ card: card.id, what: `text "${t.textContent}" sticks out of its state box` });
        }
      }
    }
    const labels = [];
    for (const g of svg.querySelectorAll('g.edge-label')) {
      const rect = g.querySelector('rect').getBoundingClientRect();
      const edge = `${g.getAttribute('data-source')}>${g.getAttribute('data-target')}`;
      const text = [...g.querySelectorAll('text')].map((t) => t.textContent).join(' ');
      labels.push({ name: `label "${text}"`, r: rect, edge });
      for (const t of g.querySelectorAll('text')) {
        if (!inside(t.getBoundingClientRect(), rect)) {
          out.push({ card: card.id, what: `text "${t.textContent}" sticks out of its label` });
        }
      }
    }
    for (const t of svg.querySelectorAll('text.footer')) {
      items.push({ name: `footer "${t.textContent}"`, r: t.getBoundingClientRect() });
    }
    for (const c of svg.querySelectorAll('circle.initial')) {
      items.push({ name: 'initial dot', r: c.getBoundingClientRect() });
    }
    const all = [...items, ...labels];
    for (let i = 0; i < all.length; i++) {
      for (let j = i + 1; j < all.length; j++) {
        const a = all[i];
        const b = all[j];
        if (overlap(a.r, b.r) > 1) out.push({ card: card.id, what: `${a.name} overlaps ${b.name}` });
      }
    }
    // an arrow may touch its own label, never another's
    for (const path of svg.querySelectorAll('path.edge[data-source]')) {
      const p = path;
      const edge = `${p.getAttribute('data-source')}>${p.getAttribute('data-target')}`;
      const m = p.getScreenCTM();
      if (!m) continue;
      const length = p.getTotalLength();
      for (const l of labels) {
        if (l.edge === edge) continue;
        for (let s = 0; s <= length; s += 2) {
          const q = new DOMPoint(p.getPointAtLength(s).x, p.getPointAtLength(s).y).matrixTransform(m);
          if (q.x > l.r.left + 1 && q.x < l.r.right - 1 && q.y > l.r.top + 1 && q.y < l.r.bottom - 1) {
            out.push({ card: card.id, what: `the arrow ${edge} crosses ${l.name}` });
            break;
          }
        }
      }
    }
  }
  // the origin strip's axis texts
  const ticks = [...document.querySelectorAll('#origin-strip text')].map((t) => ({
    name: t.textContent || '',
    r: t.getBoundingClientRect(),
  }));
  for (let i = 0; i < ticks.length; i++) {
    for (let j = i + 1; j < ticks.length; j++) {
      if (overlap(ticks[i].r, ticks[j].r) > 1) {
        out.push({ card: 'origin strip', what: `${ticks[i].name} overlaps ${ticks[j].name}` });
      }
    }
  }
  return out;
}

/** Each card's extent, its horizontal overflow and where and at what scale its statechart is drawn. */
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- called by the test's page.evaluate
function cards() {
  return [...document.querySelectorAll('section.machine')].map((card) => {
    const svg = card.querySelector('svg.statechart');
    const c = card.getBoundingClientRect();
    const s = svg.getBoundingClientRect();
    return {
      id: card.id,
      cardRight: c.right,
      height: c.height,
      overflowX: card.scrollWidth - card.clientWidth,
      svgLeft: s.left - c.left,
      svgRight: c.right - s.right,
      scale: s.width / Number(svg.getAttribute('width')),
    };
  });
}
