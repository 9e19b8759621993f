import { afterAll, afterEach, beforeAll } from 'vitest';
import { createHttpTransport, type HttpTransport } from '../../src/delivery/http-transport.js';
import { startSink, type Sink } from '../../harness/sink.js';

/**
 * A real loopback sink and an HTTP transport aimed at it, started once per test file and reset
 * after each test (answers back to 200, requests cleared, the test's cleanups run in reverse).
 */
export interface LoopbackDestination {
  readonly sink: Sink;
  readonly transport: HttpTransport;
  /** run after the current test, last added first */
  cleanup(...fns: Array<() => Promise<void>>): void;
}

export function useLoopbackDestination(options: { authToken?: string } = {}): LoopbackDestination {
  let sink: Sink | undefined;
  let transport: HttpTransport | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    sink = await startSink();
    transport = createHttpTransport({
      url: `${sink.url}/v1/batch`,
      authToken: options.authToken,
      allowInsecureHttp: true,
      connectTimeoutMs: 1000,
      requestTimeoutMs: 2000,
      connections: 1,
      userAgent: 'batch-emitter/test',
    });
  });
  afterAll(async () => {
    await transport?.close();
    await sink?.close();
  });
  afterEach(async () => {
    sink?.respondWith(undefined);
    sink?.clear();
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the loopback destination starts in beforeAll');
    return value;
  };
  return {
    get sink() {
      return started(sink);
    },
    get transport() {
      return started(transport);
    },
    cleanup: (...fns) => void cleanups.push(...fns),
  };
}
