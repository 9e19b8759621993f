import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../harness/chromium.js';
import { freePort, startNats, type NatsServerHandle } from '../../harness/nats.js';
import { startSink, type Sink, type SinkRequest } from '../../harness/sink.js';
import { spawnEmitter } from '../../harness/process.js';
import { runCli } from '../../harness/cli-process.js';
import { allDelivered, publishAll, sampleMessages, tempDir } from '../../harness/workload.js';
import type { BatchStory, TraceStory } from '../../src/observe/trace/story.js';
import { testEnv } from '../support/env.js';

/**
 * `batch-emitter trace` and `GET /debug/trace` against a real nats-server, a real emitter process
 * and a loopback sink: one event's batch through a 503 outage (the breaker opening), a 413 split
 * and the delivery of both halves, told the same way by the running emitter (through HTTP: the
 * spool is locked) and by the stopped spool; and a batch still spooled with messages still in the
 * stream, told offline with the consumer's counts from NATS.
 */

let nats: NatsServerHandle;
let sink: Sink;
beforeAll(async () => {
  [nats, sink] = await Promise.all([startNats(), startSink()]);
});
afterAll(async () => {
  await Promise.all([nats?.stop(), sink?.close()]);
});

/** Items in a delivered batch document. */
function itemsOf(req: SinkRequest): number {
  const body = req.body as Record<string, unknown>;
  return Object.values(body ?? {}).reduce<number>((n, v) => n + (Array.isArray(v) ? v.length : 0), 0);
}

const run = promisify(execFile);
const CHROMIUM = CHROMIUM_PATH;

const keyOf = (req: SinkRequest) => String(req.headers['idempotency-key']);

/**
 * The DOM of `url` after its scripts ran, from headless Chromium (undefined, with a warning,
 * where it is not installed: CI installs it).
 */
async function renderedDom(url: string): Promise<string | undefined> {
  if (!existsSync(CHROMIUM)) {
    console.warn(`trace: no ${CHROMIUM}; the /debug search box is not checked in a browser`);
    return undefined;
  }
  const profile = await tempDir('trace-chromium');
  try {
    const { stdout } = await run(
      CHROMIUM,
      [...CHROMIUM_ARGS, `--user-data-dir=${profile.path}`, '--virtual-time-budget=10000', '--dump-dom', url],
      { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
    );
    return stdout;
  } finally {
    await profile.remove();
  }
}

/** The story without where it was read (the running emitter or the stopped spool). */
function storyOf(stdout: string): TraceStory {
  const { readFrom: _readFrom, ...story } = JSON.parse(stdout) as TraceStory & { readFrom: string };
  return story;
}

describe('batch-emitter trace', () => {
  it('tells one event through a 503 outage, a 413 split and the delivery of both halves, live and offline', async () => {
    const spool = await tempDir('trace');
    const port = await freePort();
    const env = testEnv({
      natsUrl: nats.url,
      sinkUrl: `${sink.url}/ingest`,
      spoolDir: spool.path,
      extra: {
        TRANSMITTER_NATS_DURABLE: 'trace-split',
        TRANSMITTER_SERVER_PORT: String(port),
        TRANSMITTER_DEBUG: 'true',
        TRANSMITTER_BATCH_SIZE: '8',
        TRANSMITTER_BATCH_INTERVAL_S: '5',
        TRANSMITTER_RETRY_MAX_ATTEMPTS: '10',
        TRANSMITTER_CIRCUIT_FAILURE_THRESHOLD: '2',
      },
    });
    // three 503s (an outage), then anything above 4 items is too large (413): 8 -> 4 + 4
    sink.respondWith((req, i) =>
      i < 3 ? { status: 503 } : itemsOf(req) > 4 ? { status: 413 } : { status: 200 },
    );
    const proc = spawnEmitter(env);
    try {
      await proc.ready;
      const messages = sampleMessages(8, 'trace');
      await publishAll(nats.url, messages);
      // the sink records refused requests too: wait for the two accepted halves
      await sink.waitFor((rs) => allDelivered(messages)(rs.filter((r) => itemsOf(r) <= 4)), 60_000);
      const batchId = keyOf(sink.requests[0] as SinkRequest);
      const accepted = sink.requests.filter((r) => itemsOf(r) <= 4).map(keyOf);
      expect(accepted).toHaveLength(2);

      // while it runs the spool is locked: the CLI asks the emitter's /debug/trace
      const cliEnv = {
        TRANSMITTER_SPOOL_DIR: spool.path,
        TRANSMITTER_SERVER_HOST: '127.0.0.1',
        TRANSMITTER_SERVER_PORT: String(port),
      };
      const args = ['trace', '--subject', 'approved.domain', '--seq', '1'];
      let live: TraceStory | undefined;
      // the last ledger update of the halves lands just after the sink answers: ask until it has
      for (let tries = 0; tries < 50; tries++) {
        const run = await runCli(cliEnv, [...args, '--json']);
        expect(run.stderr).toBe('');
        expect(JSON.parse(run.stdout).readFrom).toBe(`the running emitter at http://127.0.0.1:${port}`);
        live = storyOf(run.stdout);
        if (live.batch?.parts?.every((p) => p.end.kind === 'delivered')) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const story = live as TraceStory;
      expect(story.event).toMatchObject({ seq: 1, subject: 'approved.domain', batchId });
      expect(story.event?.subjectMismatch).toBeUndefined();
      const batch = story.batch as BatchStory;
      expect(batch).toMatchObject({ id: batchId, idempotencyKey: batchId, trigger: 'size', items: 8 });
      expect(batch.seqs).toEqual([[1, 8]]);
      expect([...(batch.subjects ?? [])].sort()).toEqual([...new Set(messages.map((m) => m.subject))].sort());
      expect(Date.parse(batch.receivedFrom as string)).toBeLessThanOrEqual(
        Date.parse(batch.receivedTo as string),
      );

      // the outage: three 503s, each timed with its next retry; the breaker opened after two
      const [a1, a2, a3, a4, extra] = batch.attempts;
      expect(extra).toBeUndefined();
      for (const [i, a] of [a1, a2, a3].entries()) {
        expect(a).toMatchObject({ n: i + 1, kind: 'retryable', status: 503, reason: 'http_503' });
        expect(Date.parse(a?.nextRetryAt as string)).toBeGreaterThan(Date.parse(a?.at as string));
        expect(a?.durationMs).toBeGreaterThanOrEqual(0);
      }
      expect(a1?.breaker).toEqual({ atStart: 'closed', after: 'closed' });
      expect(a2?.breaker).toEqual({ atStart: 'closed', after: 'open' });
      expect(a3?.breaker?.atStart).toBe('halfOpen');
      // then 413: split into two halves with new ids, each delivered on its first attempt
      expect(a4).toMatchObject({ n: 4, kind: 'split', status: 413 });
      expect(a4?.nextRetryAt).toBeUndefined();
      expect(batch.end).toMatchObject({ kind: 'split', parts: expect.arrayContaining(accepted) });
      expect(batch.parts).toHaveLength(2);
      for (const part of batch.parts ?? []) {
        expect(accepted).toContain(part.id);
        expect(part).toMatchObject({ parentId: batchId, items: 4, idempotencyKey: part.id });
        expect(part.attempts).toMatchObject([{ n: 1, kind: 'success', status: 200 }]);
        expect(part.end).toMatchObject({ kind: 'delivered', status: 200 });
      }
      // every request carried its batch's id as the idempotency-key
      expect(sink.requests.slice(0, 4).map(keyOf)).toEqual([batchId, batchId, batchId, batchId]);

      // the endpoint itself: the same story as JSON, and as the printed text
      const served = (await (
        await fetch(`http://127.0.0.1:${port}/debug/trace?subject=approved.domain&seq=1`)
      ).json()) as TraceStory;
      expect(served.batch).toEqual(story.batch);
      const text = await (
        await fetch(`http://127.0.0.1:${port}/debug/trace?batch=${batchId}&format=text`)
      ).text();
      expect(text).toContain(`batch ${batchId}`);
      const bad = await fetch(`http://127.0.0.1:${port}/debug/trace?seq=x`);
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: string }).error).toContain('not a stream sequence');

      // the /debug page's search box, in a real browser: #trace=<id> shows the same printed story
      const page = await renderedDom(`http://127.0.0.1:${port}/debug#trace=${batchId}`);
      if (page !== undefined) {
        const shown = /<pre id="trace-out"[^>]*>([\s\S]*?)<\/pre>/.exec(page)?.[1] ?? '';
        expect(shown).toContain(`batch ${batchId}`);
        expect(shown).toContain('split (413) into');
        expect(shown.match(/end +delivered \(HTTP 200\)/g)).toHaveLength(2);
      }

      expect(await proc.stop()).toBe(0);

      // stopped: the same story read from the spool and its LevelDB ledger
      const offline = await runCli(cliEnv, [...args, '--json']);
      expect(offline.stderr).toBe('');
      expect(JSON.parse(offline.stdout).readFrom).toContain(`the stopped spool ${spool.path}`);
      expect(storyOf(offline.stdout).batch).toEqual(story.batch);
      const printed = await runCli(cliEnv, args);
      expect(printed.code).toBe(0);
      expect(printed.stdout).toContain(`event: stream sequence 1 on approved.domain: in batch ${batchId}`);
      expect(printed.stdout).toMatch(
        /attempt 1 .*HTTP 503 retryable \(http_503\).*breaker closed.*next retry/,
      );
      expect(printed.stdout).toMatch(/attempt 2 .*breaker closed -> open/);
      expect(printed.stdout).toContain('split (413) into');
      expect(printed.stdout.match(/end +delivered \(HTTP 200\)/g)).toHaveLength(2);
      if (process.env.TRACE_SAMPLE_OUT) await writeFile(process.env.TRACE_SAMPLE_OUT, printed.stdout);
    } finally {
      if (proc.child.exitCode === null) await proc.stop();
      sink.respondWith(undefined);
      await spool.remove();
    }
  }, 120_000);

  it('tells a parked batch from the stopped spool, and a message still in the stream with the consumer counts', async () => {
    const own = await startNats();
    const spool = await tempDir('trace-parked');
    const port = await freePort();
    const env = testEnv({
      natsUrl: own.url,
      sinkUrl: `${sink.url}/ingest`,
      spoolDir: spool.path,
      extra: {
        TRANSMITTER_NATS_DURABLE: 'trace-parked',
        TRANSMITTER_SERVER_PORT: String(port),
        TRANSMITTER_DEBUG: 'true',
        TRANSMITTER_RETRY_MAX_ATTEMPTS: '2',
        TRANSMITTER_SHUTDOWN_TIMEOUT_S: '1',
      },
    });
    await sink.down();
    const proc = spawnEmitter(env);
    try {
      await proc.ready;
      await publishAll(own.url, sampleMessages(3, 'parked'));
      // both attempts refused (the sink is down): the batch is parked; the emitter tells it live
      let story: TraceStory | undefined;
      for (let tries = 0; tries < 150 && story?.batch?.end.kind !== 'parked'; tries++) {
        if (tries > 0) await new Promise((r) => setTimeout(r, 100));
        story = (await (await fetch(`http://127.0.0.1:${port}/debug/trace?seq=2`)).json()) as TraceStory;
      }
      expect(story?.batch?.end.kind).toBe('parked');
      expect(await proc.stop()).toBe(0);

      // two more messages arrive while it is stopped: they stay in the stream
      await publishAll(own.url, sampleMessages(2, 'later'));
      const parked = await runCli(env, ['trace', '2', '--json']);
      expect(parked.stderr).toBe('');
      const told = storyOf(parked.stdout);
      // the index entry goes once the ingress prunes below the ack floor (every 30 s); the ledger has it too
      expect(told.event?.seq).toBe(2);
      expect(['sequence index', 'ledger']).toContain(told.event?.foundIn);
      expect(told.event?.batchId).toBe(told.batch?.id);
      expect(told.batch).toMatchObject({ trigger: 'interval', items: 3, seqs: [[1, 3]] });
      // two attempts, then parked; each sweep of the parked batch tries it once more (as attempt 2)
      const [first, second, ...swept] = told.batch?.attempts ?? [];
      expect(first).toMatchObject({ n: 1, kind: 'retryable', reason: 'ECONNREFUSED' });
      expect(second).toMatchObject({ n: 2, kind: 'retryable', reason: 'ECONNREFUSED' });
      for (const a of swept) expect(a).toMatchObject({ n: 2, kind: 'retryable', reason: 'ECONNREFUSED' });
      expect(told.batch?.end).toMatchObject({ kind: 'parked', lastError: 'ECONNREFUSED' });
      expect(Date.parse((told.batch?.end as { nextTryAt: string }).nextTryAt)).toBeGreaterThan(0);

      const waiting = await runCli(env, ['trace', '5', '--json']);
      expect(storyOf(waiting.stdout).notSeen).toEqual({
        note: 'not seen: still in the stream (not yet taken into a durable batch)',
        consumer: { pending: 2, ackPending: 0, ackFloor: 3 },
      });
      const printed = await runCli(env, ['trace', '5']);
      expect(printed.stdout).toContain(
        'not seen: still in the stream (not yet taken into a durable batch) (consumer: 2 pending, 0 awaiting ack, ack floor 3)',
      );
      const parkedText = await runCli(env, ['trace', '2']);
      expect(parkedText.stdout).toMatch(/attempt 2 .*ECONNREFUSED/);
      if (swept.length > 0) expect(parkedText.stdout).toMatch(/swept +\S+ +retryable \(ECONNREFUSED\)/);
      expect(parkedText.stdout).toMatch(
        /end +parked in the spool \(attempts spent\), last error ECONNREFUSED/,
      );
    } finally {
      if (proc.child.exitCode === null) await proc.stop();
      await sink.up();
      await own.stop();
      await spool.remove();
    }
  }, 120_000);
});
