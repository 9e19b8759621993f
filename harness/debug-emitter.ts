import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../src/config/embedded.js';
import { Emitter } from '../src/emitter.js';
import { createMetrics } from '../src/observe/metrics.js';
import { startServer, type RunningServer } from '../src/observe/server.js';
import { startSink, type Sink } from './sink.js';

/**
 * A real emitter (no NATS: items come through `add`) with its HTTP server and TRANSMITTER_DEBUG on,
 * delivering to a loopback sink that answers 200, or 503 from `outage()` until `recover()`: the
 * /debug page then shows batches backing off, the breaker open and a history of attempts. For the
 * Chromium page test and `scripts/debug-screenshots.ts`.
 */
export interface DebugEmitter {
  readonly url: string;
  readonly sink: Sink;
  readonly emitter: Emitter;
  /** add `count` items, in batches of `batchSize` */
  add(count: number): Promise<void>;
  /** the sink answers 503 from now on */
  outage(): void;
  /** the sink answers 200 from now on */
  recover(): void;
  close(): Promise<void>;
}

export async function startDebugEmitter(opts: { batchSize?: number } = {}): Promise<DebugEmitter> {
  const sink = await startSink();
  const dir = await mkdtemp(join(tmpdir(), 'debug-emitter-'));
  const emitter = new Emitter(
    resolveConfig({
      TRANSMITTER_DESTINATION_URL: `${sink.url}/v1/batch`,
      TRANSMITTER_ALLOW_INSECURE_HTTP: 'true',
      TRANSMITTER_SPOOL_DIR: dir,
      TRANSMITTER_SERVER_HOST: '127.0.0.1',
      TRANSMITTER_SERVER_PORT: '0',
      TRANSMITTER_DEBUG: 'true',
      TRANSMITTER_BATCH_SIZE: String(opts.batchSize ?? 5),
      TRANSMITTER_BATCH_INTERVAL_S: '0.2',
      TRANSMITTER_RETRY_INITIAL_DELAY_S: '0.2',
      TRANSMITTER_RETRY_MAX_DELAY_S: '2',
      TRANSMITTER_CIRCUIT_RESET_TIMEOUT_S: '1',
      // no batch runs out of attempts while a test or a screenshot looks at the outage
      TRANSMITTER_RETRY_MAX_ATTEMPTS: '50',
      TRANSMITTER_LOG_LEVEL: 'silent',
    }),
  );
  const status = emitter.statusSource();
  const metrics = createMetrics(emitter.events, () => emitter.statusSnapshot(), { defaultMetrics: false });
  let server: RunningServer | undefined;
  try {
    server = await startServer({
      host: '127.0.0.1',
      port: 0,
      status,
      events: emitter.events,
      metrics,
      debug: true,
      logger: emitter.logger,
    });
    await emitter.start();
  } catch (error) {
    await server?.close();
    metrics.close();
    await sink.close();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const running = server;
  let n = 0;
  return {
    url: running.url,
    sink,
    emitter,
    async add(count) {
      for (let i = 0; i < count; i++) {
        n += 1;
        await emitter.add(`approved.debug.${n % 3}`, { id: `item-${n}`, n });
      }
    },
    outage: () => sink.respondWith(() => ({ status: 503, body: { error: 'down for maintenance' } })),
    recover: () => sink.respondWith(undefined),
    async close() {
      emitter.hurry();
      await emitter.close();
      await running.close();
      metrics.close();
      await sink.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
