import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Outcome } from '../machines/outcome.js';
import {
  createHttpTransport,
  TransportConfigError,
  type HttpTransport,
  type HttpTransportOptions,
} from '../src/delivery/http-transport.js';
import { getTestPki, type TestPki } from '../harness/pki.js';
import { startSink, type Sink } from '../harness/sink.js';

const TOKEN = 's3cr3t-token-value-never-logged';
const batch = {
  batch_id: 'b-1',
  nodes_domain: [],
  nodes_ip: [],
  nodes_cert: [],
  edges: [],
  events: [{ a: 1 }],
};
const gz = new Uint8Array(gzipSync(Buffer.from(JSON.stringify(batch))));
const meta = (over: Partial<Parameters<HttpTransport['post']>[1]> = {}) => ({
  batchId: '0190a5d2-7c1e-7000-8000-000000000001',
  contentEncoding: 'gzip' as const,
  itemCount: 5,
  ...over,
});

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((x) => x.close()));
});

async function sinkOf(opts?: Parameters<typeof startSink>[0]): Promise<Sink> {
  const s = await startSink(opts);
  open.push(s);
  return s;
}

function transport(over: Partial<HttpTransportOptions> & { url: string }): HttpTransport {
  const t = createHttpTransport({
    allowInsecureHttp: true,
    connectTimeoutMs: 2_000,
    requestTimeoutMs: 5_000,
    connections: 2,
    userAgent: 'batch-emitter/0.1.0',
    ...over,
  });
  open.push(t);
  return t;
}

function configError(fn: () => unknown): TransportConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TransportConfigError);
    return err as TransportConfigError;
  }
  throw new Error('expected a TransportConfigError');
}

function reasonOf(o: Outcome): string {
  expect(o.kind).toBe('retryable');
  return o.kind === 'retryable' ? o.reason : '';
}

describe('http transport: wire format', () => {
  it('POSTs the gzip body intact with the wire-format headers', async () => {
    const sink = await sinkOf();
    const t = transport({ url: `${sink.url}/v1/batches?src=probe` });
    expect(t.origin).toBe(sink.url);
    expect(await t.post(gz, meta())).toEqual({ kind: 'success', status: 200 });
    const [req] = sink.requests;
    expect(req!.method).toBe('POST');
    expect(req!.url).toBe('/v1/batches?src=probe');
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.headers['content-encoding']).toBe('gzip');
    expect(req!.headers['user-agent']).toBe('batch-emitter/0.1.0');
    expect(req!.headers['idempotency-key']).toBe(meta().batchId);
    expect(req!.headers['content-length']).toBe(String(gz.byteLength));
    expect(req!.headers.authorization).toBeUndefined();
    expect(Buffer.compare(req!.raw, Buffer.from(gz))).toBe(0);
    expect(req!.body).toEqual(batch);
  });

  it('sends identity bodies without content-encoding, the bearer token and extra headers', async () => {
    const sink = await sinkOf();
    const t = transport({
      url: sink.url,
      authToken: TOKEN,
      headers: { 'X-Tenant': 'acme', 'x-env': 'test' },
    });
    const plain = new TextEncoder().encode(JSON.stringify(batch));
    expect((await t.post(plain, meta({ contentEncoding: 'identity' }))).kind).toBe('success');
    const [req] = sink.requests;
    expect(req!.headers['content-encoding']).toBeUndefined();
    expect(req!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(req!.headers['x-tenant']).toBe('acme');
    expect(req!.headers['x-env']).toBe('test');
    expect(req!.body).toEqual(batch);
  });

  it('refuses extra headers that would override its own', () => {
    for (const name of [
      'Authorization',
      'content-type',
      'User-Agent',
      'idempotency-key',
      'content-encoding',
    ]) {
      const e = configError(() =>
        createHttpTransport({ ...base('http://127.0.0.1:1'), headers: { [name]: 'x' } }),
      );
      expect(e.code).toBe('BAD_HEADER');
    }
    const e = configError(() =>
      createHttpTransport({ ...base('http://127.0.0.1:1'), headers: { 'x-a': 'line\r\nInjected: 1' } }),
    );
    expect(e.code).toBe('BAD_HEADER');
  });

  it('reuses keep-alive connections', async () => {
    const sink = await sinkOf();
    const t = transport({ url: sink.url, connections: 1 });
    for (let i = 0; i < 3; i++) expect((await t.post(gz, meta())).kind).toBe('success');
    const ports = new Set(sink.requests.map((r) => r.remotePort));
    expect(ports.size).toBe(1);
  });
});

function base(url: string): HttpTransportOptions {
  return {
    url,
    allowInsecureHttp: true,
    connectTimeoutMs: 1_000,
    requestTimeoutMs: 1_000,
    connections: 1,
    userAgent: 'batch-emitter/test',
  };
}

describe('http transport: response classification over the wire', () => {
  it('500, 503 + Retry-After seconds, 429 + Retry-After date, 408 are retryable', async () => {
    const sink = await sinkOf();
    const t = transport({ url: sink.url });
    const date = new Date(Date.now() + 120_000).toUTCString();
    const replies = [
      { status: 500 },
      { status: 503, headers: { 'retry-after': '7' } },
      { status: 429, headers: { 'retry-after': date } },
      { status: 408 },
    ];
    sink.respondWith((_r, i) => replies[i]!);
    expect(await t.post(gz, meta())).toEqual({ kind: 'retryable', status: 500, reason: 'http_500' });
    expect(await t.post(gz, meta())).toEqual({
      kind: 'retryable',
      status: 503,
      reason: 'http_503',
      retryAfterMs: 7_000,
    });
    const o429 = await t.post(gz, meta());
    expect(o429).toMatchObject({ kind: 'retryable', status: 429, reason: 'http_429' });
    if (o429.kind === 'retryable') {
      expect(o429.retryAfterMs).toBeGreaterThan(110_000);
      expect(o429.retryAfterMs).toBeLessThanOrEqual(120_000);
    }
    expect(await t.post(gz, meta())).toEqual({ kind: 'retryable', status: 408, reason: 'http_408' });
  });

  it('400 is permanent with a bounded excerpt; 413 splits or is permanent for one item', async () => {
    const sink = await sinkOf();
    const t = transport({ url: sink.url });
    sink.respondWith((_r, i) =>
      i === 0
        ? { status: 400, body: { error: 'schema violation', detail: 'y'.repeat(100_000) } }
        : { status: 413, body: 'payload too large' },
    );
    const o400 = await t.post(gz, meta());
    expect(o400).toMatchObject({ kind: 'permanent', status: 400, reason: 'http_400' });
    if (o400.kind === 'permanent') {
      expect(o400.bodyExcerpt).toMatch(/^\{"error":"schema violation"/);
      expect(o400.bodyExcerpt!.length).toBeLessThanOrEqual(513);
    }
    expect(await t.post(gz, meta({ itemCount: 2 }))).toEqual({ kind: 'split', status: 413 });
    expect(await t.post(gz, meta({ itemCount: 1 }))).toEqual({
      kind: 'permanent',
      status: 413,
      reason: 'http_413',
      bodyExcerpt: 'payload too large',
    });
    // the transport still works after a large error body
    sink.respondWith(undefined);
    expect((await t.post(gz, meta())).kind).toBe('success');
  });

  it('does not follow redirects', async () => {
    const sink = await sinkOf();
    const t = transport({ url: sink.url });
    sink.respondWith((_r, i) =>
      i === 0 ? { status: 307, headers: { location: `${sink.url}/elsewhere` } } : { status: 200 },
    );
    expect(await t.post(gz, meta())).toMatchObject({ kind: 'permanent', status: 307 });
    expect(sink.requests).toHaveLength(1);
  });
});

describe('http transport: network failures are retryable outcomes, never throws', () => {
  it('connection refused while the sink is down, success when it is back', async () => {
    const sink = await sinkOf();
    const t = transport({ url: sink.url });
    await sink.down();
    expect(reasonOf(await t.post(gz, meta()))).toBe('ECONNREFUSED');
    await sink.up();
    expect((await t.post(gz, meta())).kind).toBe('success');
  });

  it('connection reset', async () => {
    const sink = await sinkOf();
    const t = transport({ url: sink.url });
    sink.respondWith(() => 'reset');
    expect(reasonOf(await t.post(gz, meta()))).toMatch(/^(socket_closed|ECONNRESET|EPIPE)$/);
  });

  it('a hanging server times out after requestTimeoutMs', async () => {
    const sink = await sinkOf();
    const t = transport({ url: sink.url, requestTimeoutMs: 300 });
    sink.respondWith(() => 'hang');
    const t0 = Date.now();
    expect(reasonOf(await t.post(gz, meta()))).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('aborts when the signal aborts', async () => {
    const sink = await sinkOf();
    const t = transport({ url: sink.url });
    sink.respondWith(() => 'hang');
    const ac = new AbortController();
    const t0 = Date.now();
    const pending = t.post(gz, meta(), ac.signal);
    await sink.waitFor((rs) => rs.length === 1);
    ac.abort();
    expect(await pending).toEqual({ kind: 'retryable', reason: 'aborted' });
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(await t.post(gz, meta(), AbortSignal.abort())).toEqual({ kind: 'retryable', reason: 'aborted' });
  });

  it('after close() it answers transport_closed', async () => {
    const sink = await sinkOf();
    const t = createHttpTransport(base(sink.url));
    await t.close();
    await t.close();
    expect(reasonOf(await t.post(gz, meta()))).toBe('transport_closed');
  });
});

describe('http transport: TLS and mTLS', () => {
  let pki: TestPki;
  beforeAll(async () => {
    pki = await getTestPki();
  });

  const tlsBase = (url: string, over: Partial<HttpTransportOptions> = {}) => ({
    url,
    allowInsecureHttp: false,
    ...over,
  });

  it('accepts a server certificate from the configured CA', async () => {
    const sink = await sinkOf({ tls: { cert: pki.server.cert, key: pki.server.key } });
    expect(sink.url).toMatch(/^https:/);
    const t = transport(tlsBase(sink.url, { caCertPath: pki.ca.certPath }));
    expect(await t.post(gz, meta())).toEqual({ kind: 'success', status: 200 });
    expect(sink.requests[0]!.body).toEqual(batch);
  });

  it('refuses an unknown CA, a self-signed server and a server from another CA (retryable tls:...)', async () => {
    const sink = await sinkOf({ tls: { cert: pki.server.cert, key: pki.server.key } });
    const noCa = transport(tlsBase(sink.url));
    expect(reasonOf(await noCa.post(gz, meta()))).toBe('tls:UNABLE_TO_VERIFY_LEAF_SIGNATURE');

    const self = await sinkOf({ tls: { cert: pki.selfSigned.cert, key: pki.selfSigned.key } });
    const t1 = transport(tlsBase(self.url, { caCertPath: pki.ca.certPath }));
    expect(reasonOf(await t1.post(gz, meta()))).toBe('tls:DEPTH_ZERO_SELF_SIGNED_CERT');

    const other = await sinkOf({ tls: { cert: pki.wrongServer.cert, key: pki.wrongServer.key } });
    const t2 = transport(tlsBase(other.url, { caCertPath: pki.ca.certPath }));
    expect(reasonOf(await t2.post(gz, meta()))).toMatch(/^tls:/);

    expect(sink.requests).toHaveLength(0);
    expect(self.requests).toHaveLength(0);
    expect(other.requests).toHaveLength(0);
  });

  it('https:// to a plaintext server fails; it never falls back to plaintext', async () => {
    const plain = await sinkOf();
    const t = transport(tlsBase(plain.url.replace('http:', 'https:'), { caCertPath: pki.ca.certPath }));
    // the plaintext server answers the ClientHello with garbage or a reset: tls:EPROTO-like or ECONNRESET
    expect(reasonOf(await t.post(gz, meta()))).toMatch(/^(tls:.+|ECONNRESET|socket_closed)$/);
    expect(plain.requests).toHaveLength(0);
  });

  describe('mutual TLS', () => {
    const mtlsSink = () =>
      sinkOf({
        tls: {
          cert: pki.server.cert,
          key: pki.server.key,
          ca: pki.ca.cert,
          requestCert: true,
          rejectUnauthorized: true,
        },
      });

    it('presents the client certificate', async () => {
      const sink = await mtlsSink();
      const t = transport(
        tlsBase(sink.url, {
          caCertPath: pki.ca.certPath,
          clientCertPath: pki.client.certPath,
          clientKeyPath: pki.client.keyPath,
          authToken: TOKEN,
        }),
      );
      expect(await t.post(gz, meta())).toEqual({ kind: 'success', status: 200 });
      expect(sink.requests[0]!.clientCertCN).toBe('test-client');
      expect(sink.requests[0]!.clientAuthorized).toBe(true);
    });

    it('a client certificate from the wrong CA, or none, is refused (retryable)', async () => {
      const sink = await mtlsSink();
      const wrong = transport(
        tlsBase(sink.url, {
          caCertPath: pki.ca.certPath,
          clientCertPath: pki.wrongClient.certPath,
          clientKeyPath: pki.wrongClient.keyPath,
        }),
      );
      const o1 = await wrong.post(gz, meta());
      // TLS 1.3: the server verifies the client certificate after the client's handshake has
      // completed, so the client typically only sees the connection closing.
      expect(reasonOf(o1)).toMatch(/^(tls:.+|socket_closed|ECONNRESET|EPIPE)$/);
      const none = transport(tlsBase(sink.url, { caCertPath: pki.ca.certPath }));
      const o2 = await none.post(gz, meta());
      expect(reasonOf(o2)).toMatch(/^(tls:.+|socket_closed|ECONNRESET|EPIPE)$/);
      expect(sink.requests).toHaveLength(0);
      expect(sink.tlsErrors.length).toBeGreaterThanOrEqual(2);
    });

    it('TLS settings with an http:// URL are refused, not silently dropped', () => {
      const e = configError(() =>
        createHttpTransport({
          ...base('http://127.0.0.1:1/x'),
          clientCertPath: pki.client.certPath,
          clientKeyPath: pki.client.keyPath,
        }),
      );
      expect(e.code).toBe('INSECURE_URL');
    });
  });
});

describe('http transport: configuration errors', () => {
  let pki: TestPki;
  let dir: string;
  beforeAll(async () => {
    pki = await getTestPki();
    dir = mkdtempSync(join(tmpdir(), 'transport-test-'));
  });

  it('refuses http:// unless allowInsecureHttp', () => {
    const e = configError(() =>
      createHttpTransport({
        ...base('http://ingest.example:8080/v1'),
        allowInsecureHttp: false,
        authToken: TOKEN,
      }),
    );
    expect(e.code).toBe('INSECURE_URL');
    expect(e.message).toContain('TRANSMITTER_ALLOW_INSECURE_HTTP=true');
    expect(e.message).not.toContain(TOKEN);
  });

  it('rejects bad URLs without echoing credentials', () => {
    expect(configError(() => createHttpTransport(base('not a url'))).code).toBe('BAD_URL');
    expect(configError(() => createHttpTransport(base('ftp://example.com/x'))).code).toBe('BAD_URL');
    const e = configError(() => createHttpTransport(base('https://user:hunter2@example.com/x')));
    expect(e.code).toBe('BAD_URL');
    expect(e.message).not.toContain('hunter2');
  });

  it('client certificate problems are CLIENT_CERT, never a silent fallback', () => {
    const url = 'https://127.0.0.1:1/';
    const cases: Partial<HttpTransportOptions>[] = [
      { clientCertPath: join(dir, 'missing.crt'), clientKeyPath: pki.client.keyPath },
      { clientCertPath: pki.client.certPath, clientKeyPath: join(dir, 'missing.key') },
      { clientCertPath: pki.client.certPath },
      { clientKeyPath: pki.client.keyPath },
      { clientCertPath: pki.client.certPath, clientKeyPath: pki.server.keyPath }, // key of another cert
    ];
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate\n');
    cases.push({ clientCertPath: garbage, clientKeyPath: pki.client.keyPath });
    cases.push({ clientCertPath: pki.client.certPath, clientKeyPath: garbage });
    for (const c of cases) {
      const e = configError(() =>
        createHttpTransport({ ...base(url), allowInsecureHttp: false, authToken: TOKEN, ...c }),
      );
      expect(e.code, JSON.stringify(c)).toBe('CLIENT_CERT');
      expect(e.message).not.toContain(TOKEN);
    }
  });

  it('CA problems are CA_CERT', () => {
    const garbage = join(dir, 'garbage-ca.pem');
    writeFileSync(garbage, 'nope\n');
    for (const caCertPath of [join(dir, 'missing-ca.crt'), garbage]) {
      const e = configError(() =>
        createHttpTransport({ ...base('https://127.0.0.1:1/'), allowInsecureHttp: false, caCertPath }),
      );
      expect(e.code).toBe('CA_CERT');
    }
  });

  it('a token that cannot be a header value is refused without being echoed', () => {
    const bad = `${TOKEN}\r\nx-injected: 1`;
    const e = configError(() => createHttpTransport({ ...base('http://127.0.0.1:1/'), authToken: bad }));
    expect(e.code).toBe('BAD_HEADER');
    expect(e.message).not.toContain(TOKEN);
  });
});
