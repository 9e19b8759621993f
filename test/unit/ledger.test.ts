import type { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EmitterEvents } from '../../src/observe/events.js';
import { uuidv7 } from '../../src/util/ids.js';
import {
  attachLedger,
  createdAtOfId,
  idFloorOfMs,
  LevelLedger,
  openLedger,
  redactUrl,
  type LedgerRecord,
  type LedgerSplitEvent,
  type LedgerUpdate,
} from '../../src/observe/ledger/index.js';
import { QueuedLedger } from '../../src/observe/ledger/queue.js';

const logger = pino({ level: 'silent' });
const DESTINATION = 'https://user:secret@ingest.example.com:8443/v1/discovery?token=abc#frag';
const DAY = 86_400_000;
/** A UUIDv7 of a past millisecond (uuidv7() is monotonic and never goes back in time). */
const idAt = (ms: number, n = 0) => `${idFloorOfMs(ms).slice(0, -12)}${n.toString(16).padStart(12, '0')}`;

let dir: string;
let ledger: LevelLedger;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ledger-unit-'));
  ledger = await LevelLedger.open(join(dir, 'ledger'), { logger, flushIntervalMs: 5 });
});

afterEach(async () => {
  await ledger.close();
  await rm(dir, { recursive: true, force: true });
});

async function current(id: string): Promise<LedgerRecord> {
  await ledger.flush();
  const record = await ledger.get(id);
  expect(record).toBeDefined();
  return record as LedgerRecord;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('LevelDB ledger fed by EmitterEvents', () => {
  it('keeps one record per batch through sealed -> 503 -> 200 -> delivered', async () => {
    const events = new EmitterEvents();
    const detach = attachLedger(events, ledger, DESTINATION);
    const id = uuidv7();
    const t0 = Date.now();

    events.emit('sealed', { batchId: id, trigger: 'size', items: 42, rawBytes: 9000, storedBytes: 1234 });
    let r = await current(id);
    expect(r).toMatchObject({
      id,
      status: 'pending',
      item_count: 42,
      payload_size: 1234,
      destination_url: 'https://ingest.example.com:8443/v1/discovery',
      http_status: null,
      error_message: null,
      retry_count: 0,
      sent_at: null,
      completed_at: null,
    });
    expect(Date.parse(r.created_at)).toBe(createdAtOfId(id));
    // credentials, query and fragment dropped; the pattern leaves out 'abc' alone (a batch id may hold it)
    expect(r.destination_url).toBe('https://ingest.example.com:8443/v1/discovery');
    expect(JSON.stringify(r)).not.toMatch(/secret|token|=abc|frag/);

    events.emit('sending', { batchId: id, attempt: 1 });
    r = await current(id);
    expect(r.status).toBe('sending');
    expect(r.retry_count).toBe(1);
    expect(r.sent_at).not.toBeNull();
    const firstSentAt = r.sent_at as string;
    expect(Date.parse(firstSentAt)).toBeGreaterThanOrEqual(t0);

    events.emit('attempt', {
      batchId: id,
      attempt: 1,
      outcome: { kind: 'retryable', status: 503, reason: 'http_503' },
      durationMs: 3,
      nextDelayMs: 1000,
    });
    r = await current(id);
    expect(r).toMatchObject({
      status: 'retrying',
      http_status: 503,
      error_message: 'http_503',
      retry_count: 1,
    });

    await sleep(5);
    events.emit('sending', { batchId: id, attempt: 2 });
    r = await current(id);
    expect(r.status).toBe('sending');
    expect(r.retry_count).toBe(2);
    expect(r.sent_at).toBe(firstSentAt); // the first attempt's start stays

    events.emit('attempt', {
      batchId: id,
      attempt: 2,
      outcome: { kind: 'success', status: 200 },
      durationMs: 2,
    });
    events.emit('finished', {
      batchId: id,
      result: 'delivered',
      attempts: 2,
      createdAtMs: createdAtOfId(id) as number,
      items: 42,
    });
    r = await current(id);
    expect(r).toMatchObject({ status: 'success', http_status: 200, retry_count: 2, item_count: 42 });
    expect(r.completed_at).not.toBeNull();
    expect(Date.parse(r.completed_at as string)).toBeGreaterThanOrEqual(Date.parse(firstSentAt));
    expect(r.error_message).toBe('http_503'); // the last failure is kept for the record

    expect(await ledger.list()).toHaveLength(1);
    expect(await ledger.counts()).toEqual({ success: 1 });
    expect(ledger.stats()).toMatchObject({ queued: 0, dropped: 0, errors: 0 });

    detach();
    events.emit('sealed', { batchId: uuidv7(), trigger: 'size', items: 1, rawBytes: 1, storedBytes: 1 });
    await ledger.flush();
    expect(await ledger.list()).toHaveLength(1);
  });

  it('maps permanent, parked and split results; a split event creates the halves', async () => {
    const events = new EmitterEvents();
    attachLedger(events, ledger, DESTINATION);
    const [dead, parked, parent, half1, half2] = [uuidv7(), uuidv7(), uuidv7(), uuidv7(), uuidv7()];
    for (const id of [dead, parked, parent]) {
      events.emit('sealed', { batchId: id, trigger: 'manual', items: 10, rawBytes: 100, storedBytes: 50 });
      events.emit('sending', { batchId: id, attempt: 1 });
    }
    events.emit('attempt', {
      batchId: dead,
      attempt: 1,
      outcome: { kind: 'permanent', status: 400, reason: 'http_400', bodyExcerpt: 'bad edge' },
      durationMs: 1,
    });
    events.emit('finished', {
      batchId: dead,
      result: 'deadLettered',
      attempts: 1,
      createdAtMs: 0,
      items: 10,
    });
    events.emit('attempt', {
      batchId: parked,
      attempt: 1,
      outcome: { kind: 'retryable', reason: 'ECONNREFUSED' },
      durationMs: 1,
    });
    events.emit('finished', { batchId: parked, result: 'parked', attempts: 1, createdAtMs: 0, items: 10 });
    events.emit('attempt', {
      batchId: parent,
      attempt: 1,
      outcome: { kind: 'split', status: 413 },
      durationMs: 1,
    });
    const split: LedgerSplitEvent = {
      parentId: parent,
      parts: [
        { batchId: half1, items: 5, storedBytes: 30 },
        { batchId: half2, items: 5, storedBytes: 31 },
      ],
    };
    // 'split' is the additive event proposed for EmitterEventMap
    (events as EventEmitter).emit('split', split);
    events.emit('finished', { batchId: parent, result: 'split', attempts: 1, createdAtMs: 0, items: 10 });

    expect(await current(dead)).toMatchObject({
      status: 'dead_lettered',
      http_status: 400,
      error_message: 'http_400: bad edge',
    });
    expect((await current(dead)).completed_at).not.toBeNull();
    const p = await current(parked);
    expect(p).toMatchObject({ status: 'parked', http_status: null, error_message: 'ECONNREFUSED' });
    expect(p.completed_at).toBeNull(); // parked batches stay in the spool and are swept again
    const s = await current(parent);
    expect(s.status).toBe('split');
    expect(s.error_message).toContain(half1);
    expect(await current(half1)).toMatchObject({ status: 'pending', item_count: 5, payload_size: 30 });
    expect(await ledger.counts()).toEqual({ dead_lettered: 1, parked: 1, split: 1, pending: 2 });
    expect((await ledger.list({ status: 'pending' })).map((r) => r.id)).toEqual([half2, half1]);
  });

  it('creates a record from an attempt of a batch it never saw sealed (replayed from the spool)', async () => {
    const events = new EmitterEvents();
    attachLedger(events, ledger, DESTINATION);
    const id = idAt(Date.now() - 60_000, 7);
    events.emit('sending', { batchId: id, attempt: 3 });
    const r = await current(id);
    expect(r).toMatchObject({ status: 'sending', retry_count: 3, item_count: 0 });
    expect(Date.parse(r.created_at)).toBe(createdAtOfId(id));
  });
});

describe('LevelDB ledger retention', () => {
  const finished = (id: string, completedAt: number): LedgerUpdate => ({
    id,
    status: 'success',
    itemCount: 1,
    payloadSize: 1,
    destinationUrl: 'https://x/y',
    completedAt,
  });

  it('prunes records completed more than D days ago, keeping unfinished ones', async () => {
    const now = Date.now();
    const oldDone = idAt(now - 10 * DAY);
    const oldParked = idAt(now - 10 * DAY + 1);
    const recentDone = idAt(now - DAY);
    ledger.record(finished(oldDone, now - 9 * DAY));
    ledger.record({ id: oldParked, status: 'parked' });
    ledger.record(finished(recentDone, now - DAY));
    await ledger.flush();
    expect(await ledger.prune(now)).toBe(1);
    expect(await ledger.get(oldDone)).toBeUndefined();
    expect(await ledger.get(oldParked)).toBeDefined();
    expect(await ledger.get(recentDone)).toBeDefined();
    expect(await ledger.counts()).toEqual({ parked: 1, success: 1 });
  });

  it('keeps at most N records, removing the oldest, finished ones first', async () => {
    const small = await LevelLedger.open(join(dir, 'small'), { logger, maxRecords: 5, flushIntervalMs: 5 });
    try {
      const now = Date.now();
      const ids = Array.from({ length: 8 }, (_, i) => idAt(now - 1000 + i, i));
      // the very oldest is still being delivered: kept while finished ones can go
      small.record({ id: ids[0] as string, status: 'retrying' });
      for (const id of ids.slice(1)) small.record(finished(id, now));
      await small.flush();
      expect(await small.prune(now)).toBe(3);
      const left = (await small.list({ limit: 100 })).map((r) => r.id).sort();
      expect(left).toEqual([ids[0], ids[4], ids[5], ids[6], ids[7]]);
      expect(await small.counts()).toEqual({ retrying: 1, success: 4 });
    } finally {
      await small.close();
    }
  });
});

/** A ledger whose database is down: every write fails. */
class DownLedger extends QueuedLedger {
  writes = 0;
  constructor(maxQueued: number) {
    super({ logger, maxQueued, flushIntervalMs: 1, retryInitialMs: 5, retryMaxMs: 20, closeTimeoutMs: 200 });
  }
  protected async write(): Promise<void> {
    this.writes += 1;
    throw new Error('connect ECONNREFUSED 127.0.0.1:1');
  }
  protected async release(): Promise<void> {}
  async get(): Promise<undefined> {
    return undefined;
  }
  async list(): Promise<LedgerRecord[]> {
    return [];
  }
  async findBySeq(): Promise<undefined> {
    return undefined;
  }
  async counts(): Promise<Record<string, number>> {
    return {};
  }
}

describe('ledger write queue', () => {
  it('never blocks or throws when writes fail; bounded, drops are counted', async () => {
    const down = new DownLedger(10);
    const started = performance.now();
    for (let i = 0; i < 50; i += 1) down.record({ id: uuidv7(), status: 'pending' });
    expect(performance.now() - started).toBeLessThan(50);
    await down.flush(); // resolves though the write failed
    await sleep(60);
    const stats = down.stats();
    expect(stats.queued).toBe(10);
    expect(stats.dropped).toBe(40);
    expect(stats.errors).toBeGreaterThanOrEqual(2); // retried with backoff
    expect(stats.lastError).toContain('ECONNREFUSED');
    expect(down.writes).toBeLessThan(30); // backoff, not a busy loop
    await down.close();
    expect(down.stats().dropped).toBe(50);
    down.record({ id: uuidv7(), status: 'pending' }); // after close: dropped, no throw
  });

  it('merges updates of one batch into one write', async () => {
    const id = uuidv7();
    ledger.record({ id, status: 'pending', itemCount: 3, payloadSize: 9, retryCount: 0 });
    ledger.record({ id, status: 'sending', retryCount: 1, sentAt: 1000 });
    ledger.record({ id, status: 'retrying', httpStatus: 502, sentAt: 2000 });
    expect(ledger.stats().queued).toBe(1);
    const r = await current(id);
    expect(r).toMatchObject({ status: 'retrying', item_count: 3, http_status: 502, retry_count: 1 });
    expect(r.sent_at).toBe(new Date(1000).toISOString());
    expect(ledger.stats().written).toBe(1);
  });

  it('keeps the trace facts of events: seal trigger and sequences, every attempt with the breaker, the split', async () => {
    const events = new EmitterEvents();
    const detach = attachLedger(events, ledger, DESTINATION);
    const id = uuidv7();
    const [half1, half2] = [uuidv7(), uuidv7()];
    events.emit('sealed', {
      batchId: id,
      trigger: 'interval',
      items: 4,
      rawBytes: 400,
      storedBytes: 200,
      openedAtMs: 5000,
      seqRanges: [
        [10, 12],
        [15, 15],
      ],
      subjects: ['approved.ip'],
    });
    // two attempts queued before one write: both kept, in order
    events.emit('attempt', {
      batchId: id,
      attempt: 1,
      outcome: { kind: 'retryable', status: 503, reason: 'http_503' },
      durationMs: 4,
      nextDelayMs: 250,
      breaker: { atStart: 'closed', after: 'open' },
    });
    events.emit('attempt', {
      batchId: id,
      attempt: 2,
      outcome: { kind: 'split', status: 413 },
      durationMs: 2,
      breaker: { atStart: 'halfOpen', after: 'closed' },
    });
    (events as EventEmitter).emit('split', {
      parentId: id,
      parts: [
        { batchId: half1, items: 2, storedBytes: 100 },
        { batchId: half2, items: 2, storedBytes: 100 },
      ],
    } satisfies LedgerSplitEvent);
    const r = await current(id);
    expect(r.trace).toMatchObject({
      trigger: 'interval',
      openedAt: new Date(5000).toISOString(),
      seqs: [
        [10, 12],
        [15, 15],
      ],
      subjects: ['approved.ip'],
      parts: [half1, half2],
    });
    const [first, second] = r.trace?.attempts ?? [];
    expect(first).toMatchObject({ n: 1, kind: 'retryable', status: 503, reason: 'http_503', durationMs: 4 });
    expect(first?.breaker).toEqual({ atStart: 'closed', after: 'open' });
    expect(Date.parse(first?.nextRetryAt as string) - Date.parse(first?.at as string)).toBe(254);
    expect(second).toMatchObject({
      n: 2,
      kind: 'split',
      status: 413,
      breaker: { atStart: 'halfOpen', after: 'closed' },
    });
    expect(second?.nextRetryAt).toBeUndefined();
    expect((await current(half1)).trace).toEqual({ parentId: id });
    expect((await ledger.findBySeq(15))?.id).toBe(id);
    expect(await ledger.findBySeq(13)).toBeUndefined();
    detach();
  });
});

describe('openLedger and helpers', () => {
  it('opens the LevelDB ledger under <spoolDir>/ledger without a database URL', async () => {
    const opened = await openLedger({ spoolDir: join(dir, 'spool'), logger });
    try {
      expect(opened).toBeInstanceOf(LevelLedger);
      expect((opened as LevelLedger).dir).toBe(join(dir, 'spool', 'ledger'));
    } finally {
      await opened.close();
    }
  });

  it('keeps origin and path of the destination only', () => {
    expect(redactUrl('https://u:p@h.example/a/b?key=1#x')).toBe('https://h.example/a/b');
    expect(redactUrl('not a url')).toBe('(invalid url)');
  });
});
