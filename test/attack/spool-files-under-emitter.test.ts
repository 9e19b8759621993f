import { readFile, readdir, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getReady, httpUrl, unacked as unackedOn, until } from '../../harness/emitter-probe.js';
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
const unacked = (durable: string) => unackedOn(nc, durable);

afterAll(async () => {
  await nc?.close();
  await Promise.all([nats?.stop(), sink?.close()]);
});

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

/**
 * With the sink down: `messages` spooled and acked, the emitter stopped, started and stopped once
 * more (which moves the batches from LevelDB's log into a table file), then the table's first data
 * block and its trailer (blocks are about 4 KiB) overwritten: its block type no longer parses.
 */
async function spoolThenDamageTable(
  env: Record<string, string>,
  durable: string,
  spoolDir: string,
  messages: ReturnType<typeof sampleMessages>,
): Promise<void> {
  await sink.down();
  const first = spawnEmitter(env);
  await first.ready;
  await until(async () => (await unacked(durable)) === 0, 20_000, 'earlier messages acknowledged');
  await publishAll(nats.url, messages);
  await until(async () => (await unacked(durable)) === 0, 20_000, 'every message spooled and acked');
  expect(await first.stop()).toBe(0);
  const again = spawnEmitter(env);
  expect(await again.stop()).toBe(0);
  const table = (await readdir(spoolDir)).find((f) => f.endsWith('.ldb'))!;
  const bytes = await readFile(join(spoolDir, table));
  bytes.fill(0xff, 0, Math.min(6000, bytes.length >> 1));
  await writeFile(join(spoolDir, table), bytes);
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

  it('MANIFEST removed under a running emitter: /ready 503, the restart is refused with the repair hint, repair --yes; every message delivered', async () => {
    const dir = await tempDir('attack-manifest');
    const spoolDir = join(dir.path, 'spool');
    const durable = 'attack-manifest';
    const env = envFor(spoolDir, durable);
    const [before, after] = [sampleMessages(200, `${durable}-a`), sampleMessages(200, `${durable}-b`)];
    const first = spawnEmitter(env);
    try {
      await sink.down();
      await first.ready;
      await until(async () => (await unacked(durable)) === 0, 20_000, 'earlier messages acknowledged');
      await publishAll(nats.url, before);
      await until(async () => (await unacked(durable)) === 0, 20_000, 'every message spooled and acked');

      for (const name of await readdir(spoolDir)) {
        if (name.startsWith('MANIFEST-')) await rm(join(spoolDir, name));
      }
      await publishAll(nats.url, after);
      const base = httpUrl(first.output())!;
      await until(
        async () => (await getReady(base)).failing.includes('spool_in_place'),
        10_000,
        '/ready to name spool_in_place',
      );
      const ready = await getReady(base);
      expect(ready.status).toBe(503);
      expect(ready.reasons.join(' ')).toMatch(/MANIFEST-\d+ .*is missing/);
      expect(first.output()).toContain('its data files are still there: stop the emitter and run');
      await first.stop();

      const refused = await runCli(env, ['run']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('batch-emitter spool repair');
      const repaired = await cli(spoolDir, 'spool', 'repair', '--yes');
      expect(repaired).toMatchObject({ code: 0, stderr: '' });

      await sink.up();
      const second = spawnEmitter(env);
      try {
        await sink.waitFor(allDelivered([...before, ...after]), 30_000);
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

  it('LOCK deleted under a running emitter ("stale lock" clean-up): it takes the lock again, a second emitter on the spool is refused; every message delivered', async () => {
    const dir = await tempDir('attack-lock');
    const spoolDir = join(dir.path, 'spool');
    const durable = 'attack-lock';
    const env = envFor(spoolDir, durable);
    const messages = sampleMessages(600, durable);
    const [before, during, after] = [messages.slice(0, 200), messages.slice(200, 400), messages.slice(400)];
    const first = spawnEmitter(env);
    try {
      await sink.down();
      await first.ready;
      await until(async () => (await unacked(durable)) === 0, 20_000, 'earlier messages acknowledged');
      await publishAll(nats.url, before);
      await until(async () => (await unacked(durable)) === 0, 20_000, 'every message spooled and acked');

      await rm(join(spoolDir, 'LOCK'));
      await publishAll(nats.url, during);
      await until(async () => (await unacked(durable)) === 0, 20_000, 'the messages written after it acked');
      const second = spawnEmitter(env);
      const how = await Promise.race([second.exited, second.ready.then(() => 'running')]);
      second.kill('SIGKILL');
      expect(how).toBe(1);
      expect(second.output()).toContain('locked by another process');
      expect(first.output()).toContain('LOCK was deleted or replaced under the running emitter');

      await publishAll(nats.url, after);
      await until(async () => (await unacked(durable)) === 0, 20_000, 'every message spooled and acked');
      expect(await first.stop()).toBe(0);
      await sink.up();
      const third = spawnEmitter(env);
      try {
        await sink.waitFor(allDelivered(messages), 30_000);
      } finally {
        expect(await third.stop()).toBe(0);
      }
    } finally {
      first.kill('SIGKILL');
      await sink.up();
      sink.clear();
      await dir.remove();
    }
  });

  const logFaults = {
    'truncated (copytruncate)': (path: string) => truncate(path, 0),
    deleted: (path: string) => rm(path),
    // logrotate's default "create" mode: LevelDB goes on writing into the renamed file
    'replaced (renamed away, a new file created under its name)': async (path: string) => {
      await rename(path, `${path}.1`);
      await writeFile(path, '');
    },
  };
  for (const [how, fault] of Object.entries(logFaults)) {
    it(`the write-ahead log ${how} right before SIGTERM: every acknowledged message delivered after the restart`, async () => {
      const dir = await tempDir('attack-log');
      const spoolDir = join(dir.path, 'spool');
      const durable = `attack-log-${how.split(' ')[0]!}`;
      const env = envFor(spoolDir, durable);
      const messages = sampleMessages(200, durable);
      const first = spawnEmitter(env);
      try {
        await sink.down();
        await first.ready;
        await until(async () => (await unacked(durable)) === 0, 20_000, 'earlier messages acknowledged');
        await publishAll(nats.url, messages);
        await until(async () => (await unacked(durable)) === 0, 20_000, 'every message spooled and acked');

        for (const name of await readdir(spoolDir)) {
          if (name.endsWith('.log')) await fault(join(spoolDir, name));
        }
        first.kill('SIGTERM');
        await first.exited;

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
  }

  it('a table block damaged on disk, the emitter started on it unrepaired: it refuses to run (exit 1, the repair named; no reopen loop, nothing sent twice); after repair every batch is delivered or quarantined', async () => {
    const dir = await tempDir('attack-bitrot-run');
    const spoolDir = join(dir.path, 'spool');
    const durable = 'attack-bitrot-run';
    const env = envFor(spoolDir, durable);
    const messages = sampleMessages(600, durable);
    try {
      await spoolThenDamageTable(env, durable, spoolDir, messages);

      sink.clear();
      await sink.up();
      const damaged = spawnEmitter(env);
      expect(await damaged.exited).toBe(1);
      expect(damaged.output()).toContain('is damaged on disk');
      expect(damaged.output()).toContain('batch-emitter spool repair --yes');
      expect(damaged.output()).not.toContain('"msg":"spool reopened and re-read"');
      const keys = sink.requests.map((r) => r.headers['idempotency-key']);
      expect(new Set(keys).size).toBe(keys.length);

      const repaired = await cli(spoolDir, 'spool', 'repair', '--yes');
      expect(repaired).toMatchObject({ code: 0, stderr: '' });
      const held = Number(/it holds (\d+) batch/.exec(repaired.stdout)?.[1]);
      expect(held).toBeGreaterThan(0);
      const after = spawnEmitter(env);
      const settled = () => (after.output().match(/"msg":"batch (delivered|quarantined)/g) ?? []).length;
      try {
        await until(() => settled() >= held, 30_000, 'every batch delivered or quarantined');
      } finally {
        expect(await after.stop()).toBe(0);
      }
    } finally {
      await sink.up();
      sink.clear();
      await dir.remove();
    }
  });

  it('a table block damaged on disk (bit rot): `spool repair` finds it (it said "opens: nothing to repair"), --yes rebuilds it; the emitter then delivers or quarantines every batch (no reopen loop)', async () => {
    const dir = await tempDir('attack-bitrot');
    const spoolDir = join(dir.path, 'spool');
    const durable = 'attack-bitrot';
    const env = envFor(spoolDir, durable);
    const messages = sampleMessages(600, durable);
    try {
      await spoolThenDamageTable(env, durable, spoolDir, messages);

      const verify = await cli(spoolDir, 'spool', 'verify');
      expect(verify.code).not.toBe(0);
      expect(verify.stdout).toContain('body unreadable on disk');
      const dry = await cli(spoolDir, 'spool', 'repair');
      expect(dry.code).toBe(1);
      expect(dry.stdout).toContain('is damaged');
      const repaired = await cli(spoolDir, 'spool', 'repair', '--yes');
      expect(repaired).toMatchObject({ code: 0, stderr: '' });

      const held = Number(/it holds (\d+) batch/.exec(repaired.stdout)?.[1]);
      expect(held).toBeGreaterThan(0);

      await sink.up();
      const second = spawnEmitter(env);
      const settled = () => (second.output().match(/"msg":"batch (delivered|quarantined)/g) ?? []).length;
      try {
        await until(() => settled() >= held, 30_000, 'every batch delivered or quarantined');
      } finally {
        expect(await second.stop()).toBe(0);
      }
      const stats = await cli(spoolDir, 'spool', 'stats');
      expect(stats.stdout).toContain('batches: 0\n');
      expect(sink.requests.length).toBeGreaterThan(0);
    } finally {
      await sink.up();
      sink.clear();
      await dir.remove();
    }
  });
});
