import type { Outcome } from '../../machines/outcome.js';

/**
 * Pure classification of one delivery attempt: success, retryable, split or permanent.
 * No I/O, no clock: the caller passes `nowMs`.
 */

/** Longest body excerpt kept in a permanent outcome (characters). */
export const BODY_EXCERPT_MAX_CHARS = 512;

const MONTHS: Record<string, number> = {
  jan: 0,
  feb: 1,
  mar: 2,
  apr: 3,
  may: 4,
  jun: 5,
  jul: 6,
  aug: 7,
  sep: 8,
  oct: 9,
  nov: 10,
  dec: 11,
};

// The three HTTP-date forms of RFC 9110 section 5.6.7 (all UTC).
// IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
const IMF_FIXDATE = /^[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
// obsolete RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
const RFC850 = /^[A-Za-z]{6,9}, (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
// obsolete asctime: Sun Nov  6 08:49:37 1994
const ASCTIME = /^[A-Za-z]{3} ([A-Za-z]{3}) ( ?\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

function utc(
  year: number,
  monthName: string,
  day: number,
  h: number,
  m: number,
  s: number,
): number | undefined {
  const month = MONTHS[monthName.toLowerCase()];
  if (month === undefined || day < 1 || day > 31 || h > 23 || m > 59 || s > 60) return undefined;
  const t = Date.UTC(year, month, day, h, m, Math.min(s, 59));
  return Number.isFinite(t) ? t : undefined;
}

function parseHttpDate(value: string): number | undefined {
  let g = IMF_FIXDATE.exec(value);
  if (g) return utc(Number(g[3]), g[2]!, Number(g[1]), Number(g[4]), Number(g[5]), Number(g[6]));
  g = RFC850.exec(value);
  if (g) {
    // RFC 9110: a two-digit year that appears more than 50 years in the future is in the past
    // century. Without a clock reference here, 70..99 -> 19xx, 00..69 -> 20xx is good enough.
    const yy = Number(g[3]);
    return utc(
      yy >= 70 ? 1900 + yy : 2000 + yy,
      g[2]!,
      Number(g[1]),
      Number(g[4]),
      Number(g[5]),
      Number(g[6]),
    );
  }
  g = ASCTIME.exec(value);
  if (g) return utc(Number(g[6]), g[1]!, Number(g[2]!.trim()), Number(g[3]), Number(g[4]), Number(g[5]));
  return undefined;
}

/**
 * Retry-After (RFC 9110 section 10.2.3): delay-seconds (we also accept fractional seconds) or an
 * HTTP-date. Returns milliseconds from `nowMs`, never negative (a date in the past means "now").
 * Anything else (empty, negative, garbage, unparseable date) returns undefined. Not capped here:
 * the delivery machine caps it at the maximum retry delay.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) {
    const ms = Math.ceil(Number(v) * 1000);
    return Number.isFinite(ms) ? ms : undefined;
  }
  const at = parseHttpDate(v);
  if (at === undefined) return undefined;
  return Math.max(0, at - nowMs);
}

/** Case-insensitive header lookup; a repeated header yields its first value. */
export function headerValue(
  headers: Record<string, string | string[] | undefined>,
  name: string,
): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== wanted || v === undefined) continue;
    return Array.isArray(v) ? v[0] : v;
  }
  return undefined;
}

/** Trim and bound a response body excerpt; undefined when there is nothing useful to keep. */
export function boundExcerpt(text: string | undefined, max = BODY_EXCERPT_MAX_CHARS): string | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === '') return undefined;
  // Spread by code point so a surrogate pair is never cut in half.
  const chars = Array.from(t);
  return chars.length <= max ? t : `${chars.slice(0, max).join('')}…`;
}

export interface ResponseSummary {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** the start of the response body (the transport reads only a bounded prefix) */
  bodyExcerpt?: string;
  /** how many items the batch carried: decides between split and permanent on 413 */
  itemCount: number;
}

export function classifyResponse(r: ResponseSummary, nowMs: number): Outcome {
  const { status } = r;
  if (status >= 200 && status <= 299) return { kind: 'success', status };
  if (status === 408 || status === 429 || (status >= 500 && status <= 599)) {
    const retryAfterMs = parseRetryAfter(headerValue(r.headers, 'retry-after'), nowMs);
    return retryAfterMs === undefined
      ? { kind: 'retryable', status, reason: `http_${status}` }
      : { kind: 'retryable', status, reason: `http_${status}`, retryAfterMs };
  }
  if (status === 413 && r.itemCount > 1) return { kind: 'split', status: 413 };
  // 413 with a single item, every other 4xx, and also 1xx/3xx (and anything outside 100..599):
  // permanent. Redirects are deliberately not followed: re-sending the batch (and its bearer
  // token) to a location named by the response would leak data to an endpoint the operator never
  // configured or verified; a moved destination is a configuration change, not a retry.
  const bodyExcerpt = boundExcerpt(r.bodyExcerpt);
  const reason = status >= 300 && status <= 399 ? `http_${status}_redirect_not_followed` : `http_${status}`;
  return bodyExcerpt === undefined
    ? { kind: 'permanent', status, reason }
    : { kind: 'permanent', status, reason, bodyExcerpt };
}

/** Certificate / TLS verification codes from OpenSSL (via Node) that mean "the peer is not trusted". */
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
  'EPROTO',
]);

function isTlsCode(code: string): boolean {
  return TLS_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_');
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ABORT_ERR_TIMEOUT',
]);

/** Network-level codes that are worth reporting as they are. */
const PLAIN_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NODATA',
  'EAI_NONAME',
]);

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/** The error, its `cause` chain and the members of AggregateErrors (happy-eyeballs connects), breadth first. */
function errorChain(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  const queue: unknown[] = [err];
  const seen = new Set<unknown>();
  while (queue.length > 0 && out.length < 16) {
    const e = queue.shift();
    if (e === null || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const el = e as ErrorLike;
    out.push(el);
    if (el.cause !== undefined) queue.push(el.cause);
    if (Array.isArray(el.errors)) queue.push(...(el.errors as unknown[]));
  }
  return out;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function retry(reason: string): Outcome {
  return { kind: 'retryable', reason };
}

/**
 * Classify a thrown error (no HTTP response). Every network-level failure is retryable: the
 * batch stays spooled and the breaker counts it. Reasons are short codes:
 *  - `timeout` (headers/body/overall deadline: request sent, no answer in time),
 *    `connect_timeout` (TCP/TLS connect did not complete),
 *  - `aborted` (the caller's AbortSignal),
 *  - `tls:<CODE>` for certificate verification and handshake failures. These are retryable, not
 *    permanent, on purpose: the batch is fine, the trust configuration (CA bundle, client cert,
 *    server cert rotation) is what is wrong, and fixing it must let the spooled batch go through
 *    rather than having dead-lettered it. The breaker opens, so attempts are not burnt quickly.
 *  - the errno code (`ECONNREFUSED`, `ECONNRESET`, `EPIPE`, `EAI_AGAIN`, `ENOTFOUND`, ...),
 *  - `socket_closed` for undici's "other side closed" / socket hang up,
 *  - otherwise the error's own code or name (`UND_ERR_...`, `TypeError`), or `unknown`.
 */
export function classifyError(err: unknown): Outcome {
  const chain = errorChain(err);
  if (chain.length === 0) return retry('unknown');

  // 1. TLS anywhere in the chain wins: "socket closed" caused by a bad certificate is a TLS problem.
  for (const e of chain) {
    const code = str(e.code);
    if (code && isTlsCode(code)) return retry(`tls:${code}`);
  }
  // 2. Timeouts (undici's, ours, the platform's).
  for (const e of chain) {
    const code = str(e.code);
    const name = str(e.name);
    if (code === 'UND_ERR_CONNECT_TIMEOUT' || name === 'ConnectTimeoutError') return retry('connect_timeout');
    if ((code && TIMEOUT_CODES.has(code)) || name === 'TimeoutError') return retry('timeout');
    if (name === 'HeadersTimeoutError' || name === 'BodyTimeoutError') return retry('timeout');
  }
  // 3. Plain network errno codes (deepest meaningful one: undici wraps them).
  for (const e of chain) {
    const code = str(e.code);
    if (code && PLAIN_CODES.has(code)) return retry(code);
  }
  // 4. Socket closed by the peer / socket hang up.
  for (const e of chain) {
    const code = str(e.code);
    const message = str(e.message) ?? '';
    if (code === 'UND_ERR_SOCKET' || /other side closed|socket hang up/i.test(message)) {
      return retry('socket_closed');
    }
  }
  // 5. Aborts that were not our timeout: the caller cancelled.
  for (const e of chain) {
    const code = str(e.code);
    const name = str(e.name);
    if (
      code === 'UND_ERR_ABORTED' ||
      code === 'UND_ERR_ABORT' ||
      code === 'ABORT_ERR' ||
      name === 'AbortError'
    ) {
      return retry('aborted');
    }
  }
  // 6. Anything else: retryable, named by its code or name. Never lose a batch to an error we
  // do not recognise; the breaker and max attempts bound the cost.
  const first = chain[0]!;
  const named = str(first.code) ?? str(first.name);
  return retry(named && /^[\w:.-]{1,64}$/.test(named) ? named : 'unknown');
}
