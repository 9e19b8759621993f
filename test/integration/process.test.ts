import { readdir } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { startSink, type Sink, type SinkRequest } from '../../harness/sink.js';
import { testEnv } from '../support/env.js';
import { spawnEmitter } from '../../harness/process.js';
import { allDelivered, deliveredKeys, publishAll, sampleMessages, tempDir } from '../../harness/workload.js';

let nats: NatsServerHandle;
let sink: Sink;

beforeAll(async () => {
  [nats, sink] = await Promise.all([startNats(), startSink()]);
});
afterAll(async () => {
  await Promise.all([nats?.stop(), sink?.close()]);
});

/** For every key delivered more than once: the idempotency-keys of the requests that carried it. */
function duplicateCarriers(requests: SinkRequest[]): Map<string, Set<string>> {
  const carriers = new Map<string, Set<string>>();
  for (const r of requests.filter((q) => q.body && typeof q.body === 'object')) {
    for (const key of deliveredKeys([r])) {
      const set = carriers.get(key) ?? new Set<string>();
      set.add(String(r.headers['idempotency-key']));
      carriers.set(key, set);
    }
  }
  return carriers;
}

describe('the emitter process', () => {
  it('exits 2 with one line naming a bad variable', async () => {
    const spool = await tempDir('badvar');
    const proc = spawnEmitter(
      testEnv({ sinkUrl: sink.url, spoolDir: spool.path, extra: { TRANSMITTER_BATCH_SIZE: 'lots' } }),
    );
    expect(await proc.exited).toBe(2);
    const lines = proc.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^batch-emitter: invalid configuration: TRANSMITTER_BATCH_SIZE: is "lots"; expected a whole number/,
    );
    await spool.remove();
  });

  it('after kill -9 mid-run and a restart, every published event reaches the sink; duplicates keep their first idempotency-key', async () => {
    const spool = await tempDir('crash');
    const env = testEnv({
      natsUrl: nats.url,
      sinkUrl: sink.url,
      spoolDir: spool.path,
      extra: { TRANSMITTER_NATS_DURABLE: 'crash', TRANSMITTER_BATCH_SIZE: '200' },
    });
    const messages = sampleMessages(10_000, 'crash');
    const first = spawnEmitter(env);
    await first.ready;
    const publishing = publishAll(nats.url, messages, 200);
    await sink.waitFor((rs) => rs.length >= 5, 30_000);
    first.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    await publishing;
    const second = spawnEmitter(env);
    try {
      await sink.waitFor(allDelivered(messages), 60_000);
      const carriers = duplicateCarriers(sink.requests);
      const duplicated = [...carriers.values()].filter((ids) => ids.size > 1);
      expect(duplicated).toEqual([]);
    } finally {
      expect(await second.stop()).toBe(0);
      await spool.remove();
      sink.clear();
    }
  });

  it('keeps 5,000 events spooled while the sink refuses connections, across a SIGTERM, and delivers them after a restart', async () => {
    const spool = await tempDir('refused');
    const env = testEnv({
      natsUrl: nats.url,
      sinkUrl: sink.url,
      spoolDir: spool.path,
      extra: { TRANSMITTER_NATS_DURABLE: 'refused' },
    });
    const messages = sampleMessages(5000, 'refused');
    await sink.down();
    const first = spawnEmitter(env);
    await first.ready;
    await publishAll(nats.url, messages);
    // every message acknowledged (so durable in the spool) before the stop
    await waitUntil(() => first.output().includes('delivery attempt failed'), 20_000);
    first.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(sink.requests).toHaveLength(0);
    await sink.up();
    const second = spawnEmitter(env);
    try {
      await sink.waitFor(allDelivered(messages), 60_000);
    } finally {
      expect(await second.stop()).toBe(0);
      await spool.remove();
      sink.clear();
    }
  });
});

describe('the operator HTTP server under a connection flood', () => {
  it('closes connections beyond TRANSMITTER_SERVER_MAX_CONNECTIONS, keeps its open files bounded, and answers /health once the flood is gone', async () => {
    const spool = await tempDir('flood');
    const limit = 50;
    const flood = 400;
    const proc = spawnEmitter(
      testEnv({
        sinkUrl: sink.url,
        spoolDir: spool.path,
        extra: { TRANSMITTER_SERVER_MAX_CONNECTIONS: String(limit) },
      }),
    );
    const sockets: Socket[] = [];
    try {
      await proc.ready;
      const url = new URL(serverUrl(proc.output()));
      const pid = proc.child.pid ?? 0;
      const openFiles = async () => (await readdir(`/proc/${pid}/fd`)).length;
      const before = await openFiles();

      let closedByServer = 0;
      for (let i = 0; i < flood; i++) {
        const socket = connect(Number(url.port), url.hostname);
        socket.on('error', () => undefined);
        socket.once('close', () => (closedByServer += 1));
        sockets.push(socket);
      }
      // every connection beyond the limit is closed on arrival; the idle ones within it stay for now
      await waitUntil(() => closedByServer >= flood - limit, 10_000);
      const during = await openFiles();
      expect(during - before).toBeLessThanOrEqual(limit + 10);
      await waitUntil(() => proc.output().includes('"msg":"http server at its connection limit'), 5000);

      for (const socket of sockets) socket.destroy();
      await waitUntil(
        async () => (await fetch(`${url.origin}/health`).catch(() => undefined))?.status === 200,
        10_000,
      );
      expect(await openFiles()).toBeLessThanOrEqual(before + 5);
      expect(await proc.stop()).toBe(0);
    } finally {
      for (const socket of sockets) socket.destroy();
      proc.kill('SIGKILL');
      await spool.remove();
    }
  });
});

describe('signals', () => {
  it('logs and ignores SIGHUP; a second SIGTERM hurries the stop (logged, exit 0 at once); a restart delivers everything', async () => {
    const spool = await tempDir('signals');
    const env = testEnv({
      natsUrl: nats.url,
      sinkUrl: sink.url,
      spoolDir: spool.path,
      extra: {
        TRANSMITTER_NATS_DURABLE: 'signals',
        TRANSMITTER_BATCH_SIZE: '100',
        // the destination accepts and never answers: the first SIGTERM would wait a minute for it
        TRANSMITTER_REQUEST_TIMEOUT_S: '60',
        TRANSMITTER_SHUTDOWN_TIMEOUT_S: '60',
      },
    });
    const messages = sampleMessages(1000, 'signals');
    sink.respondWith(() => 'hang');
    const first = spawnEmitter(env);
    try {
      await first.ready;
      await publishAll(nats.url, messages);
      await sink.waitFor((rs) => rs.length >= 2, 20_000);

      first.kill('SIGHUP');
      await waitUntil(
        () => first.output().includes('"signal":"SIGHUP","msg":"SIGHUP ignored: nothing to reload"'),
        5000,
      );
      const health = await fetch(`${serverUrl(first.output())}/health`);
      expect(health.status).toBe(200);
      expect(first.child.exitCode).toBeNull();

      first.kill('SIGTERM');
      await waitUntil(() => first.output().includes('"signal":"SIGTERM","msg":"stopping"'), 5000);
      const hurriedAt = Date.now();
      first.kill('SIGTERM');
      expect(await first.exited).toBe(0);
      expect(Date.now() - hurriedAt).toBeLessThan(5000);
      expect(first.output()).toMatch(/"signal":"SIGTERM","msg":"SIGTERM again while stopping: hurrying: /);
      expect(first.output()).toMatch(/"why":"hurried","msg":"close: undelivered batches stay in the spool/);
    } finally {
      first.kill('SIGKILL');
    }
    sink.respondWith(undefined);
    sink.clear();
    const second = spawnEmitter(env);
    try {
      await sink.waitFor(allDelivered(messages), 30_000);
    } finally {
      expect(await second.stop()).toBe(0);
      await spool.remove();
      sink.clear();
    }
  });
});

describe('backpressure', () => {
  it('pauses intake when the spool is at its limit, stops promptly on SIGTERM, and loses nothing', async () => {
    const spool = await tempDir('full');
    const env = testEnv({
      natsUrl: nats.url,
      sinkUrl: sink.url,
      spoolDir: spool.path,
      extra: {
        TRANSMITTER_NATS_DURABLE: 'full',
        TRANSMITTER_COMPRESSION: 'none',
        TRANSMITTER_SPOOL_MAX_BYTES: String(1024 * 1024),
      },
    });
    const messages = sampleMessages(8000, 'full');
    await sink.down();
    const first = spawnEmitter(env);
    await first.ready;
    await publishAll(nats.url, messages);
    await waitUntil(() => first.output().includes('"reason":"spool_full","msg":"intake paused"'), 30_000);
    const stopAt = Date.now();
    first.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(Date.now() - stopAt).toBeLessThan(10_000);
    await sink.up();
    const second = spawnEmitter(env);
    try {
      await sink.waitFor(allDelivered(messages), 60_000);
    } finally {
      expect(await second.stop()).toBe(0);
      await spool.remove();
      sink.clear();
    }
  });
});

async function waitUntil(pred: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The operator URL from the emitter's "running" log line. */
function serverUrl(output: string): string {
  const line = output.split('\n').find((l) => l.includes('"msg":"running"'));
  const url = line === undefined ? undefined : (JSON.parse(line) as { http?: unknown }).http;
  if (typeof url !== 'string') throw new Error('no "running" line with the http url');
  return url;
}
