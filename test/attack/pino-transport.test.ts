import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tryMount, unmount } from '../../scripts/chaos/enospc.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { tempDir } from '../../harness/workload.js';
import { createEmitter } from '../../src/index.js';
import { Spool } from '../../src/spool/spool.js';
import { embedOptions, spawnTs } from '../fixtures/embed-support.js';

/**
 * Attacks on the pino transport that waits while intake is paused for seals: a real host process
 * (test/attack/pino-host-child.ts) logs a burst through batch-emitter/pino in pino's worker thread,
 * onto a real LevelDB spool, towards a real loopback sink that is down.
 */

let sink: Sink;
beforeAll(async () => {
  sink = await startSink();
  await sink.down();
});
afterAll(async () => {
  await sink?.close();
});

const sleep = (ms: number) => new Promise<'slept'>((r) => setTimeout(() => r('slept'), ms));

/** The items in the spool's batches (what a next start would deliver). */
async function spooledItems(dir: string): Promise<number> {
  const spool = await Spool.openExisting(dir);
  try {
    return (await spool.batches.list()).reduce((sum, b) => sum + b.itemCount, 0);
  } finally {
    await spool.close();
  }
}

/** The lines the transport said it did not accept, from its totals at close. */
function reportedLost(output: string): number {
  let sum = 0;
  for (const m of output.matchAll(/batch-emitter\/pino: (\d+) log lines not accepted: /g))
    sum += Number(m[1]);
  return sum;
}

function host(
  spoolDir: string,
  lines: number,
  extra: Record<string, unknown>,
  env: Record<string, string> = {},
) {
  const options = {
    ...embedOptions(`${sink.url}/logs`, spoolDir, { batchSize: 1000 }),
    closeTimeoutS: 1,
    ...extra,
  };
  return spawnTs('test/attack/pino-host-child.ts', {
    ATTACK_OPTIONS: JSON.stringify(options),
    ATTACK_LINES: String(lines),
    ATTACK_MODE: 'exit',
    ...env,
  });
}

describe('attack: the pino transport at the host exit', () => {
  // Regression (passes): process.exit(0) straight after a burst, endpoint down: pino's exit hook
  // ends the worker stream and the transport seals and spools every line before the host dies.
  it('process.exit(0) right after a 20,000-line burst with the endpoint down: every line is in the spool', async () => {
    const spool = await tempDir('attack-pino-exit');
    try {
      const child = host(spool.path, 20_000, {});
      expect(await child.exited, child.output()).toBe(0);
      expect(await spooledItems(spool.path)).toBe(20_000);
    } finally {
      await spool.remove();
    }
  }, 120_000);

  // The README's advice for SIGTERM: the worker sees no signal, and SIGTERM's default action ends
  // the host without pino's exit hook; a host that turns SIGTERM into process.exit(0) gets the
  // transport's flush, open batch included (2,500 lines in batches of 1,000).
  it('SIGTERM to a host that handles it with process.exit(0): every line is in the spool', async () => {
    const spool = await tempDir('attack-pino-sigterm');
    try {
      // no seal by the interval before the signal: the open batch is only flushed by the exit hook
      const child = host(
        spool.path,
        2500,
        { batchIntervalS: 60 },
        { ATTACK_MODE: 'stay', ATTACK_SIGTERM: 'exit' },
      );
      await child.saw('logged');
      child.child.kill('SIGTERM');
      expect(await child.exited, child.output()).toBe(0);
      expect(await spooledItems(spool.path)).toBe(2500);
    } finally {
      await spool.remove();
    }
  }, 120_000);

  // close stays within closeTimeoutS (plus the last write) however long the emitter's own
  // shutdownTimeoutS: it has waited for deliveries already, so it hurries the emitter's close. With
  // an endpoint that takes requests and never answers, a close that waited the 30 s again outlived
  // pino's exit handler, which gave up on the worker after 10 s (the batches were in the spool by
  // then, but the host's exit took 10 s).
  it('an endpoint that never answers, shutdownTimeoutS 30: the host exits without pino giving up on the worker', async () => {
    const spool = await tempDir('attack-pino-hang');
    const hanging = await startSink();
    hanging.respondWith(() => 'hang');
    try {
      const options = {
        ...embedOptions(`${hanging.url}/logs`, spool.path, { batchSize: 1000, shutdownTimeoutS: 30 }),
        closeTimeoutS: 1,
      };
      const child = spawnTs('test/attack/pino-host-child.ts', {
        ATTACK_OPTIONS: JSON.stringify(options),
        ATTACK_LINES: '2500',
        ATTACK_MODE: 'exit',
      });
      await child.saw('logged');
      const exiting = Date.now();
      expect(await child.exited, child.output()).toBe(0);
      // pino's exit handler gives up on the worker after 10 s; the close itself takes about 2 s
      expect(Date.now() - exiting, child.output()).toBeLessThan(8000);
      expect(await spooledItems(spool.path)).toBe(2500);
    } finally {
      await hanging.close();
      await spool.remove();
    }
  }, 120_000);

  // Was a hole: with the spool full (spoolMaxBytes reached, endpoint down) the feed waited on
  // whenAccepting() for ever, so pino's exit hook gave up after 10 s (thread-stream "_flushSync
  // took too long"), the worker was killed, the host exited 0, and the lines not spooled (the open
  // batch included) were gone without a word. Now lines the full spool cannot take are refused,
  // counted and reported on stderr at close, and every line is either spooled or counted.
  it('the spool full at exit: the host is told how many lines were not spooled', async () => {
    const spool = await tempDir('attack-pino-full');
    const lines = 20_000;
    try {
      const started = Date.now();
      const child = host(spool.path, lines, { spoolMaxBytes: 1024 * 1024 }, { ATTACK_PAD: '300' });
      const code = await child.exited;
      const took = Date.now() - started;
      const spooled = await spooledItems(spool.path);
      const output = child.output();
      // bounded: pino's exit hook waits at most about 10 s per step
      expect(took).toBeLessThan(60_000);
      expect(spooled).toBeLessThan(lines);
      expect(
        output,
        `${lines - spooled} of ${lines} lines were not spooled, exit ${String(code)}; the transport said nothing`,
      ).toMatch(/log lines (were )?not accepted/);
      // nothing silent: every line is in the spool or in the count the transport printed
      expect(output).toContain(`log lines not accepted: spool full (${spool.path})`);
      expect(spooled + reportedLost(output), output).toBe(lines);
      // the worker kept reading: pino's exit handler did not give up on it
      expect(output).not.toMatch(/took too long/);
    } finally {
      await spool.remove();
    }
  }, 120_000);

  // Regression (passes): an embedded host whose adds wait on a full spool (spoolMaxBytes reached,
  // endpoint down) is not left hanging by close(): every waiting add settles, none resolves
  // without its item in the spool, and close() returns.
  it('embedded: adds waiting on a full spool settle when the host closes; close() returns', async () => {
    const spool = await tempDir('attack-pino-embedded-full');
    const emitter = createEmitter(
      embedOptions(`${sink.url}/logs`, spool.path, {
        batchSize: 200,
        spoolMaxBytes: 1024 * 1024,
        shutdownTimeoutS: 1,
      }),
    );
    try {
      await emitter.start();
      const settled: Array<'durable' | 'rejected'> = [];
      const adds: Promise<void>[] = [];
      let full = false;
      for (let n = 0; n < 200_000 && !full; n++) {
        const data = { n, noise: randomBytes(300).toString('base64') };
        adds.push(
          emitter.add('approved.finding', data).then(
            () => void settled.push('durable'),
            () => void settled.push('rejected'),
          ),
        );
        const paused = emitter.whenAccepting();
        // seals pending resume within moments; a full spool (endpoint down) never does
        if (paused) await Promise.race([paused, sleep(3000)]);
        full = emitter.stats.spool.bytes >= 1024 * 1024 && emitter.whenAccepting() !== undefined;
      }
      expect(emitter.whenAccepting(), 'the spool never filled').toBeDefined();
      const waiting = Array.from({ length: 50 }, (_, i) =>
        emitter.add('approved.finding', { n: `w${i}` }).then(
          () => 'durable' as const,
          () => 'rejected' as const,
        ),
      );
      const closing = Date.now();
      await emitter.close();
      expect(Date.now() - closing).toBeLessThan(30_000);
      const outcomes = await Promise.race([
        Promise.all(waiting),
        new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000)),
      ]);
      expect(outcomes).not.toBe('hung');
      await Promise.race([Promise.all(adds), sleep(10_000)]);
      expect(settled.length).toBe(adds.length);
      // whatever resolved is in the spool (close may take waiting adds into its last batch)
      const durable = [...settled, ...(outcomes as string[])].filter((s) => s === 'durable').length;
      expect(await spooledItems(spool.path)).toBeGreaterThanOrEqual(durable);
    } finally {
      await emitter.close();
      await spool.remove();
    }
  }, 120_000);

  // Was a hole (same cause as the full spool): the spool's disk full (a real 8 MiB tmpfs: ENOSPC)
  // during a burst: the spool's writes fail, intake pauses (spool_write_failing), the feed waited
  // for ever, pino's exit hook gave up after 10 s; the host exited 0 without a word of the lines
  // it did not spool. Now they are refused or rejected, and counted on stderr at close.
  it('the spool disk full (ENOSPC) during a burst: the host is told how many lines were not spooled', async (ctx) => {
    const dir = await tempDir('attack-pino-enospc');
    const why = tryMount(dir.path, '8m');
    if (why !== undefined) {
      await dir.remove();
      return ctx.skip(`mount -t tmpfs failed (${why})`);
    }
    try {
      const child = host(`${dir.path}/spool`, 40_000, {}, { ATTACK_PAD: '300' });
      const code = await child.exited;
      const output = child.output();
      expect(output).toMatch(/No space left on device/);
      expect(output, `exit ${String(code)}; the transport said nothing of the lines it lost`).toMatch(
        /log lines (were )?not accepted/,
      );
    } finally {
      unmount(dir.path);
      await dir.remove();
    }
  }, 120_000);

  // The emitter refusing to start in pino's worker was never told: a host that logs and exits got
  // exit 0 after pino's 10 s wait, every line gone. Now the transport counts the lines it cannot
  // take and says why on stderr (written synchronously: the main thread is in pino's exit hook).
  it('a spool bound to another destination: a host that logs and exits is told why its lines went nowhere', async () => {
    const spool = await tempDir('attack-pino-bound');
    try {
      const first = host(spool.path, 100, { destinationUrl: `${sink.url}/a` });
      expect(await first.exited, first.output()).toBe(0);
      expect(await spooledItems(spool.path)).toBe(100);
      const second = host(spool.path, 100, { destinationUrl: `${sink.url}/b` });
      const code = await second.exited;
      expect(second.output(), `exit ${String(code)}`).toMatch(
        /is bound to .*\/a, not to the configured destination/,
      );
      expect(reportedLost(second.output())).toBe(100);
      expect(await spooledItems(spool.path)).toBe(100);
    } finally {
      await spool.remove();
    }
  }, 120_000);
});
