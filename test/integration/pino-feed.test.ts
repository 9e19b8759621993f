import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSink, type Sink } from '../../harness/sink.js';
import { tempDir } from '../../harness/workload.js';
import { LogFeed } from '../../plugins/pino-feed.js';
import { LineSink } from '../../plugins/pino-sink.js';
import { createEmitter } from '../../src/index.js';
import { MAX_PENDING_SEALS } from '../../src/intake/intake.js';
import { Spool } from '../../src/spool/spool.js';
import { deliveredEvents, embedOptions } from '../fixtures/embed-support.js';

let sink: Sink;
beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink?.close();
});

/**
 * The lines through the transport's stream as pino's worker writes them: text in chunks of a few
 * KB, lines split across chunks.
 */
function feedLines(feed: LogFeed, lines: string[]): Promise<void> {
  return feedText(feed, lines.map((line) => `${line}\n`).join(''), CHUNK);
}

function feedText(feed: LogFeed, text: string, chunk: number): Promise<void> {
  const chunks: string[] = [];
  for (let at = 0; at < text.length; at += chunk) chunks.push(text.slice(at, at + chunk));
  return pipeline(Readable.from(chunks), new LineSink(feed));
}

const CHUNK = 4000;
const BATCH = 100;
const LINES = 20_000;

function pinoLine(n: number): string {
  return JSON.stringify({ level: 30, time: 1_700_000_000_000 + n, n, msg: `line ${n}` });
}

describe('the pino transport feed (plugins/pino-feed.ts) on a real spool', () => {
  it('holds at most the open batch and the seals under way in memory during a burst, and loses none', async () => {
    const spool = await tempDir('pino-feed');
    const emitter = createEmitter(embedOptions(`${sink.url}/logs`, spool.path, { batchSize: BATCH }));
    try {
      await emitter.start();
      const failed: unknown[] = [];
      const feed = new LogFeed(emitter, 'log', (error) => failed.push(error));
      // a source that has every line ready at once: the feed alone sets the pace
      const lines = Array.from({ length: LINES }, (_, n) => pinoLine(n));
      await feedLines(feed, lines);
      expect(feed.stats.accepted).toBe(LINES);
      // the burst is 40 times the bound: intake paused, and the feed waited instead of queueing
      expect(feed.stats.peakPending).toBeGreaterThan(0);
      expect(feed.stats.peakPending).toBeLessThanOrEqual(BATCH * (MAX_PENDING_SEALS + 1));
      await emitter.flush();
      expect(feed.stats.pending).toBe(0);
      await emitter.wait();
      const seen = new Set(deliveredEvents(sink.requests).map((e) => e.data.n));
      expect(seen.size).toBe(LINES);
      expect(failed).toEqual([]);
    } finally {
      await emitter.close();
      await spool.remove();
      sink.clear();
    }
  });

  it('refuses and counts the lines a full spool cannot take, without waiting for it: each line is spooled or counted', async () => {
    const spool = await tempDir('pino-feed-full');
    const spoolMaxBytes = 1024 * 1024;
    const emitter = createEmitter(
      embedOptions(`${sink.url}/logs`, spool.path, { batchSize: BATCH, spoolMaxBytes, shutdownTimeoutS: 1 }),
    );
    await sink.down();
    try {
      await emitter.start();
      const lost = new Map<string, number>();
      const feed = new LogFeed(emitter, 'log', (reason, n) => lost.set(reason, (lost.get(reason) ?? 0) + n));
      // ~4 MB of lines into a 1 MiB spool with the endpoint down: intake pauses for seals first,
      // then the spool fills while the feed waits on them, and must stop waiting then
      // (random padding: the spool stores batches gzipped)
      const lines = Array.from({ length: LINES }, (_, n) =>
        JSON.stringify({ level: 30, n, pad: randomBytes(150).toString('base64'), msg: `line ${n}` }),
      );
      const consumed = await Promise.race([
        feedLines(feed, lines).then(() => 'consumed' as const),
        new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000)),
      ]);
      expect(consumed).toBe('consumed');
      await emitter.flush();
      const { accepted, refused, failed, peakPending } = feed.stats;
      expect(refused).toBeGreaterThan(0);
      expect(failed).toBe(0);
      expect(accepted + refused).toBe(LINES);
      expect(peakPending).toBeLessThanOrEqual(BATCH * (MAX_PENDING_SEALS + 1));
      expect(Object.fromEntries(lost)).toEqual({ [`spool full (${spool.path})`]: refused });
      expect(feed.stats.pending).toBe(0);
      await emitter.close();
      const reopened = await Spool.openExisting(spool.path);
      const batches = await reopened.batches.list().finally(() => reopened.close());
      expect(batches.reduce((sum, b) => sum + b.itemCount, 0)).toBe(accepted);
    } finally {
      await emitter.close();
      await sink.up();
      await spool.remove();
      sink.clear();
    }
  });

  it("puts the line's own text into the batch: a number beyond double precision arrives as logged", async () => {
    const spool = await tempDir('pino-feed-text');
    const emitter = createEmitter(embedOptions(`${sink.url}/logs`, spool.path));
    try {
      await emitter.start();
      const feed = new LogFeed(emitter, 'log', () => undefined);
      const text = '{"level":50,"time":1700000000000,"big":12345678901234567890123,"msg":"big"}';
      await feedLines(feed, [text]);
      await emitter.flush();
      await emitter.wait();
      const raw = sink.requests.map((r) => gunzipSync(r.raw).toString('utf8')).join('\n');
      expect(raw).toContain(`"data":${text}`);
      expect(deliveredEvents(sink.requests).map((e) => e.subject)).toEqual(['log.error']);
    } finally {
      await emitter.close();
      await spool.remove();
      sink.clear();
    }
  });

  it('takes lines split anywhere across chunks, CRLF, a last line without its newline, and lines that are not JSON objects', async () => {
    const spool = await tempDir('pino-feed-shapes');
    const emitter = createEmitter(embedOptions(`${sink.url}/logs`, spool.path));
    try {
      await emitter.start();
      const feed = new LogFeed(emitter, 'log', () => undefined);
      const text =
        '{"level":30,"n":1}\r\nnot json\n42\nnull\n{"level":"custom","n":2}\n\u00e9t\u00e9\n{"level":40,"n":3}';
      // chunks of 3 characters: every line is split, '\r\n' too
      await feedText(feed, text, 3);
      expect(feed.stats.accepted).toBe(7);
      await emitter.flush();
      await emitter.wait();
      const events = deliveredEvents(sink.requests);
      expect(events.map((e) => [e.subject, e.data])).toEqual([
        ['log.info', { level: 30, n: 1 }],
        ['log.unparsed', { line: 'not json' }],
        ['log.unknown', { data: 42, time: expect.any(Number) }],
        ['log.unparsed', { line: 'null' }],
        ['log.custom', { level: 'custom', n: 2 }],
        ['log.unparsed', { line: '\u00e9t\u00e9' }],
        ['log.warn', { level: 40, n: 3 }],
      ]);
    } finally {
      await emitter.close();
      await spool.remove();
      sink.clear();
    }
  });
});
