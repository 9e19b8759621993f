import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerState } from '../../scripts/chaos/common.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { runCli } from '../../harness/cli-process.js';
import { spawnEmitter } from '../../harness/process.js';
import { allDelivered, publishAll, sampleMessages, tempDir } from '../../harness/workload.js';
import { testEnv } from '../support/env.js';

/**
 * Attack: the spool's files changed by an operator under a running emitter (a real process on a
 * real nats-server), then the operator's tools run against it.
 */

let nats: NatsServerHandle;
let sink: Sink;
let nc: NatsConnection;

beforeAll(async () => {
  [nats, sink] = await Promise.all([startNats(), startSink()]);
  nc = await connect({ servers: nats.url });
});
afterAll(async () => {
  await nc?.close();
  await Promise.all([nats?.stop(), sink?.close()]);
});

async function until(pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function unacked(durable: string): Promise<number> {
  const state = await consumerState(nc, 'APPROVED', durable);
  return (state?.pending ?? 0) + (state?.ackPending ?? 0);
}

const cli = (spoolDir: string, ...args: string[]) => runCli({ TRANSMITTER_SPOOL_DIR: spoolDir }, args);
/** LevelDB's files but its text LOG (any open, even one refused by the lock, rotates that to LOG.old) */
const listing = async (dir: string) => (await readdir(dir)).filter((f) => !/^LOG(\.old)?$/.test(f)).sort();

function envFor(spoolDir: string, durable: string): Record<string, string> {
  return testEnv({
    natsUrl: nats.url,
    sinkUrl: sink.url,
    spoolDir,
    extra: {
      TRANSMITTER_NATS_DURABLE: durable,
      TRANSMITTER_BATCH_SIZE: '50',
      TRANSMITTER_SHUTDOWN_TIMEOUT_S: '2',
    },
  });
}

describe('spool files changed under a running emitter', () => {
  it('CURRENT removed under a running emitter: `spool repair --yes` refuses (the emitter holds the spool) and changes nothing', async () => {
    const dir = await tempDir('attack-repair-running');
    const spoolDir = join(dir.path, 'spool');
    const durable = 'attack-repair-running';
    const env = envFor(spoolDir, durable);
    const messages = sampleMessages(200, durable);
    const first = spawnEmitter(env);
    try {
      await sink.down();
      await first.ready;
      await until(async () => (await unacked(durable)) === 0, 20_000, 'earlier messages acknowledged');
      await publishAll(nats.url, messages);
      await until(async () => (await unacked(durable)) === 0, 20_000, 'every message spooled and acked');

      await rm(join(spoolDir, 'CURRENT'));
      const before = await listing(spoolDir);
      const repair = await cli(spoolDir, 'spool', 'repair', '--yes');
      expect(repair.code).not.toBe(0);
      expect(repair.stderr).toContain('in use by a running emitter');
      expect(repair.stdout).toBe('');
      expect(await listing(spoolDir)).toEqual(before);

      await first.stop();
      const fixed = await cli(spoolDir, 'spool', 'repair', '--yes');
      expect(fixed).toMatchObject({ code: 0 });
      await sink.up();
      const second = spawnEmitter(env);
      try {
        await sink.waitFor(allDelivered(messages), 30_000);
      } finally {
        expect(await second.stop()).toBe(0);
      }
    } finally {
      first.kill('SIGKILL');
      await sink.up();
      sink.clear();
      await dir.remove();
    }
  });
});
