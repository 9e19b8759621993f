import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNats, type NatsServerHandle } from '../harness/nats.js';
import { startSink, type Sink } from '../harness/sink.js';
import { testEnv } from '../support/env.js';
import { spawnEmitter } from '../support/process.js';
import { allDelivered, publishAll, sampleMessages, tempDir } from '../support/workload.js';

/** Two emitter processes share one durable consumer, each with its own spool; one is killed. */

let nats: NatsServerHandle;
let sink: Sink;
beforeAll(async () => {
  [nats, sink] = await Promise.all([startNats(), startSink()]);
});
afterAll(async () => {
  await Promise.all([nats?.stop(), sink?.close()]);
});

describe('scale-out', () => {
  it('two instances divide the stream; one killed with SIGKILL and restarted: nothing lost', async () => {
    const spools = [await tempDir('scale-a'), await tempDir('scale-b')];
    const envFor = (i: number) =>
      testEnv({
        natsUrl: nats.url,
        sinkUrl: sink.url,
        spoolDir: spools[i]!.path,
        extra: { TRANSMITTER_NATS_DURABLE: 'shared', TRANSMITTER_BATCH_SIZE: '200' },
      });
    const a = spawnEmitter(envFor(0));
    const b = spawnEmitter(envFor(1));
    await Promise.all([a.ready, b.ready]);
    const messages = sampleMessages(10_000, 'scale');
    const publishing = publishAll(nats.url, messages, 200);
    await sink.waitFor((rs) => rs.length >= 6, 30_000);
    b.kill('SIGKILL');
    await b.exited;
    await publishing;
    const b2 = spawnEmitter(envFor(1));
    try {
      await sink.waitFor(allDelivered(messages), 60_000);
      // both instances delivered a share of the stream
      expect(a.output()).toContain('batch delivered');
      expect(b.output() + b2.output()).toContain('batch delivered');
    } finally {
      expect(await a.stop()).toBe(0);
      expect(await b2.stop()).toBe(0);
      for (const s of spools) await s.remove();
    }
  });
});
