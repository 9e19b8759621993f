import { randomBytes, randomUUID } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Spool } from '../../src/spool/spool.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { getTestPki, type TestPki } from '../../harness/pki.js';
import { startSink, type Sink, type SinkRequest } from '../../harness/sink.js';
import { runCli, spawnCli, type CliProcess } from '../../harness/cli-process.js';
import { testEnv } from '../support/env.js';
import { json, publishInOrder, utf8 } from '../../harness/nats-publish.js';
import { deliveredKeys, sampleMessages, tempDir } from '../../harness/workload.js';

/**
 * Issue 7, security defaults, against the emitter as a child process: secrets (the destination
 * token, NATS password and token) never appear in logs, HTTP responses or operator command output;
 * the spool is private (0700 / 0600); http:// destinations are refused unless allowed; NATS with
 * user/password, token and TLS works; a wrong NATS password fails clearly without echoing it.
 */

const secret = (what: string) => `${what}-${randomUUID()}-${randomBytes(6).toString('hex')}`;
const AUTH_TOKEN = secret('auth');
const NATS_USER = `user${randomBytes(4).toString('hex')}`;
const NATS_PASSWORD = secret('natspw');
const NATS_TOKEN = secret('natstok');
const WRONG_PASSWORD = secret('wrongpw');
const API_KEY = secret('apikey');
const TENANT_KEY = secret('tenant');
const HEADERS = JSON.stringify({ 'x-api-key': API_KEY, 'x-tenant-key': TENANT_KEY });
const HEADER_SECRETS = { 'x-api-key value': API_KEY, 'x-tenant-key value': TENANT_KEY };

let natsAuth: NatsServerHandle;
let sink: Sink;
let pki: TestPki;

beforeAll(async () => {
  [natsAuth, sink, pki] = await Promise.all([
    startNats({ extraConfig: `authorization {\n  user: "${NATS_USER}"\n  password: "${NATS_PASSWORD}"\n}` }),
    startSink(),
    getTestPki(),
  ]);
});
afterAll(async () => {
  await Promise.all([natsAuth?.stop(), sink?.close()]);
});

/** Where each secret occurs in the captured texts: `<secret> in <label>: ...<context>...`. */
function leaks(texts: Record<string, string>, secrets: Record<string, string>): string[] {
  const found: string[] = [];
  for (const [label, text] of Object.entries(texts)) {
    for (const [name, value] of Object.entries(secrets)) {
      const at = text.indexOf(value);
      if (at < 0) continue;
      // where, with the secret itself masked, so a failure explains itself without leaking
      const context = text
        .slice(Math.max(0, at - 80), at + value.length + 20)
        .split(value)
        .join('<SECRET>')
        .replace(/\s+/g, ' ');
      found.push(`${name} in ${label}: ...${context}...`);
    }
  }
  return found;
}

/** The operator URL from the "running" log line. */
async function serverUrl(proc: CliProcess): Promise<string> {
  const line = await proc.waitForLine(/"msg":"running"/, 20_000);
  const url = (JSON.parse(line) as { http?: unknown }).http;
  if (typeof url !== 'string') throw new Error(`no http url in ${line}`);
  return url;
}

const subjectsOf = (r: SinkRequest): string[] =>
  ((r.body as { events?: Array<{ subject: string }> } | undefined)?.events ?? []).map((e) => e.subject);

async function modes(dir: string): Promise<Array<{ path: string; mode: string; dir: boolean }>> {
  const out: Array<{ path: string; mode: string; dir: boolean }> = [];
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const s = await stat(path);
    out.push({ path, mode: (s.mode & 0o777).toString(8), dir: s.isDirectory() });
    if (s.isDirectory()) out.push(...(await modes(path)));
  }
  return out;
}

describe('security defaults (issue 7)', () => {
  it('never shows the destination token or the NATS password: logs, endpoints, operator commands; the spool is private', async () => {
    const spool = await tempDir('security');
    const env = testEnv({
      natsUrl: natsAuth.url,
      sinkUrl: `${sink.url}/ingest`,
      spoolDir: spool.path,
      extra: {
        TRANSMITTER_AUTH_TOKEN: AUTH_TOKEN,
        TRANSMITTER_NATS_USER: NATS_USER,
        TRANSMITTER_NATS_PASSWORD: NATS_PASSWORD,
        TRANSMITTER_NATS_DURABLE: 'security',
        TRANSMITTER_DEBUG: 'true',
        TRANSMITTER_LOG_LEVEL: 'trace',
        TRANSMITTER_RETRY_MAX_ATTEMPTS: '3',
        TRANSMITTER_SHUTDOWN_TIMEOUT_S: '1',
      },
    });
    let normal = 0;
    sink.respondWith((req) => {
      const subjects = subjectsOf(req);
      // a careless receiver that echoes the credentials it refused
      if (subjects.includes('approved.reject')) {
        return { status: 401, body: { error: 'invalid credentials', received: req.headers.authorization } };
      }
      if (subjects.includes('approved.stuck')) return { status: 503, body: { error: 'busy' } };
      normal += 1;
      return normal === 1
        ? { status: 500, body: { error: 'try again' } }
        : { status: 200, body: { ok: true } };
    });
    const natsOpts = { servers: natsAuth.url, user: NATS_USER, pass: NATS_PASSWORD };
    const proc = spawnCli(env, ['run']);
    const responses: Record<string, string> = {};
    try {
      const base = await serverUrl(proc);

      // good traffic: the first request is answered 500, the retry 200
      const good = sampleMessages(20, 'sec');
      await publishInOrder(
        natsOpts,
        good.map((m) => ({ subject: m.subject, payload: json(m.data) })),
      );
      await sink.waitFor((rs) => {
        const got = new Set(deliveredKeys(rs.filter((r) => r !== rs[0])));
        return good.every((m) => got.has(m.key));
      }, 15_000);
      // a message dead letter, and a batch dead letter (401)
      await publishInOrder(natsOpts, [
        { subject: 'approved.domain', payload: utf8('{"host": 42') },
        { subject: 'approved.reject', payload: json({ id: 'reject-me' }) },
      ]);
      await proc.waitForLine(/batch dead-lettered/, 15_000);
      // a batch that stays spooled (503 until the stop)
      await publishInOrder(natsOpts, [{ subject: 'approved.stuck', payload: json({ id: 'stuck' }) }]);
      await sink.waitFor((rs) => rs.some((r) => subjectsOf(r).includes('approved.stuck')), 15_000);

      expect(sink.requests.map((r) => r.headers.authorization)).toEqual(
        sink.requests.map(() => `Bearer ${AUTH_TOKEN}`),
      );

      for (const path of ['/health', '/ready', '/api/v1/stats', '/metrics', '/debug', '/debug/machines']) {
        const res = await fetch(`${base}${path}`);
        const text = await res.text();
        responses[`GET ${path}`] = `${res.status} ${JSON.stringify([...res.headers])}\n${text}`;
        expect.soft(res.status, path).toBe(200);
      }
      expect(responses['GET /api/v1/stats']).toMatch(/"lastError"/);
      expect(responses['GET /metrics']).toMatch(/\n?[a-z_]+ \d/);

      proc.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
    } finally {
      proc.kill('SIGKILL');
      sink.respondWith(undefined);
    }

    // the spool is private: the directory 0700, every file in it 0600 (after the service ran ...)
    const notPrivate = async () =>
      [
        ...(await modes(spool.path)).filter((e) => e.mode !== (e.dir ? '700' : '600')),
        ...[await stat(spool.path)]
          .map((s) => (s.mode & 0o777).toString(8))
          .filter((m) => m !== '700')
          .map((mode) => ({ path: spool.path, mode, dir: true })),
      ].map((e) => `${e.path.slice(spool.path.length) || '/'} ${e.mode}`);
    expect((await modes(spool.path)).length).toBeGreaterThan(0);
    expect.soft(await notPrivate(), 'after `batch-emitter run`').toEqual([]);

    // operator commands, the emitter stopped
    const cliEnv = { TRANSMITTER_SPOOL_DIR: spool.path };
    const dlqList = await runCli(cliEnv, ['dlq', 'list', '--json']);
    expect(dlqList.code).toBe(0);
    const letters = JSON.parse(dlqList.stdout) as Array<{ id: string; kind: string; reason: string }>;
    expect(letters.map((l) => `${l.kind} ${l.reason}`)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^message invalid_json/), 'batch http_401']),
    );
    const batchLetter = letters.find((l) => l.kind === 'batch');
    const dlqShow = await runCli(cliEnv, ['dlq', 'show', batchLetter?.id ?? 'missing']);
    expect(dlqShow.code).toBe(0);
    const spoolList = await runCli(cliEnv, ['spool', 'list']);
    expect(spoolList.code).toBe(0);
    expect(spoolList.stdout).toMatch(/http_503/);
    // (... and after the operator commands opened it)
    expect.soft(await notPrivate(), 'after `batch-emitter dlq list/show` and `spool list`').toEqual([]);

    const captured: Record<string, string> = {
      'emitter stdout (logs)': proc.stdout(),
      'emitter stderr': proc.stderr(),
      ...responses,
      'dlq list --json': dlqList.stdout + dlqList.stderr,
      'dlq show <batch dead letter>': dlqShow.stdout + dlqShow.stderr,
      'spool list': spoolList.stdout + spoolList.stderr,
    };
    expect(proc.stdout()).toMatch(/"msg":"batch dead-lettered/);
    expect(
      leaks(captured, { TRANSMITTER_AUTH_TOKEN: AUTH_TOKEN, TRANSMITTER_NATS_PASSWORD: NATS_PASSWORD }),
    ).toEqual([]);
    await spool.remove();
    sink.clear();
  });

  it('never shows a TRANSMITTER_HEADERS value: a 400 that echoes the request headers, the stored dead letter, dlq show, logs, endpoints', async () => {
    const spool = await tempDir('header-secrets');
    const env = testEnv({
      natsUrl: natsAuth.url,
      sinkUrl: `${sink.url}/ingest`,
      spoolDir: spool.path,
      extra: {
        TRANSMITTER_HEADERS: HEADERS,
        TRANSMITTER_NATS_USER: NATS_USER,
        TRANSMITTER_NATS_PASSWORD: NATS_PASSWORD,
        TRANSMITTER_NATS_DURABLE: 'header-secrets',
        TRANSMITTER_DEBUG: 'true',
        TRANSMITTER_LOG_LEVEL: 'trace',
        TRANSMITTER_SHUTDOWN_TIMEOUT_S: '1',
      },
    });
    // a careless receiver that refuses the batch and quotes every request header back
    sink.respondWith((req) => ({
      status: 400,
      body: `bad request; received ${Object.entries(req.headers)
        .map(([name, value]) => `${name}=${String(value)}`)
        .join(' ')}`,
    }));
    const proc = spawnCli(env, ['run']);
    const responses: Record<string, string> = {};
    try {
      const base = await serverUrl(proc);
      await publishInOrder({ servers: natsAuth.url, user: NATS_USER, pass: NATS_PASSWORD }, [
        { subject: 'approved.echo', payload: json({ id: 'echo-me' }) },
      ]);
      await proc.waitForLine(/batch dead-lettered/, 15_000);
      // the headers did go out: the receiver saw them
      expect(sink.requests[0]?.headers['x-api-key']).toBe(API_KEY);
      for (const path of ['/api/v1/stats', '/metrics', '/debug/machines']) {
        responses[`GET ${path}`] = await (await fetch(`${base}${path}`)).text();
      }
      proc.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
    } finally {
      proc.kill('SIGKILL');
      sink.respondWith(undefined);
    }

    const stored = await Spool.open(spool.path);
    // (the stream is shared with the other tests: this new durable also reads what they published)
    const letters = (await stored.deadLetters.list().finally(() => stored.close())).filter(
      (l) => l.kind === 'batch',
    );
    expect(letters.length).toBeGreaterThan(0);
    for (const letter of letters) {
      expect(letter.reason).toBe('http_400');
      expect(letter.bodyExcerpt).toContain('x-api-key=[redacted]');
    }

    // the operator commands, with and without the variables in their environment
    const withHeaders = { TRANSMITTER_SPOOL_DIR: spool.path, TRANSMITTER_HEADERS: HEADERS };
    const dlqShow = await runCli({ TRANSMITTER_SPOOL_DIR: spool.path }, [
      'dlq',
      'show',
      letters[0]?.id ?? '',
    ]);
    expect(dlqShow.code).toBe(0);
    const dlqList = await runCli(withHeaders, ['dlq', 'list', '--json']);
    expect(dlqList.code).toBe(0);
    const captured: Record<string, string> = {
      'emitter stdout (logs)': proc.stdout(),
      'emitter stderr': proc.stderr(),
      ...responses,
      'the stored dead letter': JSON.stringify(letters),
      'dlq show': dlqShow.stdout + dlqShow.stderr,
      'dlq list --json': dlqList.stdout + dlqList.stderr,
    };
    expect(leaks(captured, HEADER_SECRETS)).toEqual([]);
    await spool.remove();
    sink.clear();
  });

  it('dlq show scrubs the TRANSMITTER_HEADERS values it is given from a dead letter stored before they were redacted', async () => {
    const spool = await tempDir('header-secrets-old');
    const old = await Spool.open(spool.path);
    const id = randomUUID();
    await old.deadLetters.addMessage({
      id,
      kind: 'message',
      reason: 'http_400',
      at: new Date().toISOString(),
      bodyExcerpt: `bad request; received x-api-key=${API_KEY} x-tenant-key=${TENANT_KEY}`,
      subjects: ['approved.echo'],
    });
    await old.close();
    const shown = await runCli({ TRANSMITTER_SPOOL_DIR: spool.path, TRANSMITTER_HEADERS: HEADERS }, [
      'dlq',
      'show',
      id,
    ]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('x-api-key=[redacted]');
    expect(leaks({ 'dlq show': shown.stdout + shown.stderr }, HEADER_SECRETS)).toEqual([]);
    await spool.remove();
  });

  it('a malformed TRANSMITTER_HEADERS is refused (exit 2) with what is wrong, never its value', async () => {
    const spool = await tempDir('headers-bad');
    const refusals = [
      [`{"x-api-key": "${API_KEY}"`, 'not a JSON object of strings (value not shown: it may hold secrets)'],
      [`{"x-api-key": ["${API_KEY}"]}`, 'values must be strings; "x-api-key" is an array'],
      [`["${API_KEY}"]`, 'must be a JSON object of strings; got an array'],
    ];
    for (const [bad, why] of refusals) {
      const { code, stdout, stderr } = await runCli(
        testEnv({
          sinkUrl: `${sink.url}/ingest`,
          spoolDir: spool.path,
          extra: { TRANSMITTER_HEADERS: bad ?? '' },
        }),
        ['run'],
      );
      expect(code).toBe(2);
      expect(stderr).toBe(`batch-emitter: invalid configuration: TRANSMITTER_HEADERS: ${why}\n`);
      expect(leaks({ stdout, stderr }, { 'x-api-key value': API_KEY })).toEqual([]);
    }
    await spool.remove();
  });

  it('refuses an http:// destination without TRANSMITTER_ALLOW_INSECURE_HTTP: exit 2, one line', async () => {
    const spool = await tempDir('insecure');
    const env = testEnv({ sinkUrl: `${sink.url}/ingest`, spoolDir: spool.path });
    delete env.TRANSMITTER_ALLOW_INSECURE_HTTP;
    const { code, stdout, stderr } = await runCli(env, ['run']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^batch-emitter: invalid configuration: TRANSMITTER_DESTINATION_URL: http:\/\/ is refused/,
    );
    await spool.remove();
  });

  it('consumes from a NATS server that wants a token, without showing the token', async () => {
    const nats = await startNats({ extraConfig: `authorization {\n  token: "${NATS_TOKEN}"\n}` });
    const spool = await tempDir('nats-token');
    const proc = spawnCli(
      testEnv({
        natsUrl: nats.url,
        sinkUrl: `${sink.url}/ingest`,
        spoolDir: spool.path,
        extra: {
          TRANSMITTER_NATS_TOKEN: NATS_TOKEN,
          TRANSMITTER_NATS_DURABLE: 'token',
          TRANSMITTER_LOG_LEVEL: 'debug',
        },
      }),
      ['run'],
    );
    try {
      await serverUrl(proc);
      const messages = sampleMessages(10, 'tok');
      await publishInOrder(
        { servers: nats.url, token: NATS_TOKEN },
        messages.map((m) => ({ subject: m.subject, payload: json(m.data) })),
      );
      await sink.waitFor((rs) => messages.every((m) => deliveredKeys(rs).includes(m.key)), 15_000);
      proc.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
      expect(
        leaks({ stdout: proc.stdout(), stderr: proc.stderr() }, { TRANSMITTER_NATS_TOKEN: NATS_TOKEN }),
      ).toEqual([]);
    } finally {
      proc.kill('SIGKILL');
      await nats.stop();
      await spool.remove();
      sink.clear();
    }
  });

  it('consumes from a NATS server over TLS (tls://, TRANSMITTER_NATS_TLS_CA)', async () => {
    const nats = await startNats({
      extraConfig: `tls {\n  cert_file: ${JSON.stringify(pki.server.certPath)}\n  key_file: ${JSON.stringify(pki.server.keyPath)}\n}`,
    });
    const url = `tls://127.0.0.1:${nats.port}`;
    const spool = await tempDir('nats-tls');
    const proc = spawnCli(
      testEnv({
        natsUrl: url,
        sinkUrl: `${sink.url}/ingest`,
        spoolDir: spool.path,
        extra: {
          TRANSMITTER_NATS_TLS_CA: pki.ca.certPath,
          TRANSMITTER_NATS_DURABLE: 'tls',
          TRANSMITTER_LOG_LEVEL: 'info',
        },
      }),
      ['run'],
    );
    try {
      await serverUrl(proc);
      const messages = sampleMessages(10, 'tls');
      await publishInOrder(
        { servers: url, tls: { caFile: pki.ca.certPath } },
        messages.map((m) => ({ subject: m.subject, payload: json(m.data) })),
      );
      await sink.waitFor((rs) => messages.every((m) => deliveredKeys(rs).includes(m.key)), 15_000);
      proc.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
    } finally {
      proc.kill('SIGKILL');
      await nats.stop();
      await spool.remove();
      sink.clear();
    }
  });

  it('a wrong NATS password: a clear start-up error (exit 1) that shows neither password', async () => {
    const spool = await tempDir('wrong-pw');
    const { code, stdout, stderr } = await runCli(
      testEnv({
        natsUrl: natsAuth.url,
        sinkUrl: `${sink.url}/ingest`,
        spoolDir: spool.path,
        extra: {
          TRANSMITTER_NATS_USER: NATS_USER,
          TRANSMITTER_NATS_PASSWORD: WRONG_PASSWORD,
          TRANSMITTER_LOG_LEVEL: 'debug',
        },
      }),
      ['run'],
    );
    expect(code).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^batch-emitter: cannot start: cannot connect to NATS at \S+: .*authori[sz]ation/i,
    );
    expect(
      leaks({ stdout, stderr }, { 'the wrong password': WRONG_PASSWORD, 'the real password': NATS_PASSWORD }),
    ).toEqual([]);
    await spool.remove();
  });

  it('credentials written into TRANSMITTER_NATS_URL (nats://user:password@host) never appear in the output', async () => {
    const spool = await tempDir('url-creds');
    const url = `nats://${NATS_USER}:${NATS_PASSWORD}@127.0.0.1:${natsAuth.port}`;
    const env = testEnv({
      natsUrl: url,
      sinkUrl: `${sink.url}/ingest`,
      spoolDir: spool.path,
      extra: {
        TRANSMITTER_NATS_DURABLE: 'url-creds',
        TRANSMITTER_DEBUG: 'true',
        TRANSMITTER_LOG_LEVEL: 'debug',
      },
    });
    const proc = spawnCli(env, ['run']);
    const responses: Record<string, string> = {};
    try {
      const base = await serverUrl(proc).catch(() => undefined);
      if (base) {
        for (const path of ['/api/v1/stats', '/debug/machines']) {
          responses[path] = await (await fetch(`${base}${path}`)).text();
        }
        proc.kill('SIGTERM');
      }
      await proc.exited;
      expect(
        leaks(
          { stdout: proc.stdout(), stderr: proc.stderr(), ...responses },
          { 'the password from the URL': NATS_PASSWORD },
        ),
      ).toEqual([]);
    } finally {
      proc.kill('SIGKILL');
      await spool.remove();
    }
  });

  it('a malformed TRANSMITTER_NATS_URL holding credentials is refused (exit 2) without echoing them', async () => {
    const spool = await tempDir('url-creds-bad');
    const password = `pw${randomBytes(5).toString('hex')}`;
    const { code, stdout, stderr } = await runCli(
      testEnv({
        natsUrl: `nats://${NATS_USER}:${password}@127.0.0.1:4222/ x`,
        sinkUrl: `${sink.url}/ingest`,
        spoolDir: spool.path,
      }),
      ['run'],
    );
    expect(code).toBe(2);
    expect(stderr).toMatch(/^batch-emitter: invalid configuration: TRANSMITTER_NATS_URL: /);
    expect(leaks({ stdout, stderr }, { 'the password from the URL': password })).toEqual([]);
    await spool.remove();
  });
});
