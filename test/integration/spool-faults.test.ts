import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fill, tryMount, unmount } from '../../scripts/chaos/enospc.js';
import { decodeBody } from '../../src/spool/batch-codec.js';
import { Intake } from '../../src/intake/intake.js';
import { intakeOptions } from '../../harness/intake-wiring.js';
import { itemFromEvent } from '../../src/model.js';
import { Spool } from '../../src/spool/spool.js';
import { getReady, httpUrl, unacked as unackedOn, until } from '../../harness/emitter-probe.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { runCli } from '../../harness/cli-process.js';
import { testEnv } from '../support/env.js';
import { spawnEmitter } from '../../harness/process.js';
import { allDelivered, publishAll, sampleMessages, tempDir } from '../../harness/workload.js';

/**
 * Issue 12: the spool changing under a running emitter, with the real thing wherever it can be
 * had: a real full disk (a small tmpfs, when `mount` works here: root), a real nats-server, the
 * emitter as a real process, a spool directory really deleted.
 */

let nats: NatsServerHandle;
let sink: Sink;
let nc: NatsConnection;

beforeAll(async () => {
  [nats, sink] = await Promise.all([startNats(), startSink()]);
  nc = await connect({ servers: nats.url });
});
const unacked = (durable: string) => unackedOn(nc, durable);

afterAll(async () => {
  await nc?.close();
  await Promise.all([nats?.stop(), sink?.close()]);
});

/** A tmpfs of `size` for the test, or the reason it cannot be mounted here. */
async function smallDisk(size: string): Promise<{ path: string; release(): Promise<void> } | string> {
  const dir = await tempDir('small-disk');
  const why = tryMount(dir.path, size);
  if (why !== undefined) {
    await dir.remove();
    return `mount -t tmpfs failed (${why})`;
  }
  return {
    path: dir.path,
    release: async () => {
      unmount(dir.path);
      await dir.remove();
    },
  };
}

const event = (n: number) =>
  itemFromEvent({
    subject: 'approved.x',
    seq: n,
    msg_id: `m${n}`,
    published_at: '2026-01-01T00:00:00.000Z',
    // incompressible enough that a batch takes a few pages of the small disk
    data: { n, pad: `${n}`.repeat(400).slice(0, 400) + Math.random().toString(36).repeat(20) },
  });

describe('the spool changing under a running emitter (issue 12)', () => {
  it('a full disk that clears: every item acknowledged is in the spool after a restart', async (ctx) => {
    const disk = await smallDisk('2m');
    if (typeof disk === 'string') return ctx.skip(disk);
    try {
      const spoolDir = join(disk.path, 'spool');
      const spool = await Spool.open(spoolDir);
      const acked = new Set<number>();
      const intake = new Intake(intakeOptions(spool, { maxItems: 20 }));
      const offer = (n: number) => intake.offer(event(n), { seq: n, ack: () => acked.add(n) });
      await Promise.all(Array.from({ length: 100 }, (_, i) => offer(i + 1)));
      fill(join(disk.path, 'filler'));
      const during = Array.from({ length: 200 }, (_, i) => offer(101 + i));
      await until(() => intake.pauseReason() === 'spool_write_failing', 10_000, 'a spool write to fail');
      rmSync(join(disk.path, 'filler'));
      await Promise.all(during);
      expect(acked.size).toBe(300);
      expect(spool.handle.reopens).toBeGreaterThan(0);
      await intake.close();
      await spool.close();

      const restarted = await Spool.open(spoolDir);
      const present = new Set<number>();
      for (const state of await restarted.batches.list()) {
        const batch = await restarted.batches.get(state.id);
        const doc = (await decodeBody(state, batch!.body)) as { events: Array<{ seq: number }> };
        for (const e of doc.events) present.add(e.seq);
      }
      await restarted.close();
      expect([...acked].filter((n) => !present.has(n))).toEqual([]);
    } finally {
      await disk.release();
    }
  });

  it('a second instance on the same spool is told, in one line, that it is locked by another process', async () => {
    const dir = await tempDir('locked');
    const spool = await Spool.open(dir.path);
    try {
      const second = await runCli(testEnv({ sinkUrl: 'http://127.0.0.1:9/ingest', spoolDir: dir.path }), [
        'run',
      ]);
      expect(second.code).toBe(1);
      expect(second.stderr).toBe(
        `batch-emitter: cannot start: spool ${dir.path} is locked by another process\n`,
      );
    } finally {
      await spool.close();
      await dir.remove();
    }
  });

  it('the spool directory deleted while running: nothing more acknowledged, /ready 503, all delivered after a restart', async () => {
    const dir = await tempDir('replaced');
    const spoolDir = join(dir.path, 'spool');
    const env = testEnv({
      natsUrl: nats.url,
      sinkUrl: sink.url,
      spoolDir,
      extra: {
        TRANSMITTER_NATS_DURABLE: 'replaced',
        TRANSMITTER_BATCH_SIZE: '50',
        TRANSMITTER_SHUTDOWN_TIMEOUT_S: '2',
      },
    });
    const messages = sampleMessages(300, 'replaced');
    const [before, after] = [messages.slice(0, 100), messages.slice(100)];
    const first = spawnEmitter(env);
    try {
      await first.ready;
      await publishAll(nats.url, before);
      await sink.waitFor(allDelivered(before), 20_000);
      await rm(spoolDir, { recursive: true, force: true });
      await publishAll(nats.url, after);
      const base = httpUrl(first.output())!;
      await until(
        async () => (await getReady(base)).failing.includes('spool_in_place'),
        10_000,
        '/ready to name spool_in_place',
      );
      const ready = await getReady(base);
      expect(ready.status).toBe(503);
      expect(ready.reasons.join(' ')).toMatch(/spool_replaced: .*no longer exists/);
      expect(first.output()).toContain('spool directory was deleted or replaced under the running emitter');
      expect(await unacked('replaced')).toBe(after.length);
      expect(await first.stop()).toBe(1);

      const second = spawnEmitter(env);
      try {
        await sink.waitFor(allDelivered(after), 30_000);
      } finally {
        expect(await second.stop()).toBe(0);
      }
    } finally {
      first.kill('SIGKILL');
      await dir.remove();
      sink.clear();
    }
  });

  /**
   * The disk fills under a running emitter while messages arrive; `stop` signals it and checks how
   * it ends; then the messages must still be unacknowledged in JetStream, and all delivered once the
   * disk is freed and the emitter started again.
   */
  async function fullDiskStop(
    ctx: { skip(why: string): void },
    durable: string,
    timeoutS: string,
    stop: (first: ReturnType<typeof spawnEmitter>) => Promise<void>,
  ): Promise<void> {
    const disk = await smallDisk('4m');
    if (typeof disk === 'string') return ctx.skip(disk);
    const env = testEnv({
      natsUrl: nats.url,
      sinkUrl: sink.url,
      spoolDir: join(disk.path, 'spool'),
      extra: { TRANSMITTER_NATS_DURABLE: durable, TRANSMITTER_SHUTDOWN_TIMEOUT_S: timeoutS },
    });
    const messages = sampleMessages(300, durable);
    const first = spawnEmitter(env);
    try {
      await first.ready;
      // the stream holds earlier tests' messages: let this new durable take them all first
      await until(async () => (await unacked(durable)) === 0, 20_000, 'earlier messages acknowledged');
      fill(join(disk.path, 'filler'));
      await publishAll(nats.url, messages);
      await until(() => first.output().includes('spool write failed'), 10_000, 'a spool write to fail');
      await stop(first);
      expect(await unacked(durable)).toBe(messages.length);
      rmSync(join(disk.path, 'filler'));
      const second = spawnEmitter(env);
      try {
        await sink.waitFor(allDelivered(messages), 30_000);
      } finally {
        expect(await second.stop()).toBe(0);
      }
    } finally {
      first.kill('SIGKILL');
      sink.clear();
      await disk.release();
    }
  }

  it('SIGTERM while spool writes fail (disk full): exits 1 within the shutdown timeout, unwritten messages stay in JetStream', async (ctx) => {
    await fullDiskStop(ctx, 'enospc-term', '2', async (first) => {
      const stopAt = Date.now();
      first.kill('SIGTERM');
      expect(await first.exited).toBe(1);
      expect(Date.now() - stopAt).toBeLessThan(8000);
      expect(first.output()).toContain('could not be written to the spool before the shutdown timeout');
    });
  });

  it('a second SIGTERM while spool writes fail (disk full) stops at once, not after the shutdown timeout; exit 1, messages stay in JetStream', async (ctx) => {
    await fullDiskStop(ctx, 'enospc-term2', '60', async (first) => {
      first.kill('SIGTERM');
      await until(() => first.output().includes('"msg":"stopping"'), 5000, 'the first SIGTERM to be taken');
      const hurriedAt = Date.now();
      first.kill('SIGTERM');
      const how = await Promise.race([
        first.exited,
        new Promise((r) => setTimeout(() => r('still running'), 15_000)),
      ]);
      expect(how).toBe(1);
      expect(Date.now() - hurriedAt).toBeLessThan(8000);
    });
  });
});
