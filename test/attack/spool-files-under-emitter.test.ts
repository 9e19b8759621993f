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

type Message = ReturnType<typeof sampleMessages>[number];
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

type Emitter = ReturnType<typeof spawnEmitter>;

/** One scenario's spool, its emitter settings, and the emitters it starts (killed at its end). */
interface Scenario {
  spoolDir: string;
  durable: string;
  env: Record<string, string>;
  spawn(): Emitter;
}

/** Run `body` on a fresh spool directory; whatever happens, kill its emitters, put the sink back, clean up. */
async function inScenario(durable: string, body: (s: Scenario) => Promise<void>): Promise<void> {
  const dir = await tempDir(durable);
  const spoolDir = join(dir.path, 'spool');
  const env = envFor(spoolDir, durable);
  const started: Emitter[] = [];
  const spawn = () => {
    const emitter = spawnEmitter(env);
    started.push(emitter);
    return emitter;
  };
  try {
    await body({ spoolDir, durable, env, spawn });
  } finally {
    for (const emitter of started) emitter.kill('SIGKILL');
    await sink.up();
    sink.clear();
    await dir.remove();
  }
}

/** With the sink down, once `emitter` is ready: `messages` published, spooled and acked. */
async function spoolWithSinkDown(emitter: Emitter, durable: string, messages: Message[]): Promise<void> {
  await sink.down();
  await emitter.ready;
  await until(async () => (await unacked(durable)) === 0, 20_000, 'earlier messages acknowledged');
  await publishAll(nats.url, messages);
  await until(async () => (await unacked(durable)) === 0, 20_000, 'every message spooled and acked');
}

/** The sink up, one more emitter started: every one of `messages` arrives, and it stops cleanly. */
async function deliveredAfterRestart(s: Scenario, messages: Message[]): Promise<void> {
  await sink.up();
  const emitter = s.spawn();
  try {
    await sink.waitFor(allDelivered(messages), 30_000);
  } finally {
    expect(await emitter.stop()).toBe(0);
  }
}

/** An emitter started on a repaired spool settles (delivers or quarantines) the `held` batches. */
async function settlesAfterRepair(s: Scenario, held: number): Promise<void> {
  const emitter = s.spawn();
  const settled = () => (emitter.output().match(/"msg":"batch (delivered|quarantined)/g) ?? []).length;
  try {
    await until(() => settled() >= held, 30_000, 'every batch delivered or quarantined');
  } finally {
    expect(await emitter.stop()).toBe(0);
  }
}

/**
 * With the sink down: `messages` spooled and acked, the emitter stopped, started and stopped once
 * more (which moves the batches from LevelDB's log into a table file), then the table's first data
 * block and its trailer (blocks are about 4 KiB) overwritten: its block type no longer parses.
 */
async function spoolThenDamageTable(s: Scenario, messages: Message[]): Promise<void> {
  const first = s.spawn();
  await spoolWithSinkDown(first, s.durable, messages);
  expect(await first.stop()).toBe(0);
  expect(await s.spawn().stop()).toBe(0);
  const table = (await readdir(s.spoolDir)).find((f) => f.endsWith('.ldb'))!;
  const bytes = await readFile(join(s.spoolDir, table));
  bytes.fill(0xff, 0, Math.min(6000, bytes.length >> 1));
  await writeFile(join(s.spoolDir, table), bytes);
}

describe('spool files changed under a running emitter', () => {
  it('CURRENT removed under a running emitter: `spool repair --yes` refuses (the emitter holds the spool) and changes nothing', async () => {
    await inScenario('attack-repair-running', async (s) => {
      const messages = sampleMessages(200, s.durable);
      const first = s.spawn();
      await spoolWithSinkDown(first, s.durable, messages);

      await rm(join(s.spoolDir, 'CURRENT'));
      const before = await listing(s.spoolDir);
      const repair = await cli(s.spoolDir, 'spool', 'repair', '--yes');
      expect(repair.code).not.toBe(0);
      expect(repair.stderr).toContain('in use by a running emitter');
      expect(repair.stdout).toBe('');
      expect(await listing(s.spoolDir)).toEqual(before);

      await first.stop();
      const fixed = await cli(s.spoolDir, 'spool', 'repair', '--yes');
      expect(fixed).toMatchObject({ code: 0 });
      await deliveredAfterRestart(s, messages);
    });
  });

  it('MANIFEST removed under a running emitter: /ready 503, the restart is refused with the repair hint, repair --yes; every message delivered', async () => {
    await inScenario('attack-manifest', async (s) => {
      const [before, after] = [sampleMessages(200, `${s.durable}-a`), sampleMessages(200, `${s.durable}-b`)];
      const first = s.spawn();
      await spoolWithSinkDown(first, s.durable, before);

      for (const name of await readdir(s.spoolDir)) {
        if (name.startsWith('MANIFEST-')) await rm(join(s.spoolDir, name));
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

      const refused = await runCli(s.env, ['run']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('batch-emitter spool repair');
      const repaired = await cli(s.spoolDir, 'spool', 'repair', '--yes');
      expect(repaired).toMatchObject({ code: 0, stderr: '' });
      await deliveredAfterRestart(s, [...before, ...after]);
    });
  });

  it('LOCK deleted under a running emitter ("stale lock" clean-up): it takes the lock again, a second emitter on the spool is refused; every message delivered', async () => {
    await inScenario('attack-lock', async (s) => {
      const messages = sampleMessages(600, s.durable);
      const [before, during, after] = [messages.slice(0, 200), messages.slice(200, 400), messages.slice(400)];
      const first = s.spawn();
      await spoolWithSinkDown(first, s.durable, before);

      await rm(join(s.spoolDir, 'LOCK'));
      await publishAll(nats.url, during);
      await until(
        async () => (await unacked(s.durable)) === 0,
        20_000,
        'the messages written after it acked',
      );
      const second = s.spawn();
      const how = await Promise.race([second.exited, second.ready.then(() => 'running')]);
      second.kill('SIGKILL');
      expect(how).toBe(1);
      expect(second.output()).toContain('locked by another process');
      expect(first.output()).toContain('LOCK was deleted or replaced under the running emitter');

      await publishAll(nats.url, after);
      await until(async () => (await unacked(s.durable)) === 0, 20_000, 'every message spooled and acked');
      expect(await first.stop()).toBe(0);
      await deliveredAfterRestart(s, messages);
    });
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
      await inScenario(`attack-log-${how.split(' ')[0]!}`, async (s) => {
        const messages = sampleMessages(200, s.durable);
        const first = s.spawn();
        await spoolWithSinkDown(first, s.durable, messages);

        for (const name of await readdir(s.spoolDir)) {
          if (name.endsWith('.log')) await fault(join(s.spoolDir, name));
        }
        first.kill('SIGTERM');
        await first.exited;
        await deliveredAfterRestart(s, messages);
      });
    });
  }

  it('a table block damaged on disk, the emitter started on it unrepaired: it refuses to run (exit 1, the repair named; no reopen loop, nothing sent twice); after repair every batch is delivered or quarantined', async () => {
    await inScenario('attack-bitrot-run', async (s) => {
      await spoolThenDamageTable(s, sampleMessages(600, s.durable));

      sink.clear();
      await sink.up();
      const damaged = s.spawn();
      expect(await damaged.exited).toBe(1);
      expect(damaged.output()).toContain('is damaged on disk');
      expect(damaged.output()).toContain('batch-emitter spool repair --yes');
      expect(damaged.output()).not.toContain('"msg":"spool reopened and re-read"');
      const keys = sink.requests.map((r) => r.headers['idempotency-key']);
      expect(new Set(keys).size).toBe(keys.length);

      const repaired = await cli(s.spoolDir, 'spool', 'repair', '--yes');
      expect(repaired).toMatchObject({ code: 0, stderr: '' });
      const held = Number(/it holds (\d+) batch/.exec(repaired.stdout)?.[1]);
      expect(held).toBeGreaterThan(0);
      await settlesAfterRepair(s, held);
    });
  });

  it('a table block damaged on disk (bit rot): `spool repair` finds it (it said "opens: nothing to repair"), --yes rebuilds it; the emitter then delivers or quarantines every batch (no reopen loop)', async () => {
    await inScenario('attack-bitrot', async (s) => {
      await spoolThenDamageTable(s, sampleMessages(600, s.durable));

      const verify = await cli(s.spoolDir, 'spool', 'verify');
      expect(verify.code).not.toBe(0);
      expect(verify.stdout).toContain('body unreadable on disk');
      const dry = await cli(s.spoolDir, 'spool', 'repair');
      expect(dry.code).toBe(1);
      expect(dry.stdout).toContain('is damaged');
      const repaired = await cli(s.spoolDir, 'spool', 'repair', '--yes');
      expect(repaired).toMatchObject({ code: 0, stderr: '' });

      const held = Number(/it holds (\d+) batch/.exec(repaired.stdout)?.[1]);
      expect(held).toBeGreaterThan(0);
      await sink.up();
      await settlesAfterRepair(s, held);
      const stats = await cli(s.spoolDir, 'spool', 'stats');
      expect(stats.stdout).toContain('batches: 0\n');
      expect(sink.requests.length).toBeGreaterThan(0);
    });
  });
});
