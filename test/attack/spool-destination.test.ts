import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { Emitter } from '../../src/emitter.js';
import { createEmitter, SpoolDestinationError } from '../../src/index.js';
import { destinationKey, Spool } from '../../src/spool/spool.js';
import { createLogger } from '../../src/util/logger.js';
import { runCli, spawnCli } from '../../harness/cli-process.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { tempDir } from '../../harness/workload.js';
import { testEnv } from '../support/env.js';

/**
 * Attack on the spool's destination binding (f-config): can a batch accepted for one destination
 * reach another one without `spool retarget --yes`, is a spool holding only dead letters judged
 * empty, does the retarget dry run tell the operator what it would move?
 * Real LevelDB spool, real loopback sinks, the real `batch-emitter` CLI process.
 */

let sink: Sink;
beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink?.close();
});

const quiet = () => createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');

/** Run an emitter aimed at `url` long enough to accept `count` events; the sink answers `status`. */
async function leave(spoolDir: string, url: string, count: number, status: number): Promise<void> {
  sink.respondWith(() => ({ status, body: 'no' }));
  const env = testEnv({ sinkUrl: url, spoolDir, extra: { TRANSMITTER_SHUTDOWN_TIMEOUT_S: '0.5' } });
  const emitter = new Emitter(loadConfig(env), { logger: quiet() });
  await emitter.start();
  try {
    const adds = Array.from({ length: count }, (_, i) => emitter.add('approved.finding', { id: `f${i}` }));
    await emitter.flush();
    await Promise.all(adds);
    if (status === 400) await emitter.wait();
  } finally {
    await emitter.close();
    sink.respondWith(undefined);
  }
}

async function startError(url: string, spoolDir: string): Promise<unknown> {
  const emitter = createEmitter(
    { destinationUrl: url, spoolDir, allowInsecureHttp: true },
    { logger: quiet() },
  );
  try {
    await emitter.start();
    await emitter.wait();
    return undefined;
  } catch (error) {
    return error;
  } finally {
    await emitter.close();
  }
}

describe('attack: the spool bound to its destination', () => {
  // HOLE: the query string is dropped from the binding (src/spool/destination.ts destinationKey),
  // yet it is part of where batches go: a tenant or stream chosen by query is another destination.
  it('a spool holding batches for ?tenant=alpha refuses a start aimed at ?tenant=beta', async () => {
    const spool = await tempDir('attack-dest-query');
    try {
      sink.clear();
      await leave(spool.path, `${sink.url}/ingest?tenant=alpha`, 3, 503);
      sink.clear();
      const error = await startError(`${sink.url}/ingest?tenant=beta`, spool.path);
      const beta = sink.requests.filter((r) => r.url.includes('tenant=beta'));
      expect(
        beta.length,
        'batches accepted for ?tenant=alpha were POSTed to ?tenant=beta without retarget',
      ).toBe(0);
      expect(error).toBeInstanceOf(SpoolDestinationError);
    } finally {
      sink.respondWith(undefined);
      await spool.remove();
    }
  });

  // Regression (passes): a spool holding only dead letters is not empty; its dead letters were
  // refused by the destination it is bound to and a replay would send them elsewhere.
  it('a spool holding only dead letters is not judged empty', async () => {
    const spool = await tempDir('attack-dest-dead');
    try {
      await leave(spool.path, `${sink.url}/a`, 2, 400);
      const direct = await Spool.openExisting(spool.path);
      const stats = await direct.stats();
      await direct.close();
      expect(stats).toMatchObject({ batches: 0 });
      expect(stats.deadLetters).toBeGreaterThan(0);
      const error = await startError(`${sink.url}/b`, spool.path);
      expect(error).toBeInstanceOf(SpoolDestinationError);
    } finally {
      await spool.remove();
    }
  });

  // HOLE (operator is misinformed): `spool retarget` opens the spool with Spool.openExisting, which
  // counts batches only, so its dry run and its confirmation say "0 dead letter(s)" for a spool full
  // of them (src/cli/spool.ts retarget: spool.status() instead of await spool.stats()).
  it('the retarget dry run counts the dead letters it would move', async () => {
    const spool = await tempDir('attack-dest-retarget-count');
    try {
      await leave(spool.path, `${sink.url}/a`, 2, 400);
      const direct = await Spool.openExisting(spool.path);
      const { deadLetters } = await direct.stats();
      await direct.close();
      expect(deadLetters).toBeGreaterThan(0);
      const env = testEnv({ sinkUrl: `${sink.url}/b`, spoolDir: spool.path });
      const dry = await runCli(env, ['spool', 'retarget']);
      expect(dry.code).toBe(1);
      expect(dry.stdout).toContain(`${deadLetters} dead letter(s)`);
    } finally {
      await spool.remove();
    }
  });

  // Regression (passes): spellings of one destination are one binding; credentials never recorded.
  it('one destination, spelt differently, is one binding; no credentials in it', () => {
    expect(destinationKey('https://Ingest.Example.COM:443/v1/batch')).toBe(
      destinationKey('https://ingest.example.com/v1/batch'),
    );
    expect(destinationKey('http://127.0.0.1:80/x')).toBe(destinationKey('http://127.0.0.1/x'));
    expect(destinationKey('https://user:pa55word@h.example/x')).toBe('https://h.example/x');
    expect(destinationKey('https://h.example')).toBe(destinationKey('https://h.example/'));
    expect(destinationKey('https://h.example/a')).not.toBe(destinationKey('https://h.example/b'));
    expect(destinationKey('https://h.example:8443/a')).not.toBe(destinationKey('https://h.example/a'));
  });

  // Regression (passes): SIGKILL to `spool retarget --yes` at moments spread over its run: the
  // binding is always the old or the new destination (one synced put), every batch is still
  // there, and a start aimed at the recorded destination delivers them.
  it('SIGKILL during retarget --yes: bound to the old or the new destination, no batch lost', async () => {
    const spool = await tempDir('attack-dest-kill-retarget');
    try {
      await leave(spool.path, `${sink.url}/a`, 4, 503);
      const count = async () => {
        const direct = await Spool.openExisting(spool.path);
        try {
          return { batches: direct.status().batches, recorded: await direct.destination.recorded() };
        } finally {
          await direct.close();
        }
      };
      const at = await count();
      expect(at.batches).toBeGreaterThan(0);
      const targets = [`${sink.url}/b`, `${sink.url}/a`];
      const started = Date.now();
      const full = await runCli(testEnv({ sinkUrl: targets[0]!, spoolDir: spool.path }), [
        'spool',
        'retarget',
        '--yes',
      ]);
      expect(full.code).toBe(0);
      const took = Date.now() - started;
      let previous = `${sink.url}/b`;
      for (let k = 1; k <= 5; k++) {
        const target = targets[k % 2]!;
        const cli = spawnCli(testEnv({ sinkUrl: target, spoolDir: spool.path }), [
          'spool',
          'retarget',
          '--yes',
        ]);
        await new Promise((r) => setTimeout(r, (took * k) / 6));
        cli.kill('SIGKILL');
        const code = await cli.exited;
        const now = await count();
        expect(now.batches, `kill ${k} (${String(code)})`).toBe(at.batches);
        expect([previous, target], `kill ${k} (${String(code)})`).toContain(now.recorded);
        previous = now.recorded!;
      }
      sink.clear();
      const emitter = createEmitter(
        { destinationUrl: previous, spoolDir: spool.path, allowInsecureHttp: true },
        { logger: quiet() },
      );
      try {
        await emitter.start();
        await emitter.wait();
      } finally {
        await emitter.close();
      }
      const delivered = sink.requests.reduce(
        (sum, r) => sum + ((r.body as { events?: unknown[] }).events?.length ?? 0),
        0,
      );
      expect(delivered).toBe(4);
    } finally {
      await spool.remove();
    }
  }, 120_000);
});
