import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { startSink, type Sink } from '../../harness/sink.js';
import { tempDir } from '../../harness/workload.js';
import { resolveConfig } from '../../src/config/embedded.js';
import { secretsOf } from '../../src/config/secrets.js';
import { createEmitter } from '../../src/index.js';
import { createLogger } from '../../src/util/logger.js';
import { embedOptions } from '../fixtures/embed-support.js';

/**
 * Attack on the redaction of secrets carried in URLs (TRANSMITTER_INSPECT, the destination URL):
 * a credential-named query value is a secret, but URLs carry it percent-encoded. The emitter logs
 * the inspector URL as configured, and a receiver echoes the request URL as it was sent; both are
 * the encoded text, while the redaction list held only the decoded value
 * (src/config/secret-values.ts urlSecrets). Real WebSocket server, real sink, real spool.
 */

const INSPECT_SECRET = 't0k%2Bsecret-value';
const DEST_SECRET = 'k3y%2Fsecret-value';
const decoded = (s: string) => decodeURIComponent(s);

let sink: Sink;
let wss: WebSocketServer;
beforeAll(async () => {
  sink = await startSink();
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
});
afterAll(async () => {
  await sink?.close();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
});

describe('attack: percent-encoded secrets in URLs', () => {
  it('neither the inspector URL logged at start nor a receiver echoing the request URL shows the secret', async () => {
    const spool = await tempDir('attack-redact');
    const { port } = wss.address() as { port: number };
    sink.respondWith((req) => ({ status: 400, body: `no such route: ${req.url}` }));
    const lines: string[] = [];
    const options = embedOptions(`${sink.url}/ingest?api_key=${DEST_SECRET}`, spool.path, {
      inspect: `ws://127.0.0.1:${port}/?token=${INSPECT_SECRET}`,
      compression: 'none',
    });
    // the emitter's own logger (as the service has it): redacting secretsOf(config)
    const secrets = secretsOf(resolveConfig(options));
    const write = (line: string) => void lines.push(line);
    const emitter = createEmitter(options, { logger: createLogger('info', { write }, secrets) });
    try {
      await emitter.start();
      const added = emitter.add('approved.finding', { n: 1 });
      await emitter.flush();
      await added;
      await emitter.wait();
      // the receiver did echo the URL as sent (encoded): that is what must not come back out
      expect(JSON.stringify(sink.requests[0]?.url)).toContain(DEST_SECRET);
      const deadLetters = JSON.stringify(await emitter.deadLetters());
      const seen = lines.join('') + deadLetters;
      for (const secret of [INSPECT_SECRET, DEST_SECRET]) {
        expect(seen, `${secret} shown`).not.toContain(secret);
        expect(seen, `${decoded(secret)} shown`).not.toContain(decoded(secret));
      }
    } finally {
      await emitter.close();
      sink.respondWith(undefined);
      sink.clear();
      await spool.remove();
    }
  }, 60_000);
});
