import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { gunzipSync } from 'node:zlib';

/**
 * A real loopback HTTP(S) ingestion endpoint for tests. Records every request, answers
 * 200 {"ok":true} unless programmed otherwise.
 */

export interface SinkRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** the body exactly as received (still gzipped when content-encoding is gzip) */
  raw: Buffer;
  /** gunzipped when content-encoding is gzip, then JSON-parsed; the text if not JSON; undefined if empty */
  body: unknown;
  /** set when the body could not be gunzipped */
  bodyError?: string;
  receivedAt: number;
  /** the client's source port: equal ports on consecutive requests mean a reused keep-alive connection */
  remotePort?: number;
  /** CN of the client certificate presented over TLS, if any */
  clientCertCN?: string;
  /** whether that client certificate verified against the sink's CA */
  clientAuthorized?: boolean;
}

export type SinkReply =
  | { status: number; headers?: Record<string, string>; body?: unknown }
  /** destroy the socket without answering */
  | 'reset'
  /** never answer (the socket stays open until the client gives up or the sink closes) */
  | 'hang';

export type SinkHandler = (req: SinkRequest, index: number) => SinkReply | Promise<SinkReply>;

export interface SinkOptions {
  tls?: {
    cert: string;
    key: string;
    ca?: string;
    requestCert?: boolean;
    /** defaults to requestCert: with requestCert, unverified clients are refused at the handshake */
    rejectUnauthorized?: boolean;
  };
}

export interface Sink {
  /** base URL, e.g. http://127.0.0.1:43123 (any path is accepted) */
  readonly url: string;
  readonly port: number;
  /** every completed request, in arrival order */
  readonly requests: SinkRequest[];
  /** TLS handshake failures seen by the server (e.g. a refused client certificate) */
  readonly tlsErrors: Error[];
  /** program the answers; undefined restores the default 200 {"ok":true} */
  respondWith(handler: SinkHandler | undefined): void;
  /** the next n requests get `status` (before the handler is consulted) */
  failNext(n: number, status?: number): void;
  /** stop listening and drop every open connection: connections are refused until up() */
  down(): Promise<void>;
  /** listen again on the same port */
  up(): Promise<void>;
  /** resolves with `requests` once pred(requests) is true; rejects after timeoutMs */
  waitFor(pred: (requests: SinkRequest[]) => boolean, timeoutMs?: number): Promise<SinkRequest[]>;
  /** forget recorded requests (the index passed to handlers restarts at 0) */
  clear(): void;
  close(): Promise<void>;
}

function decodeBody(raw: Buffer, encoding: string | undefined): { body: unknown; bodyError?: string } {
  let bytes = raw;
  if (encoding?.toLowerCase() === 'gzip') {
    try {
      bytes = gunzipSync(raw);
    } catch (err) {
      return { body: undefined, bodyError: `gunzip: ${(err as Error).message}` };
    }
  }
  if (bytes.length === 0) return { body: undefined };
  const text = bytes.toString('utf8');
  try {
    return { body: JSON.parse(text) as unknown };
  } catch {
    return { body: text };
  }
}

export async function startSink(opts: SinkOptions = {}): Promise<Sink> {
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const requests: SinkRequest[] = [];
  const tlsErrors: Error[] = [];
  const sockets = new Set<Socket>();
  let handler: SinkHandler | undefined;
  let failures: { left: number; status: number } = { left: 0, status: 500 };
  let listening = false;
  let closed = false;

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    req.on('end', () => {
      void (async () => {
        const raw = Buffer.concat(chunks);
        const decoded = decodeBody(raw, req.headers['content-encoding']);
        const record: SinkRequest = {
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          raw,
          ...decoded,
          receivedAt: Date.now(),
          ...(req.socket.remotePort !== undefined ? { remotePort: req.socket.remotePort } : {}),
        };
        const sock = req.socket as Partial<TLSSocket>;
        if (typeof sock.getPeerCertificate === 'function') {
          const cert = sock.getPeerCertificate();
          const cn = cert?.subject?.CN;
          if (cn) {
            record.clientCertCN = Array.isArray(cn) ? cn.join(',') : cn;
            record.clientAuthorized = sock.authorized === true;
          }
        }
        const index = requests.length;
        requests.push(record);
        events.emit('request', record);

        let reply: SinkReply;
        if (failures.left > 0) {
          failures.left -= 1;
          reply = { status: failures.status, body: { error: 'injected failure' } };
        } else if (handler) {
          try {
            reply = await handler(record, index);
          } catch (err) {
            reply = { status: 500, body: { error: `sink handler threw: ${(err as Error).message}` } };
          }
        } else {
          reply = { status: 200, body: { ok: true } };
        }
        if (reply === 'reset') {
          req.socket.destroy();
          return;
        }
        if (reply === 'hang') return;
        const headers: Record<string, string> = { ...reply.headers };
        let payload: string | Buffer | undefined;
        if (reply.body === undefined) payload = undefined;
        else if (Buffer.isBuffer(reply.body) || typeof reply.body === 'string') payload = reply.body;
        else {
          payload = JSON.stringify(reply.body);
          if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
            headers['content-type'] = 'application/json';
          }
        }
        res.writeHead(reply.status, headers);
        res.end(payload);
      })();
    });
  };

  const server: http.Server = opts.tls
    ? https.createServer(
        {
          cert: opts.tls.cert,
          key: opts.tls.key,
          ...(opts.tls.ca !== undefined ? { ca: opts.tls.ca } : {}),
          requestCert: opts.tls.requestCert ?? false,
          rejectUnauthorized: opts.tls.rejectUnauthorized ?? opts.tls.requestCert ?? false,
        },
        onRequest,
      )
    : http.createServer(onRequest);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', (err: Error) => {
    tlsErrors.push(err);
    events.emit('tlsError', err);
  });
  server.on('clientError', (_err, socket: Socket) => socket.destroy());

  const listen = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', onError);
        listening = true;
        resolve();
      });
    });

  const stopListening = (): Promise<void> =>
    new Promise((resolve) => {
      if (!listening) return resolve();
      listening = false;
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });

  await listen(0);
  const port = (server.address() as AddressInfo).port;
  const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  return {
    url,
    port,
    requests,
    tlsErrors,
    respondWith(h) {
      handler = h;
    },
    failNext(n, status = 500) {
      failures = { left: n, status };
    },
    down: stopListening,
    async up() {
      if (closed) throw new Error('sink is closed');
      if (!listening) await listen(port);
    },
    waitFor(pred, timeoutMs = 5_000) {
      return new Promise((resolve, reject) => {
        if (pred(requests)) return resolve(requests);
        const check = () => {
          if (!pred(requests)) return;
          cleanup();
          resolve(requests);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(`sink.waitFor: condition not met within ${timeoutMs} ms (${requests.length} requests)`),
          );
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          events.off('request', check);
        };
        events.on('request', check);
      });
    },
    clear() {
      requests.length = 0;
    },
    async close() {
      closed = true;
      await stopListening();
      events.removeAllListeners();
    },
  };
}
