import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { testEnv } from '../support/env.js';
import { spawnEmitter, type EmitterProcess } from '../../harness/process.js';
import {
  deliveredKeys,
  publishAll,
  sampleMessages,
  tempDir,
  type Published,
} from '../../harness/workload.js';

/**
 * Issue 6, must-show 1: /ready follows NATS. A real nats-server and the emitter as a child
 * process: /ready is 200 once the consumer is bound, 503 naming nats_connected within seconds of
 * the server stopping, 200 again after it restarts, and the re-bound consumer delivers again.
 */

interface Ready {
  status: number;
  body: { ready?: boolean; failing?: string[]; checks?: Record<string, { ok: boolean; detail?: string }> };
}

function getReady(base: string): Promise<Ready> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('/ready', base), { agent: false, timeout: 2000 }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Ready['body'] }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Poll until `ok(value)` or the deadline; returns the last value and how long it took. */
async function pollUntil<T>(
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  deadlineMs: number,
): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() - started > deadlineMs) return { value, ms: Date.now() - started };
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The HTTP URL from the log: `"msg":"running"` has `http`, `http server listening` has `url`. */
function httpUrl(output: string): string | undefined {
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; http?: string; url?: string };
      if (entry.msg === 'running' && entry.http) return entry.http;
      if (entry.msg === 'http server listening' && entry.url) return entry.url;
    } catch {
      // not a log line
    }
  }
  return undefined;
}

/** keys of `messages` not yet in a request the sink received at index >= `from` */
function missing(messages: Published[], from: number): string[] {
  const got = new Set(deliveredKeys(sink.requests.slice(from)));
  return messages.map((m) => m.key).filter((key) => !got.has(key));
}

let nats: NatsServerHandle;
let sink: Sink;
let proc: EmitterProcess | undefined;
let spool: { path: string; remove(): Promise<void> };

beforeAll(async () => {
  [nats, sink, spool] = await Promise.all([startNats(), startSink(), tempDir('ready')]);
});

afterAll(async () => {
  if (proc) {
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc?.kill('SIGKILL'), 10_000);
    await proc.exited;
    clearTimeout(timer);
  }
  await Promise.all([nats?.stop(), sink?.close()]);
  await spool?.remove();
});

describe('/ready follows the NATS connection', () => {
  it('200 when bound, 503 (nats_connected) while nats-server is down, 200 again after it restarts', async () => {
    proc = spawnEmitter(
      testEnv({
        natsUrl: nats.url,
        sinkUrl: sink.url,
        spoolDir: spool.path,
        extra: { TRANSMITTER_NATS_DURABLE: 'ready', TRANSMITTER_SERVER_PORT: '0' },
      }),
    );
    const running = await Promise.race([
      proc.ready.then(() => true),
      proc.exited.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(false), 30_000)),
    ]);
    expect(running, proc.output()).toBe(true);
    const base = httpUrl(proc.output());
    expect(base, proc.output()).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const url = base as string;

    const up = await pollUntil(
      () => getReady(url),
      (r) => r.status === 200,
      15_000,
    );
    expect(up.value.status, JSON.stringify(up.value.body)).toBe(200);
    expect(up.value.body.ready).toBe(true);

    // a first batch goes through, so the consumer is really consuming
    const before = sampleMessages(20, 'before');
    await publishAll(nats.url, before);
    const first = await pollUntil(
      async () => missing(before, 0),
      (left) => left.length === 0,
      15_000,
    );
    expect(first.value).toEqual([]);

    await nats.stop();
    const down = await pollUntil(
      () => getReady(url),
      (r) => r.status === 503,
      5_000,
    );
    expect(down.value.status, JSON.stringify(down.value.body)).toBe(503);
    expect(down.value.body.failing).toContain('nats_connected');
    expect(down.value.body.checks?.nats_connected).toEqual({ ok: false, detail: 'not connected to NATS' });
    expect(down.ms).toBeLessThan(5_000);

    await nats.restart();
    const back = await pollUntil(
      () => getReady(url),
      (r) => r.status === 200,
      20_000,
    );
    expect(back.value.status, `${JSON.stringify(back.value.body)}\n${proc.output().slice(-3000)}`).toBe(200);
    expect(back.value.body.failing).toEqual([]);

    // and the consumer consumes again after the restart: new messages reach the sink
    const seen = sink.requests.length;
    const after = sampleMessages(20, 'after');
    await publishAll(nats.url, after);
    const second = await pollUntil(
      async () => missing(after, seen),
      (left) => left.length === 0,
      20_000,
    );
    expect(second.value, proc.output().slice(-3000)).toEqual([]);
  });
});
