/**
 * One loopback HTTP receiver for the pino comparison, speaking just enough of each transport's
 * protocol to count what arrives: batch-emitter's batches (POST /batches, gzip JSON, `events[]`),
 * a Loki push endpoint (POST /loki/api/v1/push, JSON `streams[].values`) and an OTLP/HTTP logs
 * endpoint (POST /v1/logs, JSON `resourceLogs[].scopeLogs[].logRecords`). Every bench line carries
 * its number as `seqNo`; the receiver marks each number seen, so lost lines and duplicates are
 * counted exactly. `down()` closes the port (connection refused), `up()` opens it again.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/**
 * the number of a line, as each protocol carries it: batch-emitter keeps the line's JSON as the
 * event's data, pino-loki sends it as a JSON string (its quotes escaped)
 */
const LINE_NUMBER = /\\?"seqNo\\?":(\d+)/g;
/** OTLP JSON: every pino key but msg, level and time becomes an attribute */
const OTLP_NUMBER = /"key":"seqNo","value":\{"intValue":"?(\d+)/g;

export type Protocol = 'batches' | 'loki' | 'otlp';

const PATHS: Record<string, Protocol> = {
  '/batches': 'batches',
  '/loki/api/v1/push': 'loki',
  '/v1/logs': 'otlp',
};

export class CountingReceiver {
  private seen = new Uint8Array(0);
  /** distinct line numbers received since the last reset */
  distinct = 0;
  duplicates = 0;
  requests = 0;
  /** epoch ms of the last request that brought a line not seen before */
  lastNewAt = 0;
  private port = 0;

  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<CountingReceiver> {
    const server = http.createServer();
    const receiver = new CountingReceiver(server);
    server.on('request', (req, res) => receiver.onRequest(req, res));
    server.keepAliveTimeout = 5000;
    await receiver.up();
    return receiver;
  }

  url(protocol: Protocol): string {
    const path = Object.entries(PATHS).find(([, p]) => p === protocol)?.[0] ?? '/';
    return `http://127.0.0.1:${this.port}${path}`;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Forget what arrived; lines numbered 0..lines-1 are expected next. */
  reset(lines: number): void {
    this.seen = new Uint8Array(lines);
    this.distinct = 0;
    this.duplicates = 0;
    this.requests = 0;
    this.lastNewAt = 0;
  }

  /** whether line `n` has arrived since the last reset */
  has(n: number): boolean {
    return this.seen[n] === 1;
  }

  /** Connection refused from now on (open connections are cut). */
  async down(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** Listening again, on the same port as before (a fresh port the first time). */
  up(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject);
        this.port = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return this.down();
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const protocol = PATHS[req.url ?? ''];
      if (req.method !== 'POST' || protocol === undefined) {
        res.writeHead(404).end();
        return;
      }
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
      this.count(raw.toString('utf8'), protocol === 'otlp' ? OTLP_NUMBER : LINE_NUMBER);
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(protocol === 'otlp' ? '{}' : '{"ok":true}');
    });
  }

  private count(body: string, pattern: RegExp): void {
    this.requests += 1;
    let fresh = false;
    for (const match of body.matchAll(pattern)) {
      const n = Number(match[1]);
      if (n >= this.seen.length) continue;
      if (this.seen[n] === 1) this.duplicates += 1;
      else {
        this.seen[n] = 1;
        this.distinct += 1;
        fresh = true;
      }
    }
    if (fresh) this.lastNewAt = Date.now();
  }
}
