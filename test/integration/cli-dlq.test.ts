import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { Emitter } from '../../src/emitter.js';
import { uuidv7 } from '../../src/util/ids.js';
import { createLogger } from '../../src/util/logger.js';
import { Spool } from '../../src/spool/spool.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { testEnv } from '../support/env.js';
import { runCli } from '../../harness/cli-process.js';
import { tempDir } from '../../harness/workload.js';

/** `batch-emitter dlq ...` as a real child process against a real LevelDB spool and a loopback sink. */

/** The CLI with only TRANSMITTER_SPOOL_DIR set (no destination URL: the commands must not need one). */
const cli = (spoolDir: string, ...args: string[]) => runCli({ TRANSMITTER_SPOOL_DIR: spoolDir }, args);

let sink: Sink;

beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink?.close();
});

async function startEmitter(spoolDir: string): Promise<Emitter> {
  const config = loadConfig(
    testEnv({ sinkUrl: `${sink.url}/ingest`, spoolDir, extra: { TRANSMITTER_SHUTDOWN_TIMEOUT_S: '1' } }),
  );
  const emitter = new Emitter(config, { logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent') });
  await emitter.start();
  return emitter;
}

describe('batch-emitter dlq', () => {
  it('lists a refused batch, replays it, and a new emitter delivers it once under the same batch id', async () => {
    const spool = await tempDir('cli-dlq');
    try {
      // 1. the sink refuses the batch permanently: it is dead-lettered with status and body excerpt
      sink.respondWith(() => ({ status: 400, body: { error: 'schema mismatch in events[1]' } }));
      const first = await startEmitter(spool.path);
      try {
        // an awaited add resolves when its batch is sealed and durable: offer all three, then seal
        const adds = [0, 1, 2].map((i) => first.add('approved.finding', { id: `f${i}`, severity: 'high' }));
        await first.flush();
        await Promise.all(adds);
        await first.wait();
      } finally {
        await first.close();
      }
      expect(sink.requests).toHaveLength(1);
      const refusedKey = String(sink.requests[0]?.headers['idempotency-key']);
      const refusedBatchId = (sink.requests[0]?.body as { batch_id: string }).batch_id;
      expect(refusedKey).toBe(refusedBatchId);

      // a message dead letter (invalid input) alongside it, as the JetStream path records them
      const messageId = uuidv7();
      const direct = await Spool.open(spool.path);
      await direct.deadLetters.addMessage({
        id: messageId,
        kind: 'message',
        reason: 'invalid_json: Unexpected token',
        at: new Date().toISOString(),
        subjects: ['approved.domain'],
        message: {
          subject: 'approved.domain',
          seq: 7,
          rawBase64: Buffer.from('{not json').toString('base64'),
          rawBytes: 9,
          truncated: false,
        },
      });
      await direct.close();

      // 2. list
      const listed = await cli(spool.path, 'dlq', 'list');
      expect(listed).toMatchObject({ code: 0, stderr: '' });
      const lines = listed.stdout.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toContain(refusedBatchId);
      expect(lines[0]).toMatch(/ batch .*status=400 .*items=3 .*subjects=\S+ .*reason="http_400"/);
      expect(lines[1]).toContain(messageId);
      expect(lines[1]).toMatch(/ message .*items=- .*reason="invalid_json: Unexpected token"/);

      // 3. show: the record, the excerpt, the decoded body summarised
      const shown = await cli(spool.path, 'dlq', 'show', refusedBatchId, '--body');
      expect(shown.code).toBe(0);
      const record = JSON.parse(shown.stdout) as Record<string, unknown>;
      expect(record).toMatchObject({
        id: refusedBatchId,
        kind: 'batch',
        status: 400,
        reason: 'http_400',
        batch: { id: refusedBatchId, itemCount: 3 },
        body: {
          batch_id: refusedBatchId,
          items: 3,
          sections: { nodes_domain: 0, nodes_ip: 0, nodes_cert: 0, edges: 0, events: 3 },
        },
      });
      expect(String(record.bodyExcerpt)).toContain('schema mismatch in events[1]');
      const doc = record.document as { events: Array<{ data: { id: string } }> };
      expect(doc.events.map((e) => e.data.id)).toEqual(['f0', 'f1', 'f2']);

      const unknown = await cli(spool.path, 'dlq', 'show', '01900000-0000-7000-8000-000000000000');
      expect(unknown.code).toBe(1);
      expect(unknown.stdout).toBe('');
      expect(unknown.stderr).toBe('batch-emitter: no dead letter 01900000-0000-7000-8000-000000000000\n');

      // 4. replay --all: the batch goes back, the message dead letter is skipped and kept
      const replayed = await cli(spool.path, 'dlq', 'replay', '--all');
      expect(replayed.code).toBe(0);
      expect(replayed.stdout).toContain(`replayed ${refusedBatchId} (3 items)`);
      expect(replayed.stdout).toContain(`skipped ${messageId}`);
      expect(replayed.stdout).toMatch(/replayed 1 batch into the spool; skipped 1 message dead letter/);
      const spooled = JSON.parse((await cli(spool.path, 'spool', 'list', '--json')).stdout) as unknown[];
      expect(spooled).toEqual([
        expect.objectContaining({ id: refusedBatchId, items: 3, attempts: 0, parked: false }),
      ]);

      // 5. the sink is fixed; the next start delivers the replayed batch once, same idempotency-key
      sink.respondWith(undefined);
      const second = await startEmitter(spool.path);
      try {
        await sink.waitFor((rs) => rs.length >= 2, 10_000);
        await second.wait();
      } finally {
        await second.close();
      }
      expect(sink.requests).toHaveLength(2);
      expect(sink.requests[1]?.headers['idempotency-key']).toBe(refusedKey);
      expect((sink.requests[1]?.body as { batch_id: string }).batch_id).toBe(refusedBatchId);

      // replaying a message dead letter by id: refused, and it stays (the dry run below still finds it)
      const single = await cli(spool.path, 'dlq', 'replay', messageId);
      expect(single.code).toBe(1);
      expect(single.stdout).toContain('kept for inspection');

      // 6. purge --reason: a dry run changes nothing; --yes deletes
      const dry = await cli(spool.path, 'dlq', 'purge', '--reason', 'INVALID_JSON');
      expect(dry.code).toBe(0);
      expect(dry.stdout).toContain(`would delete ${messageId}`);
      expect(dry.stdout).toContain('dry run: 1 dead letter would be deleted; add --yes to delete');
      const purged = await cli(spool.path, 'dlq', 'purge', '--reason', 'invalid_json', '--yes');
      expect(purged.code).toBe(0);
      expect(purged.stdout).toContain(`deleted ${messageId}`);
      expect((await cli(spool.path, 'dlq', 'list')).stdout).toBe('no dead letters\n');
    } finally {
      sink.respondWith(undefined);
      sink.clear();
      await spool.remove();
    }
  });

  it('refuses bad usage with one line, and needs an existing spool', async () => {
    const spool = await tempDir('cli-dlq-usage');
    try {
      const both = await cli(spool.path, 'dlq', 'replay', 'some-id', '--all');
      expect(both.code).toBe(1);
      expect(both.stderr.trim().split('\n')).toHaveLength(1);
      const missing = await cli(`${spool.path}/absent`, 'dlq', 'list');
      expect(missing).toMatchObject({ code: 1, stderr: `batch-emitter: no spool at ${spool.path}/absent\n` });
    } finally {
      await spool.remove();
    }
  });
});
