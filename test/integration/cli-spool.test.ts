import { existsSync } from 'node:fs';
import { Level } from 'level';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { Emitter } from '../../src/emitter.js';
import { createLogger } from '../../src/util/logger.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { testEnv } from '../support/env.js';
import { runCli } from '../../harness/cli-process.js';
import { tempDir } from '../../harness/workload.js';

/** `batch-emitter spool ...` as a real child process against real LevelDB spools. */

/** The CLI with only TRANSMITTER_SPOOL_DIR set (no destination URL: the commands must not need one). */
const cli = (spoolDir: string, ...args: string[]) => runCli({ TRANSMITTER_SPOOL_DIR: spoolDir }, args);

let sink: Sink;

beforeAll(async () => {
  sink = await startSink();
  await sink.down();
});
afterAll(async () => {
  await sink?.close();
});

async function startEmitter(spoolDir: string): Promise<Emitter> {
  const config = loadConfig(
    testEnv({ sinkUrl: sink.url, spoolDir, extra: { TRANSMITTER_SHUTDOWN_TIMEOUT_S: '0.3' } }),
  );
  const emitter = new Emitter(config, { logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent') });
  await emitter.start();
  return emitter;
}

/** Three sealed, durable batches of `sizes` items each, with the sink refusing connections. */
async function spoolBatches(emitter: Emitter, sizes: number[]): Promise<void> {
  let n = 0;
  for (const size of sizes) {
    const adds = Array.from({ length: size }, () => emitter.add('approved.finding', { id: `e${n++}` }));
    await emitter.flush();
    await Promise.all(adds);
  }
}

interface Row {
  id: string;
  items: number;
  storedBytes: number;
  attempts: number;
  parked: boolean;
}

describe('batch-emitter spool', () => {
  it('lists and counts spooled batches; verify finds a garbage record, names it, and changes nothing', async () => {
    const spool = await tempDir('cli-spool');
    try {
      const emitter = await startEmitter(spool.path);
      try {
        await spoolBatches(emitter, [2, 3, 4]);
      } finally {
        await emitter.close();
      }

      const listed = await cli(spool.path, 'spool', 'list', '--json');
      expect(listed).toMatchObject({ code: 0, stderr: '' });
      const rows = JSON.parse(listed.stdout) as Row[];
      expect(rows.map((r) => r.items)).toEqual([2, 3, 4]);
      for (const r of rows) {
        expect(r).toMatchObject({ parked: false, createdAt: expect.any(String) });
        expect(r.storedBytes).toBeGreaterThan(0);
        expect(r.attempts).toBeGreaterThanOrEqual(0);
      }
      const [bad, ...good] = rows as [Row, ...Row[]];

      const stats = await cli(spool.path, 'spool', 'stats');
      expect(stats.code).toBe(0);
      expect(stats.stdout).toContain('batches: 3\n');
      expect(stats.stdout).toContain(`bytes: ${rows.reduce((n, r) => n + r.storedBytes, 0)}\n`);
      expect(stats.stdout).toContain('deadLetters: 0\n');

      // garbage under the state key of one batch, through the Level API directly
      const db = new Level<string, string>(spool.path, { valueEncoding: 'utf8' });
      await db.sublevel<string, string>('s', { valueEncoding: 'utf8' }).put(bad.id, 'garbage{');
      await db.close();

      for (let round = 0; round < 2; round++) {
        const verified = await cli(spool.path, 'spool', 'verify');
        expect(verified.code).toBe(3);
        expect(verified.stdout).toContain(`${bad.id}: state record does not decode`);
        for (const r of good) expect(verified.stdout).not.toContain(r.id);
      }

      // untouched: the garbage is still there, nothing quarantined, the other records intact
      const check = new Level<string, string>(spool.path, { valueEncoding: 'utf8' });
      expect(await check.sublevel<string, string>('s', { valueEncoding: 'utf8' }).get(bad.id)).toBe(
        'garbage{',
      );
      expect(await check.sublevel<string, string>('q', { valueEncoding: 'utf8' }).keys().all()).toEqual([]);
      expect(await check.sublevel<string, string>('s', { valueEncoding: 'utf8' }).keys().all()).toEqual(
        rows.map((r) => r.id),
      );
      await check.close();
    } finally {
      await spool.remove();
    }
  });

  it('verify: a clean spool exits 0; a missing one is not created; a locked one is refused in one line', async () => {
    const spool = await tempDir('cli-spool-lock');
    try {
      const emitter = await startEmitter(spool.path);
      try {
        await spoolBatches(emitter, [1]);
        const locked = await cli(spool.path, 'spool', 'list');
        expect(locked).toEqual({
          code: 1,
          stdout: '',
          stderr: `batch-emitter: spool ${spool.path} is in use by a running emitter; stop it first\n`,
        });
      } finally {
        await emitter.close();
      }
      const clean = await cli(spool.path, 'spool', 'verify');
      expect(clean.code).toBe(0);
      expect(clean.stdout).toContain('1 batch record(s), all decode');

      const absent = `${spool.path}/absent`;
      const missing = await cli(absent, 'spool', 'verify');
      expect(missing).toEqual({ code: 1, stdout: '', stderr: `batch-emitter: no spool at ${absent}\n` });
      expect(existsSync(absent)).toBe(false);
    } finally {
      await spool.remove();
    }
  });

  it('quarantine: lists, shows and (only with --yes) purges what the emitter set aside; verify is clean after', async () => {
    const spool = await tempDir('cli-spool-quarantine');
    try {
      const first = await startEmitter(spool.path);
      try {
        await spoolBatches(first, [2, 3]);
      } finally {
        await first.close();
      }
      const [bad, good] = JSON.parse((await cli(spool.path, 'spool', 'list', '--json')).stdout) as Row[];
      const db = new Level<string, string>(spool.path, { valueEncoding: 'utf8' });
      await db.sublevel<string, string>('s', { valueEncoding: 'utf8' }).put(bad!.id, 'garbage{');
      await db.close();
      // the emitter sets the unreadable record aside when it opens the spool
      await (await startEmitter(spool.path)).close();

      const listed = await cli(spool.path, 'spool', 'quarantine', 'list', '--json');
      expect(listed.code).toBe(0);
      expect(JSON.parse(listed.stdout)).toEqual([
        { id: bad!.id, reason: 'state record does not decode', hasBody: true },
      ]);
      const shown = await cli(spool.path, 'spool', 'quarantine', 'show', bad!.id);
      expect(shown.code).toBe(0);
      expect(JSON.parse(shown.stdout)).toMatchObject({
        id: bad!.id,
        state: 'garbage{',
        bodyBase64: expect.any(String),
      });
      const verifyBefore = await cli(spool.path, 'spool', 'verify');
      expect(verifyBefore.code).toBe(3);
      expect(verifyBefore.stdout).toContain(`${bad!.id}: quarantined earlier: state record does not decode`);
      expect(verifyBefore.stdout).toContain('batch-emitter spool quarantine show <id>');

      const dry = await cli(spool.path, 'spool', 'quarantine', 'purge', '--all');
      expect(dry.code).toBe(0);
      expect(dry.stdout).toContain(`would delete ${bad!.id}`);
      expect(
        JSON.parse((await cli(spool.path, 'spool', 'quarantine', 'list', '--json')).stdout),
      ).toHaveLength(1);

      const usage = await cli(spool.path, 'spool', 'quarantine', 'purge', bad!.id, '--all', '--yes');
      expect(usage).toMatchObject({ code: 1, stdout: '' });
      expect(usage.stderr).toContain('give one batch id or --all');
      const purged = await cli(spool.path, 'spool', 'quarantine', 'purge', bad!.id, '--yes');
      expect(purged).toMatchObject({ code: 0, stdout: `deleted ${bad!.id}\n` });

      const verifyAfter = await cli(spool.path, 'spool', 'verify');
      expect(verifyAfter.code).toBe(0);
      expect(verifyAfter.stdout).toContain('1 batch record(s), all decode');
      const rows = JSON.parse((await cli(spool.path, 'spool', 'list', '--json')).stdout) as Row[];
      expect(rows.map((r) => r.id)).toEqual([good!.id]);
    } finally {
      await spool.remove();
    }
  });
});
