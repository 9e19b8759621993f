import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { Emitter } from '../../src/emitter.js';
import { createEmitter, SpoolDestinationError } from '../../src/index.js';
import { Spool } from '../../src/spool/spool.js';
import { createLogger } from '../../src/util/logger.js';
import { runCli } from '../../harness/cli-process.js';
import { spawnEmitter } from '../../harness/process.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { tempDir } from '../../harness/workload.js';
import { spoolRecord } from '../support/spool-record.js';
import { testEnv } from '../support/env.js';

/**
 * A spool is bound to the destination its batches were accepted for: a start aimed elsewhere is
 * refused (nothing is sent), `batch-emitter spool retarget --yes` rebinds it deliberately.
 * Real LevelDB spool, real loopback sinks, the real `batch-emitter` process.
 */

let a: Sink;
let b: Sink;

beforeAll(async () => {
  [a, b] = await Promise.all([startSink(), startSink()]);
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

const quiet = () => createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');

/** Leave `count` events spooled for `url`: the destination answers 503 until the emitter is closed. */
async function leaveBatches(spoolDir: string, url: string, count: number): Promise<void> {
  const env = testEnv({ sinkUrl: url, spoolDir, extra: { TRANSMITTER_SHUTDOWN_TIMEOUT_S: '0.5' } });
  const emitter = new Emitter(loadConfig(env), { logger: quiet() });
  await emitter.start();
  try {
    const adds = Array.from({ length: count }, (_, i) => emitter.add('approved.finding', { id: `f${i}` }));
    await emitter.flush();
    await Promise.all(adds);
  } finally {
    await emitter.close();
  }
}

const batchIds = (sink: Sink) => sink.requests.map((r) => (r.body as { batch_id: string }).batch_id);

describe('the spool bound to its destination', () => {
  it('a run aimed at A leaves batches; aimed at B it refuses and sends nothing; retarget --yes; then B gets them', async () => {
    const spool = await tempDir('destination');
    const urlA = `${a.url}/v1/batch?tenant=alpha&api_key=k3y-secret`;
    const urlB = `${b.url}/v2/batch`;
    try {
      a.respondWith(() => ({ status: 503 }));
      await leaveBatches(spool.path, urlA, 5);
      expect(a.requests.length).toBeGreaterThan(0);
      const spooledIds = new Set(batchIds(a));

      // recorded as origin and path, the query only as a digest (it may carry a key)
      const direct = await Spool.openExisting(spool.path);
      const recorded = await direct.destination.recorded();
      expect(recorded).toMatch(new RegExp(`^${a.url}/v1/batch\\?\\(query sha256:[0-9a-f]{16}\\)$`));
      expect(recorded).not.toContain('k3y-secret');
      expect(recorded).not.toContain('alpha');
      const keyA = recorded ?? '';
      await direct.close();

      const env = testEnv({ sinkUrl: urlB, spoolDir: spool.path });
      const stats = await runCli(env, ['spool', 'stats']);
      expect(stats.stdout).toContain(`destination: ${keyA}\n`);
      const refused = await runCli(env, ['run']);
      expect(refused.code).toBe(2);
      const line = refused.stderr.trim();
      expect(line.split('\n')).toHaveLength(1);
      expect(line).toContain(`bound to ${keyA}, not to the configured destination ${b.url}/v2/batch`);
      expect(line).toContain('batch-emitter spool retarget --yes');
      expect(line).not.toContain('k3y-secret');
      expect(b.requests).toHaveLength(0);

      // without --yes: what it would do, exit 1, nothing changed
      const dry = await runCli(env, ['spool', 'retarget']);
      expect(dry.code).toBe(1);
      expect(dry.stdout).toContain(`would rebind spool ${spool.path} from ${keyA} to ${b.url}/v2/batch`);
      expect((await runCli(env, ['run'])).code).toBe(2);

      const done = await runCli(env, ['spool', 'retarget', '--yes']);
      expect(done.code).toBe(0);
      expect(done.stdout).toContain(`rebound from ${keyA} to ${b.url}/v2/batch`);
      const json = await runCli(env, ['spool', 'stats', '--json']);
      expect(JSON.parse(json.stdout)).toMatchObject({ destination: `${b.url}/v2/batch` });

      const proc = spawnEmitter(env);
      try {
        await proc.ready;
        await b.waitFor(() => batchIds(b).some((id) => spooledIds.has(id)), 30_000);
      } finally {
        expect(await proc.stop()).toBe(0);
      }
      const delivered = b.requests.flatMap(
        (r) => (r.body as { events: Array<{ data: { id: string } }> }).events,
      );
      expect(new Set(delivered.map((e) => e.data.id))).toEqual(new Set(['f0', 'f1', 'f2', 'f3', 'f4']));
    } finally {
      a.respondWith(undefined);
      await spool.remove();
    }
  });

  it('embedded: start() rejects with a typed error naming both; a spool holding nothing follows the configuration', async () => {
    const spool = await tempDir('destination-embedded');
    a.clear();
    b.clear();
    try {
      a.respondWith(() => ({ status: 503 }));
      await leaveBatches(spool.path, `${a.url}/x`, 1);
      const other = createEmitter(
        { destinationUrl: `${b.url}/y`, spoolDir: spool.path, allowInsecureHttp: true },
        { logger: quiet() },
      );
      const error = await other.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SpoolDestinationError);
      expect(error).toMatchObject({
        code: 'SPOOL_DESTINATION_MISMATCH',
        recorded: `${a.url}/x`,
        configured: `${b.url}/y`,
      });
      await other.close();
      expect(b.requests).toHaveLength(0);

      // once A has taken everything, the spool holds nothing and may be aimed anywhere
      a.respondWith(undefined);
      const back = createEmitter(
        { destinationUrl: `${a.url}/x`, spoolDir: spool.path, allowInsecureHttp: true },
        { logger: quiet() },
      );
      await back.start();
      await back.wait();
      await back.close();
      const moved = createEmitter(
        { destinationUrl: `${b.url}/y`, spoolDir: spool.path, allowInsecureHttp: true },
        { logger: quiet() },
      );
      await moved.start();
      await moved.close();
      const direct = await Spool.openExisting(spool.path);
      expect(await direct.destination.recorded()).toBe(`${b.url}/y`);
      await direct.close();
    } finally {
      a.respondWith(undefined);
      await spool.remove();
    }
  });

  it('a spool an older version wrote (batches, no recorded destination) adopts the configured one and says so', async () => {
    const spool = await tempDir('destination-older');
    b.clear();
    try {
      const older = await Spool.open(spool.path);
      const { state, body } = spoolRecord(Buffer.from(JSON.stringify({ events: [{ data: { id: 'old' } }] })));
      await older.batches.put(state, body);
      expect(await older.destination.recorded()).toBeUndefined();
      await older.close();

      const lines: string[] = [];
      const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
      const emitter = createEmitter(
        { destinationUrl: `${b.url}/z`, spoolDir: spool.path, allowInsecureHttp: true },
        { logger },
      );
      await emitter.start();
      await b.waitFor((rs) => rs.length > 0, 30_000);
      await emitter.close();
      expect(lines.join('')).toMatch(
        /spool recorded no destination \(written by an older version\): adopted/,
      );
      const direct = await Spool.openExisting(spool.path);
      expect(await direct.destination.recorded()).toBe(`${b.url}/z`);
      await direct.close();
    } finally {
      await spool.remove();
    }
  });
});
