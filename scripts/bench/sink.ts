/**
 * The benchmark's loopback HTTP sink, run as its own process (forked by scripts/bench.ts) so that
 * its gunzip + JSON.parse work does not share a thread with the publisher or the emitter.
 *
 * It accepts batches in the wire format (README "Wire format"), counts distinct events (by stream sequence),
 * duplicate batches (by idempotency-key) and wire bytes, and records publish -> delivered latency
 * from each event's `data.t` (epoch ms set by the publisher). In `503` mode it refuses everything.
 * Talks to the parent over the IPC channel (see SinkCommand / SinkReply).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export type SinkMode = 'ok' | '503';

export type SinkCommand =
  | { id: number; cmd: 'reset' }
  | { id: number; cmd: 'mode'; mode: SinkMode }
  /** record latency of events published at or after `fromMs` (until the next reset) */
  | { id: number; cmd: 'latency'; fromMs: number }
  | { id: number; cmd: 'latency-report' }
  | { id: number; cmd: 'exit' };

export interface SinkStats {
  /** event rows in accepted batches (duplicates included) */
  events: number;
  /** distinct stream sequences seen */
  distinct: number;
  batches: number;
  duplicateBatches: number;
  refused: number;
  wireBytes: number;
  badBodies: number;
}

export interface LatencyReport {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export type SinkReply =
  | { type: 'listening'; port: number }
  | { type: 'stats'; stats: SinkStats; atMs: number }
  | { type: 'done'; id: number; report?: LatencyReport };

interface EventRow {
  seq?: unknown;
  data?: { t?: unknown };
}

function send(msg: SinkReply): void {
  process.send?.(msg);
}

let mode: SinkMode = 'ok';
let stats: SinkStats;
let seqs: Set<number>;
let batchIds: Set<string>;
let latFrom = Infinity;
let lat = new Float64Array(1 << 16);
let latN = 0;

function reset(): void {
  stats = { events: 0, distinct: 0, batches: 0, duplicateBatches: 0, refused: 0, wireBytes: 0, badBodies: 0 };
  seqs = new Set();
  batchIds = new Set();
  latFrom = Infinity;
  latN = 0;
}
reset();

function recordLatency(ms: number): void {
  if (latN === lat.length) {
    const bigger = new Float64Array(lat.length * 2);
    bigger.set(lat);
    lat = bigger;
  }
  lat[latN++] = ms;
}

function latencyReport(): LatencyReport {
  const sorted = lat.slice(0, latN).sort();
  const at = (q: number) => (latN === 0 ? NaN : (sorted[Math.min(latN - 1, Math.floor(q * latN))] as number));
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    n: latN,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    p999: at(0.999),
    max: latN === 0 ? NaN : (sorted[latN - 1] as number),
    mean: latN === 0 ? NaN : sum / latN,
  };
}

function accept(raw: Buffer, encoding: string | undefined, batchId: string, receivedMs: number): boolean {
  let doc: { events?: EventRow[] };
  try {
    const bytes = encoding === 'gzip' ? gunzipSync(raw) : raw;
    doc = JSON.parse(bytes.toString('utf8')) as { events?: EventRow[] };
  } catch {
    stats.badBodies += 1;
    return false;
  }
  if (batchIds.has(batchId)) {
    stats.duplicateBatches += 1;
    return true;
  }
  batchIds.add(batchId);
  stats.batches += 1;
  const events = Array.isArray(doc.events) ? doc.events : [];
  stats.events += events.length;
  for (const row of events) {
    if (typeof row.seq === 'number') seqs.add(row.seq);
    const t = row.data?.t;
    if (typeof t === 'number' && t >= latFrom) recordLatency(receivedMs - t);
  }
  stats.distinct = seqs.size;
  return true;
}

const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    chunks.push(c);
    size += c.length;
  });
  req.on('error', () => undefined);
  req.on('end', () => {
    const receivedMs = Date.now();
    stats.wireBytes += size;
    if (mode === '503') {
      stats.refused += 1;
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"error":"bench: sink outage"}');
      return;
    }
    const batchId = String(req.headers['idempotency-key'] ?? '');
    const ok = accept(Buffer.concat(chunks, size), req.headers['content-encoding'], batchId, receivedMs);
    res.writeHead(ok ? 200 : 400, { 'content-type': 'application/json' });
    res.end(ok ? '{"ok":true}' : '{"error":"unreadable body"}');
  });
});

process.on('message', (m: SinkCommand) => {
  switch (m.cmd) {
    case 'reset':
      reset();
      break;
    case 'mode':
      mode = m.mode;
      break;
    case 'latency':
      latFrom = m.fromMs;
      latN = 0;
      break;
    case 'latency-report':
      send({ type: 'done', id: m.id, report: latencyReport() });
      return;
    case 'exit':
      send({ type: 'done', id: m.id });
      server.close();
      setTimeout(() => process.exit(0), 50);
      return;
  }
  send({ type: 'done', id: m.id });
});
// The parent is gone: nothing left to measure.
process.on('disconnect', () => process.exit(0));

server.listen(0, '127.0.0.1', () => {
  send({ type: 'listening', port: (server.address() as AddressInfo).port });
  setInterval(() => send({ type: 'stats', stats: { ...stats }, atMs: Date.now() }), 50);
});
