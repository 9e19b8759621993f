import net from 'node:net';
import { Writable } from 'node:stream';
import type { StatelyInspectionEvent } from '@statelyai/inspect';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { InspectorLink } from '../../src/observe/inspect/link.js';
import { createLogger } from '../../src/util/logger.js';

/**
 * The inspector's WebSocket link against real sockets: an inspector that refuses (a TCP server
 * that drops every connection), then one that answers on the same port.
 */

const TIMING = { firstMs: 10, maxMs: 40 };

function capturedLogger() {
  const lines: Array<{ msg: string; [key: string]: unknown }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger('info', stream), lines };
}

function event(n: number): StatelyInspectionEvent {
  return {
    type: '@xstate.event',
    event: { type: `E${n}` },
    sourceId: undefined,
    sessionId: 'x:0',
    rootId: 'x:0',
    createdAt: String(n),
    id: String(n),
    _version: 'test',
  };
}

/** A TCP server that accepts and at once destroys every connection, counting them. */
async function refusingServer(
  port = 0,
): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let count = 0;
  const server = net.createServer((socket) => {
    count += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => count,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A WebSocket server on `port`, recording the text messages it receives. */
async function inspectorOn(
  port: number,
): Promise<{ messages: string[]; sockets: WebSocket[]; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port });
  await new Promise((resolve) => wss.once('listening', resolve));
  const messages: string[] = [];
  const sockets: WebSocket[] = [];
  wss.on('connection', (socket) => {
    sockets.push(socket);
    socket.on('message', (data: Buffer) => messages.push(data.toString()));
  });
  return {
    messages,
    sockets,
    close: () =>
      new Promise((resolve) => {
        for (const socket of wss.clients) socket.terminate();
        wss.close(() => resolve());
      }),
  };
}

const typesOf = (messages: string[]) =>
  messages.map((m) => (JSON.parse(m) as { event: { type: string } }).event.type);

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('InspectorLink', () => {
  it('logs an unreachable inspector once however often it retries, then sends what waited, in order', async () => {
    const refusing = await refusingServer();
    const { logger, lines } = capturedLogger();
    const link = new InspectorLink(`ws://127.0.0.1:${refusing.port}`, logger, TIMING);
    cleanups.push(() => link.stop());
    link.start();
    for (let n = 1; n <= 3; n++) link.send(event(n));
    await vi.waitFor(() => expect(refusing.connections()).toBeGreaterThanOrEqual(4), { timeout: 10_000 });
    expect(lines.filter((l) => l.msg.startsWith('inspector unreachable'))).toHaveLength(1);

    await refusing.close();
    const inspector = await inspectorOn(refusing.port);
    cleanups.push(() => inspector.close());
    await vi.waitFor(() => expect(inspector.messages).toHaveLength(3), { timeout: 10_000 });
    link.send(event(4));
    await vi.waitFor(() => expect(inspector.messages).toHaveLength(4), { timeout: 10_000 });
    expect(typesOf(inspector.messages)).toEqual(['E1', 'E2', 'E3', 'E4']);
    expect(lines.find((l) => l.msg === 'inspector connected')).toMatchObject({ backlog: 3, dropped: 0 });
  });

  it('keeps a bounded backlog while unreachable (the oldest events are dropped and counted)', async () => {
    const refusing = await refusingServer();
    const { logger, lines } = capturedLogger();
    const link = new InspectorLink(`ws://127.0.0.1:${refusing.port}`, logger, TIMING);
    cleanups.push(() => link.stop());
    link.start();
    for (let n = 1; n <= 1005; n++) link.send(event(n));
    await refusing.close();
    const inspector = await inspectorOn(refusing.port);
    cleanups.push(() => inspector.close());
    await vi.waitFor(() => expect(inspector.messages).toHaveLength(1000), { timeout: 10_000 });
    expect(typesOf(inspector.messages).slice(0, 2)).toEqual(['E6', 'E7']);
    expect(lines.find((l) => l.msg === 'inspector connected')).toMatchObject({ backlog: 1000, dropped: 5 });
  });

  it('a lost connection is logged once and retried; stop() closes it and retries no more', async () => {
    const refusing = await refusingServer();
    const port = refusing.port;
    await refusing.close();
    const inspector = await inspectorOn(port);
    const { logger, lines } = capturedLogger();
    const link = new InspectorLink(`ws://127.0.0.1:${port}`, logger, TIMING);
    cleanups.push(() => link.stop());
    link.start();
    await vi.waitFor(() => expect(inspector.sockets).toHaveLength(1), { timeout: 10_000 });
    inspector.sockets[0]!.terminate();
    await vi.waitFor(() => expect(inspector.sockets).toHaveLength(2), { timeout: 10_000 });
    expect(lines.filter((l) => l.msg.startsWith('inspector unreachable'))).toHaveLength(1);

    const closed = new Promise((resolve) => inspector.sockets[1]!.once('close', resolve));
    link.stop();
    await closed;
    link.send(event(1));
    await inspector.close();
    // a link still retrying would reach this server on its port within 40 ms
    const after = await refusingServer(port);
    await new Promise((resolve) => setTimeout(resolve, 10 * TIMING.maxMs));
    expect(after.connections()).toBe(0);
    await after.close();
    expect(inspector.messages).toEqual([]);
  });
});
