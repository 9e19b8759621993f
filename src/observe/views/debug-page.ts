import { readFileSync } from 'node:fs';
import { MACHINES, machineGraphs, type MachineEntry } from './machines.js';
import type { StateGraph } from './statechart.js';
import { escapeXml, graphToSvg } from './svg.js';
import { TRACE_SCRIPT, traceSearchHtml } from './trace-search.js';

/**
 * The GET /debug page: the four statecharts as inline SVG (laid out by elkjs and drawn
 * server-side from the real definitions, works offline) with the live states highlighted, refreshed by a small
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
  const extra = EXTRA[name] ?? '';
  return (
    `<section class="machine" id="machine-${name}"><h2>${escapeXml(heading)}</h2>` +
    `<p class="what">${escapeXml(title)}</p>` +
    `<div class="body"><div class="side"><dl class="facts">${facts}</dl>${extra}</div>` +
    `<div class="chart">${svg}</div></div></section>`
  );
}

/**
 * Per machine: what the script fills in beside the facts. Deliveries: the live batches with a
 * timeline of their attempts, and the last that finished; breaker: the origin's last minutes.
 */
const EXTRA: Record<string, string> = {
  delivery:
    '<table id="deliveries"><thead><tr><th>batch</th><th>state</th><th>attempt</th><th>next retry</th><th>attempts (oldest first)</th></tr></thead>' +
    '<tbody><tr><td colspan="5">none</td></tr></tbody></table>' +
    '<h3>Finished lately</h3><table id="finished"><thead><tr><th>batch</th><th>result</th><th>attempts</th></tr></thead>' +
    '<tbody><tr><td colspan="3">none</td></tr></tbody></table>',
  breaker:
    '<h3>The origin, last minutes <small id="origin-peak"></small></h3><div id="origin-strip" class="strip"></div>' +
    '<p class="legend"><span class="key success">success</span> <span class="key retryable">retryable</span> ' +
    '<span class="key split">split (413)</span> <span class="key permanent">refused</span> · breaker: ' +
    '<span class="key band-closed">closed</span> <span class="key band-open">open</span> ' +
    '<span class="key band-halfOpen">half open</span> <span class="key band-paused">paused</span></p>',
};

const pages = new Map<string, Promise<string>>();

/** The page (computed once: it depends only on the machine definitions and the version). */
export function debugPageHtml(version: string): Promise<string> {
  let page = pages.get(version);
  if (page === undefined) {
    page = renderPage(version);
    pages.set(version, page);
    // a failed layout is not kept: the next request tries again
    page.catch(() => pages.delete(version));
  }
  return page;
}

async function renderPage(version: string): Promise<string> {
  const graphs = machineGraphs();
  const svgs = await Promise.all(
    MACHINES.map((entry) => graphToSvg(graphs[entry.name] as StateGraph, { title: entry.title })),
  );
  const sections = MACHINES.map((entry, i) => section(entry, svgs[i] as string)).join('\n');
  return `<!doctype html>
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
