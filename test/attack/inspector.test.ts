import { WebSocketServer, type WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSink, type Sink } from '../../harness/sink.js';
import { tempDir } from '../../harness/workload.js';
import { createEmitter } from '../../src/index.js';
import { embedOptions } from '../fixtures/embed-support.js';

/**
 * Attack on the Stately inspector link (TRANSMITTER_INSPECT, src/observe/inspect/link.ts): the
 * configured inspector is a peer the emitter writes to; a hostile or broken one must not grow the
 * emitter's memory nor hold up delivery. Real WebSocket server (ws) on loopback, real spool, real sink.
 */

let sink: Sink;
beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink?.close();
});

async function peer(
  onConnection: (socket: WebSocket) => void,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  server.on('connection', onConnection);
  const { port } = server.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of server.clients) client.terminate();
        server.close(() => resolve());
      }),
  };
}

describe('attack: a hostile Stately inspector', () => {
  // HOLE: the link never reads what the inspector sends, yet opens its socket with ws's default
  // maxPayload (100 MiB) and permessage-deflate: every message the peer sends, up to 100 MiB each
  // (or a deflate bomb inflating to that), is assembled in the emitter's heap before being thrown
  // away. src/observe/inspect/link.ts connect(): `new WebSocket(url, { handshakeTimeout })`.
  // Fix: `maxPayload: 64 * 1024, perMessageDeflate: false` (it expects no messages at all).
  it('a message from the inspector is refused (1009), not assembled in memory', async () => {
    const closes: number[] = [];
    const inspector = await peer((socket) => {
      socket.on('close', (code) => closes.push(code));
      socket.send(Buffer.alloc(24 * 1024 * 1024, 7));
    });
    const spool = await tempDir('attack-inspect-big');
    const emitter = createEmitter(embedOptions(`${sink.url}/ingest`, spool.path, { inspect: inspector.url }));
    try {
      await emitter.start();
      const deadline = Date.now() + 15_000;
      while (closes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(closes, 'the emitter took a 24 MiB message from the inspector without closing').toEqual([1009]);
    } finally {
      await emitter.close();
      await inspector.close();
      await spool.remove();
    }
  }, 60_000);

  // Regression (passes): an inspector that accepts the connection and never reads: deliveries go
  // on at full pace and close() does not wait on it.
  it('an inspector that never reads holds up neither delivery nor close()', async () => {
    const inspector = await peer((socket) => {
      (socket as unknown as { _socket: { pause(): void } })._socket.pause();
    });
    const spool = await tempDir('attack-inspect-stall');
    const emitter = createEmitter(
      embedOptions(`${sink.url}/ingest`, spool.path, { inspect: inspector.url, batchSize: 50 }),
    );
    sink.clear();
    try {
      await emitter.start();
      const adds = Array.from({ length: 3000 }, (_, n) => emitter.add('approved.finding', { n }));
      await emitter.flush();
      await Promise.all(adds);
      await emitter.wait();
      const delivered = sink.requests.reduce(
        (sum, r) => sum + ((r.body as { events?: unknown[] }).events?.length ?? 0),
        0,
      );
      expect(delivered).toBe(3000);
      const closing = Date.now();
      await emitter.close();
      expect(Date.now() - closing).toBeLessThan(5000);
    } finally {
      await emitter.close();
      await inspector.close();
      await spool.remove();
      sink.clear();
    }
  }, 120_000);
});
