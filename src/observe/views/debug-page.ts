import { readFileSync } from 'node:fs';
import { MACHINES, machineGraphs, type MachineEntry } from './machines.js';
import type { StateGraph } from './statechart.js';
import { escapeXml, graphToSvg } from './svg.js';
import { TRACE_SCRIPT, traceSearchHtml } from './trace-search.js';

/**
 * The GET /debug page: the four statecharts as inline SVG (drawn server-side from the real
 * definitions, no library, works offline) with the live states highlighted, refreshed by a small
 * script that polls `debug/machines?view=live` every second. The script and the stylesheet are
 * files of their own (./assets), served as separate routes (`/debug/app.js`, `/debug/app.css`),
 * so the page runs under a Content-Security-Policy that allows only 'self'. The page holds no
 * configuration and no secrets: only the machine definitions; everything live comes through the
 * redacted JSON view.
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
  limiter: [
    ['state', 'limiter-state'],
    ['mode', 'limiter-mode'],
    ['limit', 'limiter-limit'],
    ['round trip (average)', 'limiter-rtt'],
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
<script src="${TRACE_SCRIPT}" defer></script>
</head>
<body>
<header><h1>batch-emitter <small>${escapeXml(version)}</small> statecharts</h1>
<p id="status" class="stale">waiting for the first update…</p></header>
${traceSearchHtml()}
<main>
${sections}
</main>
<footer>Live data: <a href="debug/machines">/debug/machines</a> (JSON, polled every second). Highlighted: the states the running actors are in.</footer>
</body>
</html>
`;
  return page;
}

const assets = new Map<string, string>();

/** A file of ./assets, read once: beside this module in src/ (tsx) and in dist/ (copied by the build). */
function asset(name: string): string {
  let text = assets.get(name);
  if (text === undefined) {
    text = readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8');
    assets.set(name, text);
  }
  return text;
}

/** The page's script (assets/debug-app.js, a browser script linted as such), served as /debug/app.js. */
export function debugAppJs(): string {
  return asset('debug-app.js');
}

/** The trace search's script (assets/debug-trace.js), served as /debug/trace.js. */
export function debugTraceJs(): string {
  return asset('debug-trace.js');
}

/** The page's stylesheet (assets/debug-app.css), served as /debug/app.css. */
export function debugAppCss(): string {
  return asset('debug-app.css');
}
