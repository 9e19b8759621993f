import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';

/**
 * The demo's ingestion endpoint: a loopback HTTP server that gunzips and parses every batch,
 * remembers the distinct items per section, and answers 200. It answers 503 to its first
 * `failFirst` requests, so the emitter's retry is visible in the demo.
 */

export const SECTIONS = ['nodes_domain', 'nodes_ip', 'nodes_cert', 'edges', 'events'] as const;
export type Section = (typeof SECTIONS)[number];

type Row = Record<string, unknown>;

/** The identity of a delivered item, as the receiver would key it. */
export function itemKey(section: Section, row: Row): string {
  switch (section) {
    case 'nodes_domain':
      return String(row.host);
    case 'nodes_ip':
      return String(row.ip);
    case 'nodes_cert':
      return String(row.spki_sha256);
    case 'edges':
      return `${String(row.type)}|${String(row.source)}|${String(row.target)}`;
    case 'events':
      return String((row.data as { id?: unknown } | undefined)?.id);
  }
}

export interface DemoSink {
  readonly url: string;
  /** distinct item keys received in accepted (200) batches, per section */
  readonly distinct: Record<Section, Set<string>>;
  /** item rows received in accepted batches (a merged duplicate is one row) */
  readonly rows: Record<Section, number>;
  readonly stats: {
    requests: number;
    /** batches answered 200 (each batch_id counted once) */
    accepted: number;
    /** requests answered 503 on purpose */
    injected503: number;
    /** distinct batches (idempotency-keys) among the 503 answers */
    refusedBatches: number;
    /** of those, how many were accepted later under the same idempotency-key */
    retriedAccepted: number;
    /** accepted again under an idempotency-key already accepted (dropped, as a receiver should) */
    duplicateBatches: number;
    /** bodies that could not be read (answered 400) */
    badBodies: number;
    lastBadBody?: string;
  };
  distinctTotal(): number;
  close(): Promise<void>;
}

function emptyCounts<T>(make: () => T): Record<Section, T> {
  return Object.fromEntries(SECTIONS.map((s) => [s, make()])) as Record<Section, T>;
}

function readBody(raw: Buffer, encoding: string | undefined): Record<string, unknown> {
  const bytes = encoding?.toLowerCase() === 'gzip' ? gunzipSync(raw) : raw;
  const doc: unknown = JSON.parse(bytes.toString('utf8'));
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not a JSON object');
  return doc as Record<string, unknown>;
}

export async function startDemoSink(opts: { failFirst: number; path?: string }): Promise<DemoSink> {
  const distinct = emptyCounts(() => new Set<string>());
  const rows = emptyCounts(() => 0);
  const stats: DemoSink['stats'] = {
    requests: 0,
    accepted: 0,
    injected503: 0,
    refusedBatches: 0,
    retriedAccepted: 0,
    duplicateBatches: 0,
    badBodies: 0,
  };
  const acceptedIds = new Set<string>();
  const refusedIds = new Set<string>();
  const sockets = new Set<Socket>();

  const answer = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    req.on('end', () => {
      stats.requests += 1;
      if (stats.requests <= opts.failFirst) {
        stats.injected503 += 1;
        refusedIds.add(String(req.headers['idempotency-key']));
        stats.refusedBatches = refusedIds.size;
        answer(res, 503, { error: 'demo: injected failure, please retry' });
        return;
      }
      let doc: Record<string, unknown>;
      try {
        doc = readBody(Buffer.concat(chunks), req.headers['content-encoding']);
      } catch (error) {
        stats.badBodies += 1;
        stats.lastBadBody = (error as Error).message;
        answer(res, 400, { error: 'unreadable body' });
        return;
      }
      const batchId = String(req.headers['idempotency-key'] ?? doc.batch_id);
      if (acceptedIds.has(batchId)) {
        stats.duplicateBatches += 1;
        answer(res, 200, { ok: true, duplicate: true });
        return;
      }
      acceptedIds.add(batchId);
      stats.accepted += 1;
      if (refusedIds.has(batchId)) stats.retriedAccepted += 1;
      for (const section of SECTIONS) {
        const list = doc[section];
        if (!Array.isArray(list)) continue;
        rows[section] += list.length;
        for (const row of list as Row[]) distinct[section].add(itemKey(section, row));
      }
      answer(res, 200, { ok: true });
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    url: `http://127.0.0.1:${port}${opts.path ?? '/ingest'}`,
    distinct,
    rows,
    stats,
    distinctTotal: () => SECTIONS.reduce((n, s) => n + distinct[s].size, 0),
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}
