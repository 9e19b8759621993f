import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { Emitter } from '../../src/emitter.js';
import { createLogger } from '../../src/util/logger.js';
import { InterimFilter } from '../../src/delivery/interim-continue.js';
import { testEnv } from '../support/env.js';
import { tempDir } from '../../harness/workload.js';

/**
 * Destinations that misbehave at the byte level, as raw node:net servers on 127.0.0.1: an
 * unrequested `100 Continue` before the answer, and a 2xx whose body is cut off.
 */

interface RawRequest {
  head: string;
  idempotencyKey: string;
  bodyBytes: number;
}

/** How the raw server answers request number `index` (0-based) once it has been read whole. */
type Answer = (socket: Socket, index: number) => void;

interface RawServer {
  url: string;
  requests: RawRequest[];
  close(): Promise<void>;
}

/** Parses each request (head + content-length body) off a keep-alive connection and answers it. */
async function startRawServer(answer: Answer): Promise<RawServer> {
  const requests: RawRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buffered.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        buffered = buffered.subarray(end + 4 + length);
        const idempotencyKey = /\r\nidempotency-key: *([^\r]+)/i.exec(head)?.[1] ?? '';
        requests.push({ head, idempotencyKey, bodyBytes: length });
        answer(socket, requests.length - 1);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const OK = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(answer: Answer): Promise<RawServer> {
  const server = await startRawServer(answer);
  cleanups.push(() => server.close());
  return server;
}

async function emitterFor(url: string): Promise<Emitter> {
  const spool = await tempDir('delivery-faults');
  const config = loadConfig(testEnv({ sinkUrl: `${url}/v1/batch`, spoolDir: spool.path }));
  const emitter = new Emitter(config, { logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent') });
  await emitter.start();
  cleanups.push(async () => {
    await emitter.close();
    await spool.remove();
  });
  return emitter;
}

async function sendOneBatch(emitter: Emitter, n: number): Promise<void> {
  await emitter.add('approved.finding', { id: `f${n}` });
  await emitter.flush();
  await emitter.wait();
}

describe('a destination that sends an unrequested 100 Continue', () => {
  it('is accepted: each batch delivered exactly once, also on a reused connection', async () => {
    const server = await serve((socket) => socket.write(`HTTP/1.1 100 Continue\r\n\r\n${OK}`));
    const emitter = await emitterFor(server.url);
    await sendOneBatch(emitter, 1);
    await sendOneBatch(emitter, 2);
    expect(server.requests).toHaveLength(2);
    expect(new Set(server.requests.map((r) => r.idempotencyKey)).size).toBe(2);
    expect(emitter.stats).toMatchObject({ delivered: 2, spool: { batches: 0 } });
  });

  it('is accepted split across packets, with headers, more than once', async () => {
    const server = await serve((socket) => {
      socket.write('HTTP/1.1 100');
      setTimeout(
        () => socket.write(` Continue\r\nx-note: early\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n${OK}`),
        20,
      );
    });
    const emitter = await emitterFor(server.url);
    await sendOneBatch(emitter, 1);
    expect(server.requests).toHaveLength(1);
    expect(emitter.stats).toMatchObject({ delivered: 1, spool: { batches: 0 } });
  });

  it('the filter passes every other response through untouched', () => {
    const f = new InterimFilter();
    const final = Buffer.from('HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n');
    expect(f.push(final)).toEqual(final);
    // after the final response started, nothing is filtered until the next request head
    const later = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n');
    expect(f.push(later)).toEqual(later);
    f.requestWritten();
    expect(f.push(Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n')).toString()).toBe(
      'HTTP/1.1 200 OK\r\n',
    );
    f.requestWritten();
    expect(f.push(Buffer.from('HTTP/1.1 1')).length).toBe(0);
    expect(f.push(Buffer.from('01 Switching\r\n\r\n')).toString()).toBe('HTTP/1.1 101 Switching\r\n\r\n');
  });
});

describe('a 2xx whose body is cut off', () => {
  it('is retryable, and the batch is delivered on the next attempt with the same idempotency-key', async () => {
    const server = await serve((socket, index) => {
      if (index === 0) {
        socket.end(`HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n${'x'.repeat(10)}`);
        return;
      }
      socket.write(OK);
    });
    const emitter = await emitterFor(server.url);
    const outcomes: string[] = [];
    emitter.events.on('attempt', (e) =>
      outcomes.push(e.outcome.kind === 'retryable' ? e.outcome.reason : e.outcome.kind),
    );
    await sendOneBatch(emitter, 1);
    expect(outcomes).toEqual(['response_incomplete', 'success']);
    expect(server.requests).toHaveLength(2);
    expect(server.requests[0]!.idempotencyKey).not.toBe('');
    expect(server.requests[1]!.idempotencyKey).toBe(server.requests[0]!.idempotencyKey);
    expect(emitter.stats).toMatchObject({ delivered: 1, spool: { batches: 0 } });
  });
});
