import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { startNats, startNatsCluster, type NatsServerHandle } from '../../harness/nats.js';
import { ensureReplicatedStream } from '../../harness/replicated.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { testEnv } from '../support/env.js';
import { spawnEmitter } from '../../harness/process.js';
import { until } from '../../harness/emitter-probe.js';
import { allDelivered, publishAll, sampleMessages, tempDir } from '../../harness/workload.js';

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
    // both take a share before one dies (on a loaded machine one may start pulling later)
    await until(() => a.output().includes('batch delivered'), 30_000, 'a batch delivered by the first');
    await until(() => b.output().includes('batch delivered'), 30_000, 'a batch delivered by the second');
    b.kill('SIGKILL');
    await b.exited;
    await publishing;
    const b2 = spawnEmitter(envFor(1));
    try {
      await sink.waitFor(allDelivered(messages), 60_000);
    } finally {
      expect(await a.stop()).toBe(0);
      expect(await b2.stop()).toBe(0);
      for (const s of spools) await s.remove();
    }
  });

  it('on a 3-node cluster with an R3 stream, instances started together on a new durable all take a share', async () => {
    const cluster = await startNatsCluster(3, { name: 'scale' });
    const admin = await connect({ servers: cluster.nodes.map((n) => n.url) });
    // the stream first (an emitter creates a missing one with one replica)
    await ensureReplicatedStream(admin, 'APPROVED', ['approved.>'], 3);
    const spools = [await tempDir('cluster-a'), await tempDir('cluster-b'), await tempDir('cluster-c')];
    sink.clear();
    // all three create or find the new durable at the same moment
    const emitters = spools.map((spool) =>
      spawnEmitter(
        testEnv({
          natsUrl: cluster.urls,
          sinkUrl: sink.url,
          spoolDir: spool.path,
          extra: { TRANSMITTER_NATS_DURABLE: 'fresh', TRANSMITTER_BATCH_SIZE: '100' },
        }),
      ),
    );
    try {
      await Promise.all(emitters.map((e) => e.ready));
      const messages = sampleMessages(6_000, 'cluster');
      await publishAll(cluster.nodes[0]!.url, messages, 100);
      await sink.waitFor(allDelivered(messages), 60_000);
      const delivered = emitters.map((e) => e.output().split('"msg":"batch delivered"').length - 1);
      // a pull sent before the consumer's RAFT group had a leader used to leave an instance idle
      expect(
        delivered.every((n) => n > 0),
        `batches delivered per instance: ${delivered.join(' / ')}`,
      ).toBe(true);
    } finally {
      const codes = await Promise.all(emitters.map((e) => e.stop()));
      await admin.close();
      await cluster.stop();
      for (const s of spools) await s.remove();
      expect(codes).toEqual([0, 0, 0]);
    }
  });
});
