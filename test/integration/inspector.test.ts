import { createWebSocketReceiver, type StatelyInspectionEvent } from '@statelyai/inspect';
import { createInspectorServer } from '@statelyai/inspect/server';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { createEmitter } from '../../src/index.js';
import { freePort } from '../../harness/nats.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { tempDir } from '../../harness/workload.js';
import { embedOptions, spawnTs } from '../fixtures/embed-support.js';

/**
 * TRANSMITTER_INSPECT end to end: an emitter streams its statecharts to the package's own relay
 * (`createInspectorServer`, what an operator runs), and the package's own WebSocket receiver reads
 * them there, as Stately's tools would.
 */

const ITEM_MARKER = 'item-body-marker-4711';
const SECRET = 'secret-token-marker-0815';

let sink: Sink;
let relayUrl: string;
let relay: { stop(): void };
beforeAll(async () => {
  sink = await startSink();
  const port = await freePort();
  relay = createInspectorServer({ port, autoOpen: false });
  relayUrl = `ws://127.0.0.1:${port}`;
});
afterAll(async () => {
  relay?.stop();
  await sink?.close();
});

/** The package's receiver on the relay, connected: a marker sent through the relay has reached it. */
async function connectedReceiver(): Promise<StatelyInspectionEvent[]> {
  const received: StatelyInspectionEvent[] = [];
  const receiver = createWebSocketReceiver({ server: relayUrl });
  receiver.subscribe((event) => received.push(event));
  const marker = new WebSocket(relayUrl);
  await new Promise((resolve, reject) => marker.once('open', resolve).once('error', reject));
  marker.send(JSON.stringify({ type: 'test.marker' }));
  await vi.waitFor(() => expect(received.some((e) => (e.type as string) === 'test.marker')).toBe(true), {
    timeout: 10_000,
  });
  marker.close();
  received.length = 0;
  return received;
}

interface ReceivedSnapshot {
  value?: unknown;
  context?: unknown;
}

/** The snapshots received of one actor, in arrival order. */
function snapshotsOf(events: StatelyInspectionEvent[], sessionId: string): ReceivedSnapshot[] {
  return events.flatMap((e) =>
    e.type === '@xstate.snapshot' && e.sessionId === sessionId ? [e.snapshot as ReceivedSnapshot] : [],
  );
}

/** The states one actor went through as received, repeats (context-only steps) folded. */
function statesOf(events: StatelyInspectionEvent[], sessionId: string): unknown[] {
  const states: unknown[] = [];
  for (const { value } of snapshotsOf(events, sessionId)) {
    if (JSON.stringify(states.at(-1)) !== JSON.stringify(value)) states.push(value);
  }
  return states;
}

function actorsNamed(events: StatelyInspectionEvent[], name: string): string[] {
  return events.filter((e) => e.type === '@xstate.actor' && e.name === name).map((e) => e.sessionId);
}

describe('TRANSMITTER_INSPECT: the Stately inspector', () => {
  it('streams the buffer, delivery, breaker and limiter actors, their transitions in order, without item bodies or secrets', async () => {
    const received = await connectedReceiver();
    const spool = await tempDir('inspect');
    // the first batch: 503, then accepted; the second: refused with an answer quoting the request
    sink.respondWith((req, index) => {
      if (index === 0) return { status: 503 };
      if (index === 1) return { status: 200, body: { ok: true } };
      return {
        status: 400,
        body: `refused ${JSON.stringify(req.body)} ${String(req.headers.authorization)}`,
      };
    });
    const emitter = createEmitter(
      embedOptions(`${sink.url}/ingest`, spool.path, {
        inspect: relayUrl,
        authToken: SECRET,
        compression: 'none',
        concurrency: 1,
        circuitFailureThreshold: 1,
        circuitResetTimeoutS: 0.05,
      }),
    );
    try {
      await emitter.start();
      const breakerChanges: string[] = [];
      emitter.events.on('breaker', (e) => breakerChanges.push(e.to));
      const first = emitter.add('approved.finding', { note: ITEM_MARKER, n: 1 });
      await emitter.flush();
      await first;
      await emitter.wait();
      const second = emitter.add('approved.finding', { note: ITEM_MARKER, n: 2 });
      await emitter.flush();
      await second;
      await emitter.wait();
      await emitter.close();
      expect(sink.requests.map((r) => r.url)).toHaveLength(3);

      const [buffer] = actorsNamed(received, 'buffer');
      expect(buffer).toBeDefined();
      // the last events of close() arrive after it resolves
      await vi.waitFor(() => expect(statesOf(received, buffer!).at(-1)).toBe('closed'), { timeout: 10_000 });

      expect(statesOf(received, buffer!)).toEqual([
        'empty',
        'filling',
        'empty',
        'filling',
        'empty',
        'closed',
      ]);
      const [breaker] = actorsNamed(received, 'breaker');
      expect(statesOf(received, breaker!)).toEqual(['closed', ...breakerChanges]);
      expect(breakerChanges).toEqual(['open', 'halfOpen', 'closed']);
      const [limiter] = actorsNamed(received, 'limiter');
      expect(statesOf(received, limiter!)).toEqual(['flowing', 'held', 'probing', 'flowing']);
      const deliveries = actorsNamed(received, 'delivery');
      expect(deliveries.map((id) => statesOf(received, id))).toEqual([
        ['waiting', 'sending', 'backoff', 'waiting', 'sending', 'delivered'],
        ['waiting', 'sending', 'deadLettered'],
      ]);

      // the destination's answer quoted the item and the token; the delivery machine holds that
      // quote, and it went out only as its size
      expect(JSON.stringify(sink.requests[2]?.body)).toContain(ITEM_MARKER);
      const refused = snapshotsOf(received, deliveries[1]!).find(
        (snapshot) => snapshot.value === 'deadLettered',
      );
      expect(refused?.context).toMatchObject({
        lastOutcome: {
          kind: 'permanent',
          status: 400,
          bodyExcerpt: expect.stringMatching(/^\[withheld: \d+ characters\]$/),
        },
      });
      const text = JSON.stringify(received);
      expect(text).not.toContain(ITEM_MARKER);
      expect(text).not.toContain(SECRET);
    } finally {
      await emitter.close();
      await spool.remove();
      sink.respondWith(undefined);
      sink.clear();
    }
  });

  it('an unreachable inspector: delivery goes on, one warning, and the process still exits on its own', async () => {
    const spool = await tempDir('inspect-unreachable');
    const nobody = `ws://127.0.0.1:${await freePort()}`;
    try {
      const options = embedOptions(`${sink.url}/ingest`, spool.path, { inspect: nobody, logLevel: 'info' });
      const child = spawnTs('test/fixtures/inspect-child.ts', { EMBED_OPTIONS: JSON.stringify(options) });
      await child.saw('closed');
      const exited = await Promise.race([
        child.exited,
        new Promise((r) => setTimeout(r, 20_000, 'still running')),
      ]);
      expect(exited).toBe(0);
      expect(sink.requests).toHaveLength(1);
      expect(child.output().match(/inspector unreachable/g)).toHaveLength(1);
    } finally {
      await spool.remove();
      sink.clear();
    }
  });
});
