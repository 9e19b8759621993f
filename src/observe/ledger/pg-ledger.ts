import pg from 'pg';
import {
  MAX_ATTEMPT_FACTS,
  canonicalTrace,
  createdAtOfId,
  holdsSeq,
  type LedgerRecord,
  type LedgerTrace,
  type LedgerUpdate,
  type ListOptions,
} from './ledger.js';
import { QueuedLedger, type QueueOptions } from './queue.js';

/**
 * The ledger in PostgreSQL (TRANSMITTER_DATABASE_URL=postgresql://...): the
 * `transmitter.batches` table of the transmitter service, column for column. `status` also takes
 * 'split' (a parent replaced by two halves after a 413), which fits its VARCHAR(20); the only
 * addition is an index on status, which changes nothing for other readers or writers of the table.
 * The trace facts (seal trigger, stream sequences, each attempt) go to a table of their own beside
 * it, `batch_traces` (id, trace JSONB, seq_first, seq_last), written by the same statement, so the
 * `batches` table stays column for column.
 *
 * Each flush is one statement: the queued updates (one per batch) as a JSON array, upserted with
 * INSERT ... ON CONFLICT (id) DO UPDATE. A field an update does not carry keeps its stored value;
 * retry_count only grows (it counts attempts, the first one included); sent_at keeps the first
 * attempt's start. Timestamps are stored as UTC in that table's TIMESTAMP (without time zone).
 *
 * Nothing here blocks delivery: opening does not connect; the schema is created by the first write;
 * a connection error fails that write, which stays queued and is retried with backoff
 * (see QueuedLedger). Pool errors on idle clients are logged, never thrown.
 */

export interface PgLedgerOptions extends QueueOptions {
  /** default 'transmitter'; tests use a unique one per run */
  schema?: string;
  /** pool size (default 2) */
  maxConnections?: number;
  /** default 3 s */
  connectTimeoutMs?: number;
  /** default 10 s */
  queryTimeoutMs?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const COLUMNS = `id, status, item_count, payload_size, destination_url, http_status, error_message,
  retry_count, created_at, sent_at, completed_at`;

/** Timestamps read back as UTC instants (that table's columns are TIMESTAMP without time zone). */
const SELECT_COLUMNS = `id::text AS id, status, item_count, payload_size, destination_url, http_status,
  error_message, COALESCE(retry_count, 0) AS retry_count,
  created_at AT TIME ZONE 'UTC' AS created_at, sent_at AT TIME ZONE 'UTC' AS sent_at,
  completed_at AT TIME ZONE 'UTC' AS completed_at,
  (SELECT t.trace FROM TRACE_TABLE t WHERE t.id = b.id) AS trace`;

export class InvalidSchemaNameError extends Error {
  constructor(name: string) {
    super(`invalid ledger schema name ${JSON.stringify(name)}: expected [a-z_][a-z0-9_]*`);
    this.name = 'InvalidSchemaNameError';
  }
}

export function ddl(schema: string): string[] {
  return [
    `CREATE SCHEMA IF NOT EXISTS ${schema}`,
    `CREATE TABLE IF NOT EXISTS ${schema}.batches (
    id UUID PRIMARY KEY,
    status VARCHAR(20) NOT NULL DEFAULT 'pending',
    item_count INTEGER NOT NULL,
    payload_size INTEGER NOT NULL,
    destination_url TEXT NOT NULL,
    http_status INTEGER,
    error_message TEXT,
    retry_count INTEGER DEFAULT 0,
    created_at TIMESTAMP DEFAULT NOW(),
    sent_at TIMESTAMP,
    completed_at TIMESTAMP
)`,
    `CREATE INDEX IF NOT EXISTS batches_status_idx ON ${schema}.batches (status)`,
    // beside that table, so it stays column for column: what `batch-emitter trace` reads
    `CREATE TABLE IF NOT EXISTS ${schema}.batch_traces (
    id UUID PRIMARY KEY,
    trace JSONB NOT NULL,
    seq_first BIGINT,
    seq_last BIGINT
)`,
    `CREATE INDEX IF NOT EXISTS batch_traces_seq_last_idx ON ${schema}.batch_traces (seq_last)`,
  ];
}

function upsertSql(schema: string): string {
  return `WITH r AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(
    id uuid, status varchar(20), item_count integer, payload_size integer, destination_url text,
    http_status integer, error_message text, retry_count integer,
    created_at timestamp, sent_at timestamp, completed_at timestamp,
    trace jsonb, attempts jsonb, seq_first bigint, seq_last bigint)
), batch AS (
INSERT INTO ${schema}.batches AS b (${COLUMNS})
SELECT id, COALESCE(status, 'pending'), COALESCE(item_count, 0), COALESCE(payload_size, 0),
  COALESCE(destination_url, ''), http_status, error_message, COALESCE(retry_count, 0),
  COALESCE(created_at, now() AT TIME ZONE 'UTC'), sent_at, completed_at
FROM r
ON CONFLICT (id) DO UPDATE SET
  (status, item_count, payload_size, destination_url, http_status, error_message, retry_count,
   sent_at, completed_at) =
  (SELECT COALESCE(r.status, b.status), COALESCE(r.item_count, b.item_count),
     COALESCE(r.payload_size, b.payload_size), COALESCE(r.destination_url, b.destination_url),
     COALESCE(r.http_status, b.http_status), COALESCE(r.error_message, b.error_message),
     GREATEST(r.retry_count, b.retry_count), COALESCE(b.sent_at, r.sent_at),
     COALESCE(r.completed_at, b.completed_at)
   FROM r WHERE r.id = b.id)
RETURNING b.id
)
INSERT INTO ${schema}.batch_traces AS t (id, trace, seq_first, seq_last)
SELECT id, COALESCE(trace, '{}') || CASE WHEN attempts IS NULL THEN '{}'
    ELSE jsonb_build_object('attempts', attempts) END, seq_first, seq_last
FROM r WHERE trace IS NOT NULL OR attempts IS NOT NULL
ON CONFLICT (id) DO UPDATE SET (trace, seq_first, seq_last) =
  (SELECT t.trace || COALESCE(r.trace, '{}') || CASE WHEN r.attempts IS NULL THEN '{}'
     ELSE jsonb_build_object('attempts', (
       SELECT jsonb_agg(e ORDER BY o) FROM (
         SELECT e, o FROM jsonb_array_elements(COALESCE(t.trace->'attempts', '[]') || r.attempts)
           WITH ORDINALITY AS a(e, o)
         ORDER BY o DESC LIMIT ${MAX_ATTEMPT_FACTS}) AS kept)) END,
     COALESCE(r.seq_first, t.seq_first), COALESCE(r.seq_last, t.seq_last)
   FROM r WHERE r.id = t.id)`;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

function toRow(u: LedgerUpdate): Record<string, unknown> {
  return {
    id: u.id,
    status: u.status,
    item_count: u.itemCount,
    payload_size: u.payloadSize,
    destination_url: u.destinationUrl,
    http_status: u.httpStatus,
    error_message: u.errorMessage,
    retry_count: u.retryCount,
    created_at: iso(u.createdAt ?? createdAtOfId(u.id)),
    sent_at: iso(u.sentAt),
    completed_at: iso(u.completedAt),
    trace: u.trace,
    attempts: u.attempts,
    seq_first: u.trace?.seqs ? Math.min(...u.trace.seqs.map(([first]) => first)) : undefined,
    seq_last: u.trace?.seqs ? Math.max(...u.trace.seqs.map(([, last]) => last)) : undefined,
  };
}

/** A row as pg returns it: the record with its timestamps as Dates. */
type Row = Omit<LedgerRecord, 'created_at' | 'sent_at' | 'completed_at' | 'trace'> & {
  trace: LedgerTrace | null;
  created_at: Date | null;
  sent_at: Date | null;
  completed_at: Date | null;
};

function fromRow({ trace, ...row }: Row): LedgerRecord {
  return {
    ...row,
    ...(trace ? { trace: canonicalTrace(trace) } : {}),
    created_at: row.created_at?.toISOString() ?? new Date(0).toISOString(),
    sent_at: row.sent_at?.toISOString() ?? null,
    completed_at: row.completed_at?.toISOString() ?? null,
  };
}

/** 42P07 duplicate table / 23505 unique violation: two processes created the schema at once. */
const CONCURRENT_DDL = new Set(['42P07', '23505', '42P06']);

export class PgLedger extends QueuedLedger {
  readonly schema: string;
  private readonly pool: pg.Pool;
  private ready?: Promise<void>;
  private readonly upsert: string;
  private readonly select: string;

  constructor(databaseUrl: string, options: PgLedgerOptions) {
    super(options);
    this.schema = options.schema ?? 'transmitter';
    if (!SCHEMA_NAME.test(this.schema)) throw new InvalidSchemaNameError(this.schema);
    this.upsert = upsertSql(this.schema);
    this.select = SELECT_COLUMNS.replace('TRACE_TABLE', `${this.schema}.batch_traces`);
    this.pool = new pg.Pool({
      connectionString: databaseUrl,
      max: options.maxConnections ?? 2,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 3_000,
      query_timeout: options.queryTimeoutMs ?? 10_000,
      idleTimeoutMillis: 30_000,
      allowExitOnIdle: true,
      application_name: 'batch-emitter-ledger',
    });
    // an idle client losing its connection emits here; unhandled it would crash the process
    this.pool.on('error', (error) =>
      this.logger.warn({ err: error.message }, 'ledger database connection lost'),
    );
  }

  /** Create the schema and table once; a failure is forgotten so the next write tries again. */
  private ensureSchema(): Promise<void> {
    this.ready ??= (async () => {
      for (const statement of ddl(this.schema)) {
        try {
          await this.pool.query(statement);
        } catch (error) {
          if (!CONCURRENT_DDL.has((error as { code?: string }).code ?? '')) throw error;
        }
      }
    })().catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  protected async write(updates: LedgerUpdate[]): Promise<void> {
    // an id that is not a UUID would fail the whole statement on every retry: leave it out
    const valid = updates.filter((u) => UUID.test(u.id));
    if (valid.length < updates.length) {
      this.logger.warn(
        { skipped: updates.length - valid.length },
        'ledger: batch ids that are not UUIDs skipped',
      );
    }
    if (valid.length === 0) return;
    await this.ensureSchema();
    await this.pool.query(this.upsert, [JSON.stringify(valid.map(toRow))]);
  }

  async get(id: string): Promise<LedgerRecord | undefined> {
    if (!UUID.test(id)) return undefined;
    await this.ensureSchema();
    const result = await this.pool.query<Row>(
      `SELECT ${this.select} FROM ${this.schema}.batches b WHERE id = $1`,
      [id],
    );
    const row = result.rows[0];
    return row ? fromRow(row) : undefined;
  }

  async list(opts: ListOptions = {}): Promise<LedgerRecord[]> {
    await this.ensureSchema();
    const limit = Math.max(0, Math.floor(opts.limit ?? 100));
    const where: string[] = [];
    const params: unknown[] = [];
    if (opts.status !== undefined) {
      params.push(opts.status);
      where.push(`status = $${params.length}`);
    }
    if (opts.since !== undefined) {
      // ids are UUIDv7 (creation order); created_at is compared too for rows other writers made
      params.push(new Date(opts.since).toISOString());
      where.push(`created_at >= ($${params.length}::timestamptz AT TIME ZONE 'UTC')`);
    }
    params.push(limit);
    const result = await this.pool.query<Row>(
      `SELECT ${this.select} FROM ${this.schema}.batches b
       ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${params.length}`,
      params,
    );
    return result.rows.map(fromRow);
  }

  /** The newest row whose sequence span holds `seq` and whose trace holds it exactly. */
  async findBySeq(seq: number): Promise<LedgerRecord | undefined> {
    await this.ensureSchema();
    const result = await this.pool.query<Row>(
      `SELECT ${this.select} FROM ${this.schema}.batches b
       WHERE b.id IN (SELECT id FROM ${this.schema}.batch_traces
         WHERE seq_last >= $1 AND seq_first <= $1 ORDER BY id DESC LIMIT 100)
       ORDER BY b.id DESC`,
      [seq],
    );
    return result.rows.map(fromRow).find((record) => holdsSeq(record, seq));
  }

  async counts(): Promise<Record<string, number>> {
    await this.ensureSchema();
    const result = await this.pool.query<{ status: string; n: string }>(
      `SELECT status, count(*) AS n FROM ${this.schema}.batches GROUP BY status`,
    );
    return Object.fromEntries(result.rows.map((r) => [r.status, Number(r.n)]));
  }

  /** For tests and operators: drop this ledger's schema (and table). */
  async dropSchema(): Promise<void> {
    await this.pool.query(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`);
    this.ready = undefined;
  }

  protected async release(): Promise<void> {
    await this.pool.end();
  }
}
