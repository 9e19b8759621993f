import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EmitterEvents } from './events.js';
import type { Logger } from '../util/logger.js';
import type { Metrics } from './metrics.js';
import { fullSnapshot, spoolUsedBytes, type StatusSnapshot, type StatusSource } from './status.js';
import { VERSION } from '../util/version.js';
import { DEBUG_CSP, debugAppCss, debugAppJs, debugPageHtml, debugTraceJs } from './views/debug-page.js';
import { machineGraphs } from './views/machines.js';
import { DebugTimeline, debugTimes } from './views/timeline.js';
import { AttemptHistory } from './attempt-history.js';
import { Redactor, safeJson } from '../util/redact.js';
import { StatsCollector, type LastError } from './stats-collector.js';
import { TraceQueryError, traceQueryOfParams, type TraceQuery } from './trace/query.js';
import { TraceUnavailableError } from './trace/live.js';
import { traceText } from './trace/text.js';

export type { BreakerStatus, JetStreamPending, SpoolStatus, StatusSnapshot, StatusSource } from './status.js';

/**
 * The operator's HTTP server (node:http, no framework): health, readiness, stats, Prometheus
 * metrics and, when debug is on, the live statecharts and traces. Read-only: no endpoint changes state.
 * Only GET and HEAD are served (anything else: 405), unknown paths are 404. Every body passes a
 * redactor, so configured secrets and URL credentials never leave the process.
 */

export interface ServerOptions {
  host: string;
  port: number;
  status: StatusSource;
  events: EmitterEvents;
  metrics: Metrics;
  debug: boolean;
  logger: Logger;
  /** secret values (secretsOf(config): tokens, passwords, header values) scrubbed from every response */
  redact?: Array<string | undefined>;
  /** totals kept since this collector started; by default one is created from `events` */
  stats?: StatsCollector;
  /** bound on the async parts of a status read (JetStream pending, spool stats); default 1000 ms */
  statusTimeoutMs?: number;
  /** connections beyond this are closed as they arrive; default 256 */
  maxConnections?: number;
  /** a socket silent this long (no request started, or stalled) is closed; default 10 s */
  idleTimeoutMs?: number;
}

export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface ReadyCheck {
  ok: boolean;
  detail?: string;
}

export interface Readiness {
  ready: boolean;
  checks: Record<string, ReadyCheck>;
  /** names of the failing checks */
  failing: string[];
}

/** The /ready verdict: NATS connected, consumer bound, spool open and under its limit, intake on. */
export function readiness(s: StatusSnapshot): Readiness {
  const checks: Record<string, ReadyCheck> = {};
  const check = (name: string, ok: boolean, detail: string): void => {
    checks[name] = ok ? { ok } : { ok, detail };
  };
  check('shutting_down', !s.shuttingDown, 'the emitter is shutting down');
  if (s.natsEnabled !== false) {
    check('nats_connected', s.natsConnected, 'not connected to NATS');
    check(
      'consumer_bound',
      s.consumerBound,
      `the JetStream durable consumer is not bound${s.consumerUnbound ? `: ${s.consumerUnbound}` : ''}`,
    );
  }
  check('spool_open', s.spool.open, 'the spool is not open');
  const used = spoolUsedBytes(s.spool);
  check(
    'spool_in_place',
    s.spool.replaced === undefined,
    `spool_replaced: ${s.spool.replaced ?? ''}; nothing more is acknowledged, restart the emitter`,
  );
  check(
    'spool_under_limit',
    used < s.spool.maxBytes,
    `the spool holds ${used} bytes (dead letters and quarantine included), limit ${s.spool.maxBytes}`,
  );
  check('intake_running', !s.intakePaused, `intake paused: ${s.intakePaused ?? ''}`);
  if (s.maxUnreachableMs !== undefined) {
    const unreachable = s.originUnreachableMs ?? 0;
    check(
      'destination_reachable',
      unreachable <= s.maxUnreachableMs,
      `the destination has failed every attempt for ${Math.round(unreachable / 1000)} s`,
    );
  }
  const rejecting = s.destinationRejecting;
  check(
    'destination_rejecting',
    rejecting === undefined,
    `the destination refused the last ${rejecting?.consecutive ?? 0} attempts` +
      `${rejecting?.lastStatus !== undefined ? ` (HTTP ${rejecting.lastStatus})` : ''}: every batch is dead-lettered`,
  );
  const failing = Object.keys(checks).filter((name) => !checks[name]?.ok);
  return { ready: failing.length === 0, checks, failing };
}

interface Reply {
  status: number;
  /** a JSON reply (serialised with every string scrubbed) ... */
  json?: unknown;
  /** ... or a text reply (scrubbed as a whole) */
  text?: string;
  contentType: string;
  headers?: Record<string, string>;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const DEFAULT_MAX_CONNECTIONS = 256;

function json(status: number, value: unknown, headers?: Record<string, string>): Reply {
  return { status, json: value, contentType: JSON_TYPE, ...(headers ? { headers } : {}) };
}

function newer(a: LastError | undefined, b: StatusSnapshot['lastError']): StatusSnapshot['lastError'] {
  if (!a) return b;
  if (!b) return { message: a.message, at: a.at };
  return Date.parse(b.at) > Date.parse(a.at) ? b : { message: a.message, at: a.at };
}

type Route = (req: IncomingMessage) => Promise<Reply> | Reply;

/** The /debug routes: the page, its script and stylesheet, and the JSON machine view. */
function debugRoutes(
  status: StatusSource,
  timeline: DebugTimeline,
  history: AttemptHistory,
): Record<string, Route> {
  const page = { 'content-security-policy': DEBUG_CSP, 'referrer-policy': 'no-referrer' };
  return {
    '/debug': async (req) => {
      // scripts that ask for JSON get the index of the debug endpoints; browsers get the page
      const accept = String(req.headers.accept ?? '');
      if (accept.includes('application/json') && !accept.includes('text/html')) {
        return json(200, {
          endpoints: [
            '/debug',
            '/debug/machines',
            '/debug/trace',
            '/debug/app.js',
            '/debug/trace.js',
            '/debug/app.css',
          ],
        });
      }
      return {
        status: 200,
        text: await debugPageHtml(VERSION),
        contentType: 'text/html; charset=utf-8',
        headers: page,
      };
    },
    '/debug/app.js': () => ({
      status: 200,
      text: debugAppJs(),
      contentType: 'text/javascript; charset=utf-8',
      headers: page,
    }),
    '/debug/trace.js': () => ({
      status: 200,
      text: debugTraceJs(),
      contentType: 'text/javascript; charset=utf-8',
      headers: page,
    }),
    '/debug/app.css': () => ({
      status: 200,
      text: debugAppCss(),
      contentType: 'text/css; charset=utf-8',
      headers: page,
    }),
    '/debug/trace': (req) => traceReply(status, new URL(req.url ?? '/', 'http://localhost').searchParams),
    '/debug/machines': (req) => {
      if (!status.machines) return json(404, { error: 'no machine view available' });
      const view = status.machines();
      const record = view !== null && typeof view === 'object' ? (view as Record<string, unknown>) : { view };
      const live = record.live as Parameters<typeof debugTimes>[0];
      const times = debugTimes(live, timeline.snapshot());
      const recent = history.snapshot((live?.deliveries?.listed ?? []).map((d) => d.batchId));
      // ?view=live (what the page polls every second): without the unchanging definitions
      if (new URL(req.url ?? '/', 'http://localhost').searchParams.get('view') === 'live') {
        const { definitions: _definitions, ...rest } = record;
        return json(200, { ...rest, times, history: recent });
      }
      return json(200, { ...record, graphs: machineGraphs(), times, history: recent });
    },
  };
}

/**
 * GET /debug/trace?batch=<id> | seq=<n> [&subject=<s>] [&format=text]: the story of one batch or
 * message as JSON (what `batch-emitter trace --json` prints), or as the printed text.
 */
async function traceReply(status: StatusSource, params: URLSearchParams): Promise<Reply> {
  if (!status.trace) return json(404, { error: 'no trace available' });
  let query: TraceQuery;
  try {
    query = traceQueryOfParams(params);
  } catch (error) {
    if (error instanceof TraceQueryError) return json(400, { error: error.message });
    throw error;
  }
  try {
    const story = await status.trace(query);
    if (params.get('format') === 'text')
      return { status: 200, text: `${traceText(story)}\n`, contentType: 'text/plain; charset=utf-8' };
    return json(200, story);
  } catch (error) {
    if (error instanceof TraceUnavailableError) return json(503, { error: error.message });
    throw error;
  }
}

/** The GET /api/v1/stats body: the status, the readiness verdict and the collected totals. */
async function statsBody(status: StatusSource, stats: StatsCollector, timeoutMs: number) {
  const s = await fullSnapshot(status, timeoutMs);
  const c = stats.snapshot();
  const verdict = readiness(s);
  const oldestMs = s.spool.oldestCreatedAt ? Date.parse(s.spool.oldestCreatedAt) : NaN;
  return {
    status: s.shuttingDown ? 'shutting_down' : verdict.ready ? 'ok' : 'degraded',
    notReady: verdict.failing,
    version: VERSION,
    since: c.since,
    uptimeSeconds: c.uptimeSeconds,
    items: { ...c.items, open: s.openItems, maxPerBatch: s.maxItems },
    // `inFlight` is the earlier name of `deliveriesActive`, kept for existing readers
    batches: {
      ...c.batches,
      deliveriesActive: s.deliveriesActive,
      inFlight: s.deliveriesActive,
      queued: s.queued,
    },
    attempts: c.attempts,
    successRate: c.successRate,
    attemptSuccessRate: c.attemptSuccessRate,
    spool: {
      open: s.spool.open,
      batches: s.spool.batches,
      bytes: s.spool.bytes,
      usedBytes: spoolUsedBytes(s.spool),
      maxBytes: s.spool.maxBytes,
      usedRatio:
        s.spool.maxBytes > 0 ? Math.round((spoolUsedBytes(s.spool) / s.spool.maxBytes) * 1e4) / 1e4 : null,
      oldestCreatedAt: s.spool.oldestCreatedAt ?? null,
      oldestAgeSeconds: Number.isNaN(oldestMs)
        ? null
        : Math.max(0, Math.round((Date.now() - oldestMs) / 100) / 10),
      deadLetters: s.spool.deadLetters ?? null,
      deadLetterBytes: s.spool.deadLetterBytes ?? null,
      quarantined: s.spool.quarantined ?? null,
      quarantinedBytes: s.spool.quarantinedBytes ?? null,
    },
    destination: { rejecting: s.destinationRejecting ?? null },
    intake: { paused: Boolean(s.intakePaused), reason: s.intakePaused ?? null },
    breaker: s.breaker ?? null,
    jetstream: s.jetstream ?? null,
    lastError: newer(c.lastError, s.lastError) ?? null,
    throughput: c.throughput,
  };
}

/** Writes a reply with every secret scrubbed from its body. */
function send(req: IncomingMessage, res: ServerResponse, reply: Reply, redactor: Redactor): void {
  const scrub = (text: string): string => redactor.scrub(text);
  const body = Buffer.from(
    reply.text !== undefined ? scrub(reply.text) : `${safeJson(reply.json ?? null, scrub)}\n`,
  );
  res.statusCode = reply.status;
  res.setHeader('content-type', reply.contentType);
  res.setHeader('content-length', body.length);
  res.setHeader('cache-control', 'no-store');
  res.setHeader('x-content-type-options', 'nosniff');
  for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
  res.end(req.method === 'HEAD' ? undefined : body);
}

const DEBUG_OFF_HINT =
  'the debug view is off: set TRANSMITTER_DEBUG=true to serve /debug and /debug/machines';

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const { status, metrics, logger } = opts;
  const redactor = new Redactor(opts.redact ?? []);
  const ownStats = opts.stats === undefined;
  const stats = opts.stats ?? new StatsCollector(opts.events);
  const timeoutMs = opts.statusTimeoutMs ?? 1000;
  const startedMs = Date.now();

  const shuttingDown = (): boolean => {
    try {
      return status.snapshot().shuttingDown;
    } catch {
      return false;
    }
  };

  const routes: Record<string, Route> = {
    '/health': () => {
      const down = shuttingDown();
      return json(down ? 503 : 200, {
        status: down ? 'shutting_down' : 'ok',
        version: VERSION,
        uptimeSeconds: Math.round((Date.now() - startedMs) / 1000),
      });
    },
    '/ready': () => {
      const verdict = readiness(status.snapshot());
      return json(verdict.ready ? 200 : 503, {
        status: verdict.ready ? 'ready' : 'not_ready',
        ...verdict,
        reasons: verdict.failing.map((name) => verdict.checks[name]?.detail),
      });
    },
    '/api/v1/stats': async () => json(200, await statsBody(status, stats, timeoutMs)),
    '/metrics': async () => ({
      status: 200,
      text: await metrics.metrics(),
      contentType: metrics.contentType,
    }),
  };
  // only while debug is on: wall-clock times (next retry, breaker reopen) and the recent attempts
  // for the /debug view
  const timeline = opts.debug ? new DebugTimeline(opts.events) : undefined;
  const history = opts.debug ? new AttemptHistory(opts.events) : undefined;
  if (timeline && history) Object.assign(routes, debugRoutes(status, timeline, history));

  async function handle(req: IncomingMessage): Promise<Reply> {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      return json(405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
    }
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      return json(400, { error: 'bad request' });
    }
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (!route && !opts.debug && (path === '/debug' || path.startsWith('/debug/')))
      return json(404, { error: 'not found', hint: DEBUG_OFF_HINT });
    if (!route) return json(404, { error: 'not found' });
    return route(req);
  }

  // how often Node enforces headersTimeout / requestTimeout (its default, 30 s, lets stalled sockets linger)
  const server = createServer({ connectionsCheckingInterval: 1000 }, (req, res) => {
    handle(req)
      .catch((error: unknown) => {
        logger.error({ err: redactor.scrub((error as Error).message), path: req.url }, 'http handler failed');
        return json(500, { error: 'internal error' });
      })
      .then((reply) => send(req, res, reply, redactor))
      .catch(() => res.destroy());
  });
  // a flood of idle or trickling sockets must not take the file descriptors the spool needs
  server.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  server.timeout = opts.idleTimeoutMs ?? 10_000;
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (error) => logger.error({ err: error.message }, 'http server error'));
  let dropped = 0;
  let droppedLoggedMs = -Infinity;
  server.on('drop', () => {
    dropped += 1;
    // at most one line per 10 s however hard the flood
    if (Date.now() - droppedLoggedMs < 10_000) return;
    droppedLoggedMs = Date.now();
    logger.warn(
      { maxConnections: server.maxConnections, connections_dropped_total: dropped },
      'http server at its connection limit: new connections are closed',
    );
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url, debug: opts.debug }, 'http server listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        if (ownStats) stats.close();
        timeline?.close();
        history?.close();
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 1000).unref();
      });
      return closing;
    },
  };
}
