import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { Emitter } from '../../src/emitter.js';
import { createLogger } from '../../src/util/logger.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { runCli } from '../../harness/cli-process.js';
import { deliveredKeys, tempDir } from '../../harness/workload.js';
import { testEnv } from '../support/env.js';

/**
 * Spool files removed by hand (or lost by the disk): the emitter never starts over a damaged spool
 * (LevelDB would take a directory without CURRENT for a new database and delete the old data
 * files), and `batch-emitter spool repair --yes` brings back everything the remaining files hold.
 */

const cli = (spoolDir: string, ...args: string[]) => runCli({ TRANSMITTER_SPOOL_DIR: spoolDir }, args);

let sink: Sink;
beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink?.close();
});

function emitterOn(spoolDir: string): Emitter {
  const config = loadConfig(
    testEnv({ sinkUrl: sink.url, spoolDir, extra: { TRANSMITTER_SHUTDOWN_TIMEOUT_S: '0.3' } }),
  );
  return new Emitter(config, { logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent') });
}

/** Durable batches of `sizes` events each (ids e<first>, e<first+1>...), the sink down. */
async function spoolBatches(emitter: Emitter, first: number, sizes: number[]): Promise<void> {
  let n = first;
  for (const size of sizes) {
    const adds = Array.from({ length: size }, () => emitter.add('approved.finding', { id: `e${n++}` }));
    await emitter.flush();
    await Promise.all(adds);
  }
}

const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `v:e${from + i}`);
const dataFiles = async (dir: string) => (await readdir(dir)).filter((f) => /^\d+\.(ldb|log)$/.test(f));

/** Start an emitter on the repaired spool with the sink up; resolves with the event keys it delivered. */
async function deliverAll(spoolDir: string, expected: number): Promise<string[]> {
  sink.clear();
  await sink.up();
  const emitter = emitterOn(spoolDir);
  await emitter.start();
  try {
    await sink.waitFor((rs) => deliveredKeys(rs).length >= expected, 15_000);
    await emitter.wait();
  } finally {
    await emitter.close();
  }
  return deliveredKeys(sink.requests).sort();
}

describe('a damaged spool', () => {
  it('lost its CURRENT file: start refused with the repair hint (nothing deleted); repair --yes; all delivered', async () => {
    const spool = await tempDir('repair-current');
    try {
      await sink.down();
      const first = emitterOn(spool.path);
      await first.start();
      await spoolBatches(first, 0, [2, 3, 4]);
      await first.close();
      const files = await dataFiles(spool.path);
      await rm(join(spool.path, 'CURRENT'));

      const refused = emitterOn(spool.path);
      await expect(refused.start()).rejects.toMatchObject({
        code: 'SPOOL_DAMAGED',
        message: expect.stringContaining('batch-emitter spool repair'),
      });
      await refused.close();
      expect(await dataFiles(spool.path)).toEqual(files);

      const verify = await cli(spool.path, 'spool', 'verify');
      expect(verify.code).toBe(1);
      expect(verify.stderr).toContain('CURRENT file is missing');
      const dry = await cli(spool.path, 'spool', 'repair');
      expect(dry.code).toBe(1);
      expect(dry.stdout).toContain('dry run: nothing changed');
      expect(await dataFiles(spool.path)).toEqual(files);

      const repaired = await cli(spool.path, 'spool', 'repair', '--yes');
      expect(repaired).toMatchObject({ code: 0, stderr: '' });
      expect(repaired.stdout).toContain('it holds 3 batch(es)');
      expect(await cli(spool.path, 'spool', 'repair')).toMatchObject({ code: 0 });

      expect(await deliverAll(spool.path, 9)).toEqual(ids(0, 9).sort());
    } finally {
      await spool.remove();
    }
  });

  it('a table file deleted under the running emitter: the next start is refused; repair keeps what the other files hold', async () => {
    const spool = await tempDir('repair-table');
    try {
      await sink.down();
      const first = emitterOn(spool.path);
      await first.start();
      await spoolBatches(first, 0, [2, 3]);
      await first.close();

      // opening again moves the first two batches from LevelDB's log into a table file
      const running = emitterOn(spool.path);
      await running.start();
      const [table, ...others] = (await dataFiles(spool.path)).filter((f) => f.endsWith('.ldb'));
      expect(table).toBeDefined();
      expect(others).toEqual([]);
      await rm(join(spool.path, table!));
      await spoolBatches(running, 5, [4]);
      await running.close();

      const refused = emitterOn(spool.path);
      await expect(refused.start()).rejects.toMatchObject({ code: 'SPOOL_DAMAGED' });
      await refused.close();

      const repaired = await cli(spool.path, 'spool', 'repair', '--yes');
      expect(repaired).toMatchObject({ code: 0, stderr: '' });
      // the first two batches' bodies were only in the deleted table; their states, rewritten at
      // each failed attempt, are in the log: set aside at the next start, never sent half
      expect(repaired.stdout).toContain('it holds 3 batch(es)');
      expect(repaired.stdout).toContain('2 batch record(s) do not decode');

      expect(await deliverAll(spool.path, 4)).toEqual(ids(5, 9).sort());
      const stats = await cli(spool.path, 'spool', 'stats');
      expect(stats.stdout).toContain('batches: 0\n');
      expect(stats.stdout).toContain('quarantined: 2\n');
    } finally {
      await spool.remove();
    }
  });
});
