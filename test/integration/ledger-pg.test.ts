import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmitterEvents } from '../../src/observe/events.js';
import { uuidv7 } from '../../src/util/ids.js';
import { attachLedger, createdAtOfId, openLedger } from '../../src/observe/ledger/index.js';
import { PgLedger } from '../../src/observe/ledger/pg-ledger.js';

/**
 * The PostgreSQL ledger against a real server (trust auth). LEDGER_TEST_DATABASE_URL overrides
 * the default; each run uses its own schema, dropped afterwards, so parallel runs do not collide.
 */

const URL = process.env.LEDGER_TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const logger = pino({ level: 'silent' });
const SCHEMA = `ledger_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
const DESTINATION = 'https://svc:pw@ingest.example.com/v1/discovery?api_key=xyz';

async function reachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const available = await reachable();
if (!available) console.warn(`ledger-pg: no PostgreSQL at ${URL}; skipped`);

describe.skipIf(!available)('PostgreSQL ledger', () => {
  let ledger: PgLedger;
  let db: pg.Client;

  beforeAll(async () => {
    ledger = new PgLedger(URL, { logger, schema: SCHEMA, flushIntervalMs: 5 });
    db = new pg.Client({ connectionString: URL });
    await db.connect();
  });

  afterAll(async () => {
    await ledger?.dropSchema().catch(() => undefined);
    await ledger?.close();
    await db?.end();
  });

  const rowsOf = async (id: string) =>
    (
      await db.query<Record<string, unknown>>(
        `SELECT id::text, status, item_count, payload_size, destination_url, http_status, error_message,
           retry_count, created_at AT TIME ZONE 'UTC' AS created_at, sent_at AT TIME ZONE 'UTC' AS sent_at,
           completed_at AT TIME ZONE 'UTC' AS completed_at
         FROM ${SCHEMA}.batches WHERE id = $1`,
        [id],
      )
    ).rows;

  it('creates exactly the seed table and keeps one row per batch, updated in place', async () => {
    const events = new EmitterEvents();
    const detach = attachLedger(events, ledger, DESTINATION);
    const id = uuidv7();

    events.emit('sealed', { batchId: id, trigger: 'size', items: 7, rawBytes: 900, storedBytes: 321 });
    await ledger.flush();
    const columns = await db.query<{ column_name: string; data_type: string }>(
      `SELECT column_name, data_type FROM information_schema.columns
       WHERE table_schema = $1 AND table_name = 'batches' ORDER BY ordinal_position`,
      [SCHEMA],
    );
    expect(columns.rows.map((c) => `${c.column_name} ${c.data_type}`)).toEqual([
      'id uuid',
      'status character varying',
      'item_count integer',
      'payload_size integer',
      'destination_url text',
      'http_status integer',
      'error_message text',
      'retry_count integer',
      'created_at timestamp without time zone',
      'sent_at timestamp without time zone',
      'completed_at timestamp without time zone',
    ]);
    let rows = await rowsOf(id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      status: 'pending',
      item_count: 7,
      payload_size: 321,
      destination_url: 'https://ingest.example.com/v1/discovery',
      retry_count: 0,
      sent_at: null,
    });
    expect((rows[0]?.created_at as Date).getTime()).toBe(createdAtOfId(id));

    events.emit('sending', { batchId: id, attempt: 1 });
    await ledger.flush();
    rows = await rowsOf(id);
    expect(rows[0]).toMatchObject({ status: 'sending', retry_count: 1 });
    const firstSent = (rows[0]?.sent_at as Date).getTime();
    expect(Math.abs(firstSent - Date.now())).toBeLessThan(5000);

    events.emit('attempt', {
      batchId: id,
      attempt: 1,
      outcome: { kind: 'retryable', status: 503, reason: 'http_503' },
      durationMs: 4,
      nextDelayMs: 500,
    });
    await ledger.flush();
    expect((await rowsOf(id))[0]).toMatchObject({
      status: 'retrying',
      http_status: 503,
      error_message: 'http_503',
    });

    events.emit('sending', { batchId: id, attempt: 2 });
    events.emit('attempt', {
      batchId: id,
      attempt: 2,
      outcome: { kind: 'success', status: 201 },
      durationMs: 2,
    });
    events.emit('finished', { batchId: id, result: 'delivered', attempts: 2, createdAtMs: 0, items: 7 });
    await ledger.flush();
    rows = await rowsOf(id);
    expect(rows).toHaveLength(1); // not a new row per retry
    expect(rows[0]).toMatchObject({ status: 'success', http_status: 201, retry_count: 2, item_count: 7 });
    expect((rows[0]?.sent_at as Date).getTime()).toBe(firstSent);
    expect(rows[0]?.completed_at).toBeInstanceOf(Date);

    const record = await ledger.get(id);
    expect(record).toMatchObject({ id, status: 'success', retry_count: 2, payload_size: 321 });
    expect(record?.sent_at).toBe(new Date(firstSent).toISOString());
    expect(JSON.stringify(record)).not.toMatch(/pw|api_key|xyz/);
    detach();
  });

  it('upserts many batches with several updates each in few statements', async () => {
    const events = new EmitterEvents();
    attachLedger(events, ledger, DESTINATION);
    const ids = Array.from({ length: 600 }, () => uuidv7());
    for (const id of ids) {
      events.emit('sealed', { batchId: id, trigger: 'size', items: 3, rawBytes: 30, storedBytes: 20 });
      events.emit('sending', { batchId: id, attempt: 1 });
    }
    for (const id of ids.slice(0, 200)) {
      events.emit('attempt', {
        batchId: id,
        attempt: 1,
        outcome: { kind: 'permanent', status: 422, reason: 'http_422' },
        durationMs: 1,
      });
      events.emit('finished', { batchId: id, result: 'deadLettered', attempts: 1, createdAtMs: 0, items: 3 });
    }
    const before = ledger.stats().written;
    await ledger.flush();
    expect(ledger.stats().written - before).toBe(600);
    const counted = await db.query<{ status: string; n: string; rows: string }>(
      `SELECT status, count(*) AS n FROM ${SCHEMA}.batches WHERE id = ANY($1::uuid[]) GROUP BY status`,
      [ids],
    );
    expect(Object.fromEntries(counted.rows.map((r) => [r.status, Number(r.n)]))).toEqual({
      dead_lettered: 200,
      sending: 400,
    });
    const counts = await ledger.counts();
    expect(counts.dead_lettered).toBe(200);
    const dead = await ledger.list({ status: 'dead_lettered', limit: 5 });
    expect(dead.map((r) => r.id)).toEqual(ids.slice(195, 200).reverse());
    expect(dead[0]).toMatchObject({ http_status: 422, error_message: 'http_422' });
  });

  it('openLedger picks PostgreSQL for a postgresql:// URL', async () => {
    const opened = await openLedger({
      databaseUrl: URL,
      spoolDir: '/nonexistent',
      logger,
      pg: { schema: SCHEMA },
    });
    try {
      expect(opened).toBeInstanceOf(PgLedger);
      expect(await opened.counts()).toMatchObject({ dead_lettered: 200 });
    } finally {
      await opened.close();
    }
  });
});

describe('PostgreSQL ledger, database unreachable', () => {
  it('never blocks or throws on the emitter-facing side', async () => {
    const down = new PgLedger('postgresql://postgres@127.0.0.1:1/test', {
      logger,
      schema: SCHEMA,
      flushIntervalMs: 5,
      retryInitialMs: 20,
      retryMaxMs: 100,
      maxQueued: 50,
      connectTimeoutMs: 1000,
      closeTimeoutMs: 1000,
    });
    const events = new EmitterEvents();
    attachLedger(events, down, DESTINATION);
    const started = performance.now();
    for (let i = 0; i < 100; i += 1) {
      const batchId = uuidv7();
      expect(() => {
        events.emit('sealed', { batchId, trigger: 'size', items: 1, rawBytes: 10, storedBytes: 10 });
        events.emit('sending', { batchId, attempt: 1 });
        events.emit('attempt', {
          batchId,
          attempt: 1,
          outcome: { kind: 'success', status: 200 },
          durationMs: 1,
        });
        events.emit('finished', { batchId, result: 'delivered', attempts: 1, createdAtMs: 0, items: 1 });
      }).not.toThrow();
    }
    expect(performance.now() - started).toBeLessThan(100); // record() returns at once

    const flushStarted = performance.now();
    await expect(down.flush()).resolves.toBeUndefined();
    expect(performance.now() - flushStarted).toBeLessThan(3000);
    await new Promise((r) => setTimeout(r, 300));
    const stats = down.stats();
    expect(stats.errors).toBeGreaterThanOrEqual(2); // retried with backoff
    expect(stats.lastError).toMatch(/ECONNREFUSED/);
    expect(stats.queued).toBe(50); // bounded
    expect(stats.dropped).toBe(200); // 4 updates of each of the 50 batches that found no room
    await expect(down.get(uuidv7())).rejects.toThrow(); // operator queries report the outage

    const closeStarted = performance.now();
    await expect(down.close()).resolves.toBeUndefined();
    expect(performance.now() - closeStarted).toBeLessThan(2500);
    expect(() => down.record({ id: uuidv7(), status: 'pending' })).not.toThrow();
  });
});
