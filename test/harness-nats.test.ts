import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { startNats, type NatsServerHandle } from '../harness/nats.js';
import { startSink } from '../harness/sink.js';

describe('nats harness', () => {
  const servers: NatsServerHandle[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('starts a JetStream server, and restart() keeps stored messages', async () => {
    const t0 = Date.now();
    const nats = await startNats();
    servers.push(nats);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(nats.url).toBe(`nats://127.0.0.1:${nats.port}`);
    expect(readFileSync(nats.configPath, 'utf8')).toContain(JSON.stringify(nats.storeDir));

    let nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'HARNESS', subjects: ['harness.>'] });
    const js = jetstream(nc);
    for (let i = 0; i < 3; i++) await js.publish('harness.x', JSON.stringify({ i }));
    await nc.close();

    const firstPid = nats.pid;
    await nats.restart();
    expect(nats.pid).not.toBe(firstPid);
    nc = await connect({ servers: nats.url });
    const info = await (await jetstreamManager(nc)).streams.info('HARNESS');
    expect(info.state.messages).toBe(3);
    await nc.close();

    // SIGKILL (no clean shutdown) then restart: the file store survives too.
    await nats.kill();
    await expect(connect({ servers: nats.url, reconnect: false, timeout: 500 })).rejects.toThrow();
    await nats.restart();
    nc = await connect({ servers: nats.url });
    const after = await (await jetstreamManager(nc)).streams.info('HARNESS');
    expect(after.state.messages).toBe(3);
    await nc.close();
  });

  it('applies extraConfig', async () => {
    const nats = await startNats({ extraConfig: 'max_payload: 2MB' });
    servers.push(nats);
    const nc = await connect({ servers: nats.url });
    expect(nc.info?.max_payload).toBe(2 * 1024 * 1024);
    expect(nc.info?.jetstream).toBe(true);
    await nc.close();
  });
});

describe('sink harness', () => {
  it('records, programs answers, goes down and up on the same port', async () => {
    const sink = await startSink();
    try {
      sink.failNext(1, 503);
      const r1 = await fetch(`${sink.url}/a`, { method: 'POST', body: '{"x":1}' });
      expect(r1.status).toBe(503);
      const r2 = await fetch(`${sink.url}/b`, { method: 'POST', body: 'plain' });
      expect(r2.status).toBe(200);
      expect(await r2.json()).toEqual({ ok: true });
      await sink.waitFor((rs) => rs.length === 2, 1_000);
      expect(sink.requests.map((r) => [r.url, r.body])).toEqual([
        ['/a', { x: 1 }],
        ['/b', 'plain'],
      ]);

      sink.respondWith((_req, i) => ({ status: 202, headers: { 'x-index': String(i) }, body: 'ok' }));
      const r3 = await fetch(sink.url, { method: 'POST', body: '' });
      expect(r3.status).toBe(202);
      expect(r3.headers.get('x-index')).toBe('2');

      await sink.down();
      await expect(fetch(sink.url, { method: 'POST' })).rejects.toThrow();
      await sink.up();
      const r4 = await fetch(sink.url, { method: 'POST' });
      expect(r4.status).toBe(202);

      await expect(sink.waitFor((rs) => rs.length > 10, 50)).rejects.toThrow(/within 50 ms/);
    } finally {
      await sink.close();
    }
  });
});
