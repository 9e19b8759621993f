import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/util/logger.js';
import { JetStreamSource } from '../../src/ingress/jetstream-source.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';

/**
 * SIGTERM right after `running` (a supervisor stopping a service it just started): the source's
 * stop() can come while its first consumer session is being set up, when there is no session to
 * stop yet. With nothing in the stream the session then waited for a message forever, and the
 * emitter never got past "stopping".
 */

let nats: NatsServerHandle | undefined;
let source: JetStreamSource | undefined;

afterEach(async () => {
  await source?.close();
  await nats?.stop();
});

describe('JetStreamSource.stop()', () => {
  it('resolves when it comes while the first session is being set up, with nothing to pull', async () => {
    nats = await startNats();
    const s = await JetStreamSource.connect(
      {
        servers: [nats.url],
        stream: 'APPROVED',
        subjects: ['approved.>'],
        durable: 'stop',
        ackWaitMs: 30_000,
      },
      { batchSize: 100, intervalMs: 200, logger: createLogger('silent'), watchMs: 1_000_000_000 },
    );
    source = s;
    let stopping: Promise<void> | undefined;
    s.start(
      () => undefined,
      // after the bind hook, the loop asks the server for the consumer: the stop lands in that wait
      () => void setImmediate(() => (stopping = s.stop())),
    );
    const until = Date.now() + 5000;
    while (!stopping && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    const outcome = await Promise.race([
      stopping!.then(() => 'stopped'),
      new Promise((r) => setTimeout(() => r('still waiting after 10 s'), 10_000)),
    ]);
    expect(outcome).toBe('stopped');
  }, 30_000);
});
