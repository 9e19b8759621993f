import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Dispatcher } from 'undici';
import type { Outcome } from '../../machines/outcome.js';
import { classifyError, classifyResponse } from './classify.js';
import { continueTolerantConnector } from './interim-continue.js';
import { Pool, request } from './undici-parts.js';

/**
 * One HTTP(S) destination: POSTs sealed batches over a keep-alive undici Pool and turns every
 * result (response or network failure) into an Outcome. Never throws for HTTP or network
 * failures; throws TransportConfigError at creation for configuration that cannot work or
 * would be unsafe. The auth token never appears in errors, messages or `origin`.
 */

export interface HttpTransportOptions {
  url: string;
  authToken?: string;
  clientCertPath?: string;
  clientKeyPath?: string;
  caCertPath?: string;
  allowInsecureHttp: boolean;
  headers?: Record<string, string>;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  connections: number;
  userAgent: string;
}

export interface PostMeta {
  batchId: string;
  contentEncoding: 'gzip' | 'identity';
  itemCount: number;
}

export interface HttpTransport {
  /** scheme://host:port of the destination (no path, no credentials): the breaker key */
  readonly origin: string;
  post(body: Uint8Array, meta: PostMeta, signal?: AbortSignal): Promise<Outcome>;
  close(): Promise<void>;
}

export type TransportConfigErrorCode =
  'INSECURE_URL' | 'BAD_URL' | 'CLIENT_CERT' | 'CA_CERT' | 'BAD_HEADER' | 'BAD_OPTION';

export class TransportConfigError extends Error {
  constructor(
    readonly code: TransportConfigErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TransportConfigError';
  }
}

/** Bytes of a non-2xx response body kept for the excerpt (classify bounds it to 512 chars). */
const EXCERPT_BYTES = 2048;
/** Bytes of a response body we are willing to drain so the connection can be reused; beyond, destroy. */
const DRAIN_LIMIT = 64 * 1024;

/** Header names the transport owns: static extra headers may not set them. */
const RESERVED_HEADERS = new Set([
  'content-type',
  'content-encoding',
  'content-length',
  'user-agent',
  'idempotency-key',
  'authorization',
  'host',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'expect',
  'te',
  'trailer',
  'proxy-authorization',
]);

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// field-value: visible ASCII, space, tab and obs-text; never CR, LF or NUL.
const FIELD_VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** For messages: a URL without its userinfo, query and fragment. */
function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '<unparseable URL>';
  }
}

function parseDestination(opts: HttpTransportOptions): URL {
  let u: URL;
  try {
    u = new URL(opts.url);
  } catch {
    throw new TransportConfigError(
      'BAD_URL',
      'destination URL (TRANSMITTER_DESTINATION_URL) is not a valid URL',
    );
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw new TransportConfigError(
      'BAD_URL',
      `destination URL ${redactUrl(opts.url)} must use https:// (or http:// when explicitly allowed), not ${u.protocol}//`,
    );
  }
  if (u.username !== '' || u.password !== '') {
    throw new TransportConfigError(
      'BAD_URL',
      `destination URL ${redactUrl(opts.url)} must not carry credentials; use TRANSMITTER_AUTH_TOKEN or a client certificate`,
    );
  }
  if (u.hostname === '') throw new TransportConfigError('BAD_URL', 'destination URL has no host');
  if (u.protocol === 'http:') {
    if (!opts.allowInsecureHttp) {
      throw new TransportConfigError(
        'INSECURE_URL',
        `destination ${redactUrl(opts.url)} is plain http://: batches and the auth token would travel unencrypted. ` +
          'Use https://, or set TRANSMITTER_ALLOW_INSECURE_HTTP=true to accept that.',
      );
    }
    if (opts.clientCertPath || opts.clientKeyPath || opts.caCertPath) {
      // Never silently drop configured TLS material and talk plaintext.
      throw new TransportConfigError(
        'INSECURE_URL',
        `TLS settings (client certificate/key or CA certificate) are configured but the destination ` +
          `${redactUrl(opts.url)} is plain http://; they would be ignored. Use an https:// URL.`,
      );
    }
  }
  return u;
}

function readPem(path: string, code: 'CLIENT_CERT' | 'CA_CERT', what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new TransportConfigError(code, `cannot read ${what} ${path}: ${reason}`);
  }
}

interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
}

function loadTls(opts: HttpTransportOptions): TlsMaterial {
  const out: TlsMaterial = {};
  const { clientCertPath, clientKeyPath, caCertPath } = opts;
  if (caCertPath) {
    const ca = readPem(caCertPath, 'CA_CERT', 'CA certificate (TRANSMITTER_CA_CERT)');
    try {
      new X509Certificate(ca);
      createSecureContext({ ca });
    } catch (err) {
      throw new TransportConfigError(
        'CA_CERT',
        `CA certificate ${caCertPath} (TRANSMITTER_CA_CERT) is not a valid PEM certificate: ${(err as Error).message}`,
      );
    }
    out.ca = ca;
  }
  if (clientCertPath || clientKeyPath) {
    if (!clientCertPath || !clientKeyPath) {
      throw new TransportConfigError(
        'CLIENT_CERT',
        'mutual TLS needs both a client certificate (TRANSMITTER_CLIENT_CERT) and its key (TRANSMITTER_CLIENT_KEY); only ' +
          (clientCertPath ? 'the certificate' : 'the key') +
          ' is set',
      );
    }
    const cert = readPem(clientCertPath, 'CLIENT_CERT', 'client certificate (TRANSMITTER_CLIENT_CERT)');
    const key = readPem(clientKeyPath, 'CLIENT_CERT', 'client key (TRANSMITTER_CLIENT_KEY)');
    try {
      new X509Certificate(cert);
    } catch (err) {
      throw new TransportConfigError(
        'CLIENT_CERT',
        `client certificate ${clientCertPath} is not a valid PEM certificate: ${(err as Error).message}`,
      );
    }
    try {
      // Parses the key and checks that it belongs to the certificate ("key values mismatch").
      createSecureContext({ cert, key });
    } catch (err) {
      throw new TransportConfigError(
        'CLIENT_CERT',
        `client certificate ${clientCertPath} and key ${clientKeyPath} are not a usable pair: ${(err as Error).message}`,
      );
    }
    out.cert = cert;
    out.key = key;
  }
  return out;
}

function buildStaticHeaders(opts: HttpTransportOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [rawName, value] of Object.entries(opts.headers ?? {})) {
    const name = rawName.toLowerCase();
    if (!TOKEN_RE.test(name)) {
      throw new TransportConfigError(
        'BAD_HEADER',
        `extra header name ${JSON.stringify(rawName)} is not a valid token`,
      );
    }
    if (RESERVED_HEADERS.has(name)) {
      throw new TransportConfigError(
        'BAD_HEADER',
        `extra header ${name} is set by the transport itself and cannot be overridden`,
      );
    }
    if (typeof value !== 'string' || !FIELD_VALUE_RE.test(value)) {
      // The value is not echoed: it may be a secret.
      throw new TransportConfigError(
        'BAD_HEADER',
        `extra header ${name} has a value that is not a valid header value`,
      );
    }
    headers[name] = value;
  }
  if (!FIELD_VALUE_RE.test(opts.userAgent) || opts.userAgent === '') {
    throw new TransportConfigError('BAD_HEADER', 'user agent is empty or not a valid header value');
  }
  headers['content-type'] = 'application/json';
  headers['user-agent'] = opts.userAgent;
  if (opts.authToken !== undefined && opts.authToken !== '') {
    if (!FIELD_VALUE_RE.test(opts.authToken) || /^\s|\s$/.test(opts.authToken)) {
      throw new TransportConfigError(
        'BAD_HEADER',
        'auth token (TRANSMITTER_AUTH_TOKEN) contains characters that cannot be sent in a header',
      );
    }
    headers['authorization'] = `Bearer ${opts.authToken}`;
  }
  return headers;
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0)
    throw new TransportConfigError('BAD_OPTION', `${name} must be a positive number`);
  return v;
}

/** Reads up to EXCERPT_BYTES of the body, drains up to DRAIN_LIMIT, destroys the stream beyond. */
async function readExcerpt(body: Dispatcher.ResponseData['body']): Promise<string | undefined> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let seen = 0;
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer;
      if (keptBytes < EXCERPT_BYTES) {
        const part = b.subarray(0, EXCERPT_BYTES - keptBytes);
        kept.push(part);
        keptBytes += part.length;
      }
      seen += b.length;
      if (seen > DRAIN_LIMIT) break; // leaving the loop destroys the stream (and the socket)
    }
  } catch {
    // body timeout / reset while reading the excerpt: keep what we have, the status decides
  }
  return keptBytes === 0 ? undefined : Buffer.concat(kept).toString('utf8');
}

/** Thrown when a 2xx answer cannot be read to its end. */
class IncompleteResponseError extends Error {
  readonly code = 'RESPONSE_INCOMPLETE';
  constructor(cause: unknown) {
    super('the 2xx response body was cut off', { cause });
    this.name = 'IncompleteResponseError';
  }
}

/**
 * Reads a 2xx body to its end, keeping none of it. A success is only a success once the whole
 * answer arrived: a body cut off (connection closed early, content-length not reached) may mean
 * the receiver failed after sending its headers, and re-sending is safe with the idempotency-key.
 */
async function readToEnd(body: Dispatcher.ResponseData['body']): Promise<void> {
  try {
    for await (const _ of body) {
      // discard
    }
  } catch (error) {
    throw new IncompleteResponseError(error);
  }
}

function deadlineError(ms: number): Error {
  const e = new Error(`request deadline of ${ms} ms exceeded`);
  e.name = 'TimeoutError';
  return e;
}

/** Every check of the options (the URL, the TLS files, the headers), with what they yield. */
function checked(opts: HttpTransportOptions) {
  const url = parseDestination(opts);
  return {
    url,
    tls: url.protocol === 'https:' ? loadTls(opts) : {},
    staticHeaders: buildStaticHeaders(opts),
    connectTimeoutMs: positive('connectTimeoutMs', opts.connectTimeoutMs),
    requestTimeoutMs: positive('requestTimeoutMs', opts.requestTimeoutMs),
    connections: Math.max(1, Math.floor(positive('connections', opts.connections))),
  };
}

/** What createHttpTransport would refuse, refused without opening anything (a check before start-up). */
export function checkTransportOptions(opts: HttpTransportOptions): void {
  checked(opts);
}

export function createHttpTransport(opts: HttpTransportOptions): HttpTransport {
  const { url, tls, staticHeaders, connectTimeoutMs, requestTimeoutMs, connections } = checked(opts);
  const origin = url.origin;
  const path = `${url.pathname || '/'}${url.search}`;
  // Overall bound for one attempt: connect + the request/response exchange.
  const deadlineMs = connectTimeoutMs + requestTimeoutMs;

  const pool = new Pool(origin, {
    connections,
    pipelining: 1,
    allowH2: false,
    headersTimeout: requestTimeoutMs,
    bodyTimeout: requestTimeoutMs,
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
    connect: continueTolerantConnector({
      timeout: connectTimeoutMs,
      rejectUnauthorized: true,
      ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
      ...(tls.cert !== undefined ? { cert: tls.cert, key: tls.key } : {}),
    }),
  });
  let closing: Promise<void> | undefined;

  async function post(body: Uint8Array, meta: PostMeta, signal?: AbortSignal): Promise<Outcome> {
    if (closing) return { kind: 'retryable', reason: 'transport_closed' };
    if (signal?.aborted) return { kind: 'retryable', reason: 'aborted' };
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(deadlineError(deadlineMs)), deadlineMs);
    const onAbort = () => ac.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const headers: Record<string, string> = { ...staticHeaders, 'idempotency-key': meta.batchId };
      if (meta.contentEncoding === 'gzip') headers['content-encoding'] = 'gzip';
      const res = await request(pool, {
        path,
        method: 'POST',
        headers,
        body: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
        signal: ac.signal,
      });
      let bodyExcerpt: string | undefined;
      if (res.statusCode >= 200 && res.statusCode <= 299) await readToEnd(res.body);
      else bodyExcerpt = await readExcerpt(res.body);
      return classifyResponse(
        {
          status: res.statusCode,
          headers: res.headers,
          itemCount: meta.itemCount,
          ...(bodyExcerpt !== undefined ? { bodyExcerpt } : {}),
        },
        Date.now(),
      );
    } catch (err) {
      if (signal?.aborted) return { kind: 'retryable', reason: 'aborted' };
      if (err instanceof IncompleteResponseError) return { kind: 'retryable', reason: 'response_incomplete' };
      return classifyError(err);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  return {
    origin,
    post,
    close() {
      // Waits for in-flight requests, each bounded by the deadline above.
      closing ??= pool.close().catch(() => undefined);
      return closing;
    },
  };
}
