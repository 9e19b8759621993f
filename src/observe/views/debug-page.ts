import { MACHINES, machineGraphs, type MachineEntry } from './machines.js';
import type { StateGraph } from './statechart.js';
import { escapeXml, graphToSvg } from './svg.js';

/**
 * The GET /debug page: the three statecharts as inline SVG (drawn server-side from the real
 * definitions, no library, works offline) with the live states highlighted, refreshed by a small
 * script that polls `debug/machines?view=live` every second. The script and the stylesheet are
 * separate routes (`/debug/app.js`, `/debug/app.css`), so the page runs under a Content-Security-
 * Policy that allows only 'self'. The page holds no configuration and no secrets: only the machine
 * definitions; everything live comes through the redacted JSON view.
 */

export const DEBUG_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** per machine: [label, element id] of the live figures the page's script fills in */
const FACTS: Record<string, Array<[string, string]>> = {
  buffer: [
    ['state', 'buffer-state'],
    ['items', 'buffer-count'],
    ['bytes', 'buffer-bytes'],
    ['interval', 'buffer-interval'],
  ],
  delivery: [['active', 'deliveries-active']],
  breaker: [
    ['origin', 'breaker-origin'],
    ['state', 'breaker-state'],
    ['permits allowed', 'breaker-allowed'],
    ['in flight', 'breaker-inflight'],
    ['waiting', 'breaker-waiting'],
    ['consecutive failures', 'breaker-failures'],
    ['reset timeout', 'breaker-reset'],
    ['in this state since', 'breaker-since'],
    ['tries the origin again', 'breaker-reopen'],
  ],
};

function section({ name, title, heading }: MachineEntry, svg: string): string {
  const facts = (FACTS[name] ?? [])
    .map(([label, id]) => {
      const meter =
        id === 'buffer-count' || id === 'buffer-bytes'
          ? ` <meter id="${id}-meter" min="0" max="1" value="0"></meter>`
          : '';
      return `<dt>${escapeXml(label)}</dt><dd><span id="${id}">–</span>${meter}</dd>`;
    })
    .join('');
  const table =
    name === 'delivery'
      ? '<table id="deliveries"><thead><tr><th>batch</th><th>state</th><th>attempt</th><th>next retry</th></tr></thead>' +
        '<tbody><tr><td colspan="4">none</td></tr></tbody></table>'
      : '';
  return (
    `<section class="machine" id="machine-${name}"><h2>${escapeXml(heading)}</h2>` +
    `<p class="what">${escapeXml(title)}</p>` +
    `<dl class="facts">${facts}</dl>${table}<div class="chart">${svg}</div></section>`
  );
}

let page: string | undefined;

/** The page (computed once: it depends only on the machine definitions and the version). */
export function debugPageHtml(version: string): string {
  if (page !== undefined) return page;
  const graphs = machineGraphs();
  const sections = MACHINES.map((entry) =>
    section(entry, graphToSvg(graphs[entry.name] as StateGraph, { title: entry.title })),
  ).join('\n');
  page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>batch-emitter statecharts</title>
<link rel="stylesheet" href="debug/app.css">
<script src="debug/app.js" defer></script>
</head>
<body>
<header><h1>batch-emitter <small>${escapeXml(version)}</small> statecharts</h1>
<p id="status" class="stale">waiting for the first update…</p></header>
<main>
${sections}
</main>
<footer>Live data: <a href="debug/machines">/debug/machines</a> (JSON, polled every second). Highlighted: the states the running actors are in.</footer>
</body>
</html>
`;
  return page;
}

export const DEBUG_APP_CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1a202c; background: #fff; }
header, main, footer { padding: 0 20px; }
header { border-bottom: 1px solid #e2e8f0; }
h1 { font-size: 20px; margin: 12px 0 4px; }
h1 small { font-weight: normal; color: #718096; }
h2 { font-size: 17px; margin: 0 0 2px; }
#status { margin: 0 0 10px; color: #2f855a; }
#status.stale { color: #c05621; }
.machine { border: 1px solid #e2e8f0; border-radius: 8px; padding: 12px 16px; margin: 16px 0; }
.what { margin: 0 0 8px; color: #4a5568; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0 0 10px; }
dl.facts dt { color: #4a5568; }
dl.facts dd { margin: 0; font-family: ui-monospace, Menlo, Consolas, monospace; }
meter { width: 160px; vertical-align: middle; margin-left: 8px; }
table { border-collapse: collapse; margin: 0 0 10px; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
th, td { text-align: left; padding: 2px 10px 2px 0; border-bottom: 1px solid #edf2f7; }
.chart { overflow-x: auto; }
svg.statechart { max-width: 100%; height: auto; }
svg.statechart .arrowhead { fill: #555; }
svg.statechart g.state text.meta { fill: #4a5568; }
svg.statechart g.state text.internal, svg.statechart g.state text.self { fill: #2d3748; }
svg.statechart text.actions { fill: #4a5568; }
svg.statechart text.footer { fill: #4a5568; }
svg.statechart g.state.active rect.box { fill: #fefcbf; stroke: #d69e2e; stroke-width: 3; }
svg.statechart g.state.active text.name { fill: #744210; }
svg.statechart text.badge { fill: #c05621; }
footer { color: #718096; padding-bottom: 20px; }
`;

/**
 * The page's script. Plain ES5-style JavaScript (it runs in the browser as is); no template
 * literals, so it can live in this TypeScript string.
 */
export const DEBUG_APP_JS = `'use strict';
(function () {
  var POLL_MS = 1000;
  function byId(id) { return document.getElementById(id); }
  function put(id, text) { var el = byId(id); if (el) el.textContent = text; }
  function meter(id, value, max) {
    var el = byId(id);
    if (!el) return;
    el.max = max > 0 ? max : 1;
    el.value = Math.min(value, el.max);
  }
  function bytes(n) {
    if (typeof n !== 'number') return '–';
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1048576).toFixed(1) + ' MiB';
  }
  function seconds(ms) { return typeof ms === 'number' ? (ms / 1000).toFixed(ms < 10000 ? 2 : 0) + ' s' : '–'; }
  function when(iso) {
    if (!iso) return '–';
    var left = (Date.parse(iso) - Date.now()) / 1000;
    var hms = iso.slice(11, 19) + ' UTC';
    return left >= 0 ? hms + ' (in ' + left.toFixed(1) + ' s)' : hms + ' (' + (-left).toFixed(1) + ' s ago)';
  }
  function paths(value) {
    if (typeof value === 'string') return [value];
    var out = [];
    if (value && typeof value === 'object') {
      Object.keys(value).forEach(function (key) {
        out.push(key);
        paths(value[key]).forEach(function (p) { out.push(key + '.' + p); });
      });
    }
    return out;
  }
  function mark(machine, values, badges) {
    var counts = {};
    values.forEach(function (v) { paths(v).forEach(function (p) { counts[p] = (counts[p] || 0) + 1; }); });
    var svg = document.querySelector('svg[data-machine="' + machine + '"]');
    if (!svg) return;
    var groups = svg.querySelectorAll('g.state');
    for (var i = 0; i < groups.length; i++) {
      var g = groups[i];
      var n = counts[g.getAttribute('data-state')] || 0;
      if (n > 0) g.classList.add('active'); else g.classList.remove('active');
      var badge = g.querySelector('text.badge');
      if (badge) badge.textContent = badges && n > 0 ? String(n) : '';
    }
  }
  function renderBuffer(b) {
    if (!b) { put('buffer-state', 'not running'); mark('buffer', []); return; }
    put('buffer-state', paths(b.state).join(' / '));
    put('buffer-count', b.count + ' / ' + (b.maxItems === undefined ? '?' : b.maxItems));
    put('buffer-bytes', bytes(b.bytes) + ' / ' + bytes(b.maxItemBytes));
    put('buffer-interval', seconds(b.intervalMs));
    meter('buffer-count-meter', b.count, b.maxItems);
    meter('buffer-bytes-meter', b.bytes, b.maxItemBytes);
    mark('buffer', [b.state]);
  }
  function renderDeliveries(d, times) {
    var listed = (d && d.listed) || [];
    var active = d ? d.active : 0;
    put('deliveries-active', active + (listed.length < active ? ' (listing ' + listed.length + ')' : ''));
    var body = document.querySelector('#deliveries tbody');
    if (body) {
      while (body.firstChild) body.removeChild(body.firstChild);
      if (listed.length === 0) {
        var empty = document.createElement('tr');
        var td = document.createElement('td');
        td.colSpan = 4;
        td.textContent = 'none';
        empty.appendChild(td);
        body.appendChild(empty);
      }
      listed.forEach(function (x) {
        var tr = document.createElement('tr');
        var state = paths(x.state).join(' / ');
        var attempt = state === 'sending' ? (x.attempts + 1) + ' (sending)' : String(x.attempts);
        var next = '–';
        if (state === 'backoff') {
          var at = times && times.nextRetryAt ? times.nextRetryAt[x.batchId] : undefined;
          next = at ? when(at) : (x.nextDelayMs !== null ? 'after ' + seconds(x.nextDelayMs) : '?');
        }
        [x.batchId, state, attempt, next].forEach(function (v) {
          var cell = document.createElement('td');
          cell.textContent = v;
          tr.appendChild(cell);
        });
        body.appendChild(tr);
      });
    }
    mark('delivery', listed.map(function (x) { return x.state; }), true);
  }
  function renderBreaker(b, times) {
    if (!b) { put('breaker-state', 'not running'); mark('breaker', []); return; }
    put('breaker-origin', b.origin);
    put('breaker-state', b.state);
    put('breaker-allowed', String(b.allowed));
    put('breaker-inflight', String(b.inFlight));
    put('breaker-waiting', b.waiting === undefined ? '–' : String(b.waiting));
    put('breaker-failures', String(b.consecutiveFailures));
    put('breaker-reset', seconds(b.resetTimeoutMs));
    put('breaker-since', times && times.breaker && times.breaker.since ? when(times.breaker.since) : '–');
    put('breaker-reopen', times && times.breaker && times.breaker.reopenAt ? when(times.breaker.reopenAt)
      : (b.state === 'closed' ? 'now (closed)' : b.state === 'halfOpen' ? 'probing' : '–'));
    mark('breaker', [b.state]);
  }
  function status(text, stale) {
    var el = byId('status');
    if (!el) return;
    el.textContent = text;
    if (stale) el.classList.add('stale'); else el.classList.remove('stale');
  }
  function poll() {
    fetch('debug/machines?view=live', { cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (view) {
        var live = view.live || {};
        renderBuffer(live.buffer);
        renderDeliveries(live.deliveries, view.times);
        renderBreaker(live.breaker, view.times);
        status('live, updated ' + new Date().toISOString().slice(11, 19) + ' UTC', false);
      })
      .catch(function (err) { status('cannot read debug/machines: ' + err.message, true); })
      .then(function () { setTimeout(poll, POLL_MS); });
  }
  poll();
})();
`;
