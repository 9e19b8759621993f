import { describe, expect, it } from 'vitest';
import { errors as undiciErrors } from 'undici';
import {
  BODY_EXCERPT_MAX_CHARS,
  classifyError,
  classifyResponse,
  headerValue,
  parseRetryAfter,
} from '../src/delivery/classify.js';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);

function errno(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

describe('parseRetryAfter', () => {
  it('reads delay-seconds, integer and fractional', () => {
    expect(parseRetryAfter('0', NOW)).toBe(0);
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter(' 7 ', NOW)).toBe(7_000);
    expect(parseRetryAfter('1.5', NOW)).toBe(1_500);
    expect(parseRetryAfter('0.0001', NOW)).toBe(1);
  });

  it('reads the three HTTP-date forms relative to now', () => {
    expect(parseRetryAfter('Wed, 01 Jan 2025 12:00:30 GMT', NOW)).toBe(30_000);
    expect(parseRetryAfter('Wednesday, 01-Jan-25 12:01:00 GMT', NOW)).toBe(60_000);
    expect(parseRetryAfter('Wed Jan  1 12:00:05 2025', NOW)).toBe(5_000);
    expect(parseRetryAfter(new Date(NOW + 90_000).toUTCString(), NOW)).toBe(90_000);
  });

  it('a date in the past means now', () => {
    expect(parseRetryAfter('Tue, 31 Dec 2024 12:00:00 GMT', NOW)).toBe(0);
  });

  it('rejects garbage', () => {
    for (const v of [
      undefined,
      '',
      '  ',
      '-1',
      '1e3',
      'soon',
      '12abc',
      '0x10',
      'Wed, 32 Foo 2025 12:00:00 GMT',
      'Wed, 01 Jan 2025 12:00:00 UTC',
    ]) {
      expect(parseRetryAfter(v, NOW), String(v)).toBeUndefined();
    }
  });
});

describe('classifyResponse', () => {
  const r = (status: number, extra: Partial<Parameters<typeof classifyResponse>[0]> = {}) =>
    classifyResponse({ status, headers: {}, itemCount: 10, ...extra }, NOW);

  it('2xx is success', () => {
    expect(r(200)).toEqual({ kind: 'success', status: 200 });
    expect(r(202)).toEqual({ kind: 'success', status: 202 });
    expect(r(204)).toEqual({ kind: 'success', status: 204 });
  });

  it('408, 429 and 5xx are retryable, honouring Retry-After', () => {
    expect(r(500)).toEqual({ kind: 'retryable', status: 500, reason: 'http_500' });
    expect(r(408)).toEqual({ kind: 'retryable', status: 408, reason: 'http_408' });
    expect(r(599).kind).toBe('retryable');
    expect(r(503, { headers: { 'retry-after': '3' } })).toEqual({
      kind: 'retryable',
      status: 503,
      reason: 'http_503',
      retryAfterMs: 3_000,
    });
    expect(r(429, { headers: { 'Retry-After': ['Wed, 01 Jan 2025 12:00:10 GMT', '99'] } })).toMatchObject({
      retryAfterMs: 10_000,
    });
    expect(r(503, { headers: { 'retry-after': 'whenever' } })).not.toHaveProperty('retryAfterMs');
  });

  it('413 splits a batch of several items, is permanent for a single item', () => {
    expect(r(413)).toEqual({ kind: 'split', status: 413 });
    expect(r(413, { itemCount: 2 })).toEqual({ kind: 'split', status: 413 });
    expect(r(413, { itemCount: 1, bodyExcerpt: 'too big' })).toEqual({
      kind: 'permanent',
      status: 413,
      reason: 'http_413',
      bodyExcerpt: 'too big',
    });
  });

  it('other 4xx are permanent with a bounded excerpt', () => {
    expect(r(400, { bodyExcerpt: '{"error":"bad"}' })).toEqual({
      kind: 'permanent',
      status: 400,
      reason: 'http_400',
      bodyExcerpt: '{"error":"bad"}',
    });
    expect(r(401)).toEqual({ kind: 'permanent', status: 401, reason: 'http_401' });
    const long = r(422, { bodyExcerpt: 'x'.repeat(5000) });
    expect(long.kind).toBe('permanent');
    if (long.kind === 'permanent') expect(long.bodyExcerpt!.length).toBe(BODY_EXCERPT_MAX_CHARS + 1);
  });

  it('1xx and 3xx are permanent (redirects are not followed)', () => {
    expect(r(301)).toMatchObject({
      kind: 'permanent',
      status: 301,
      reason: 'http_301_redirect_not_followed',
    });
    expect(r(307).kind).toBe('permanent');
    expect(r(101).kind).toBe('permanent');
  });

  it('headerValue is case-insensitive', () => {
    expect(headerValue({ 'Retry-After': '1' }, 'retry-after')).toBe('1');
    expect(headerValue({ a: undefined }, 'a')).toBeUndefined();
  });
});

describe('classifyError', () => {
  const reason = (e: unknown) => {
    const o = classifyError(e);
    expect(o.kind).toBe('retryable');
    return o.kind === 'retryable' ? o.reason : undefined;
  };

  it('undici timeouts', () => {
    expect(reason(new undiciErrors.HeadersTimeoutError())).toBe('timeout');
    expect(reason(new undiciErrors.BodyTimeoutError())).toBe('timeout');
    expect(reason(new undiciErrors.ConnectTimeoutError())).toBe('connect_timeout');
    const own = Object.assign(new Error('deadline'), { name: 'TimeoutError' });
    expect(reason(own)).toBe('timeout');
    expect(reason(new DOMException('t', 'TimeoutError'))).toBe('timeout');
  });

  it('network errno codes, also through cause chains and AggregateErrors', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH']) {
      expect(reason(errno(code))).toBe(code);
    }
    expect(reason(new TypeError('fetch failed', { cause: errno('ECONNREFUSED') }))).toBe('ECONNREFUSED');
    const agg = Object.assign(new AggregateError([errno('ECONNREFUSED'), errno('ECONNREFUSED')]), {
      code: 'ECONNREFUSED',
    });
    expect(reason(agg)).toBe('ECONNREFUSED');
    expect(reason(new AggregateError([errno('ENETUNREACH')]))).toBe('ENETUNREACH');
  });

  it('socket closed by the peer', () => {
    expect(reason(new undiciErrors.SocketError('other side closed'))).toBe('socket_closed');
    expect(reason(new Error('socket hang up'))).toBe('socket_closed');
    const withCause = new undiciErrors.SocketError('other side closed');
    (withCause as Error).cause = errno('ECONNRESET');
    expect(reason(withCause)).toBe('ECONNRESET');
  });

  it('TLS verification failures are retryable with a tls: reason', () => {
    for (const code of [
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'SELF_SIGNED_CERT_IN_CHAIN',
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'CERT_HAS_EXPIRED',
      'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
    ]) {
      expect(reason(errno(code))).toBe(`tls:${code}`);
    }
    expect(reason(new Error('x', { cause: errno('CERT_HAS_EXPIRED') }))).toBe('tls:CERT_HAS_EXPIRED');
  });

  it('aborts and unknown errors', () => {
    expect(reason(new undiciErrors.RequestAbortedError())).toBe('aborted');
    expect(reason(new DOMException('stop', 'AbortError'))).toBe('aborted');
    expect(reason(new undiciErrors.ClientDestroyedError())).toBe('UND_ERR_DESTROYED');
    expect(reason(new RangeError('x'))).toBe('RangeError');
    expect(reason('a string')).toBe('unknown');
    expect(reason(undefined)).toBe('unknown');
    expect(reason(Object.assign(new Error('x'), { code: 'weird code with spaces' }))).toBe('unknown');
  });
});
