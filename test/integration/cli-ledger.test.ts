import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../harness/cli-process.js';
import { tempDir } from '../../harness/workload.js';
import { ledgerCommand } from '../../src/cli/ledger.js';
import { CommandError } from '../../src/cli/common.js';
import {
  LEDGER_SUBDIR,
  LevelLedger,
  MAX_ATTEMPT_FACTS,
  idFloorOfMs,
  type AttemptFact,
  type Ledger,
  type LedgerUpdate,
} from '../../src/observe/ledger/index.js';
import { PgLedger } from '../../src/observe/ledger/pg-ledger.js';

/**
 * `batch-emitter ledger list|show` on both ledgers, the LevelDB beside the spool and PostgreSQL
 * (127.0.0.1:5432, trust auth, database `test`; LEDGER_TEST_DATABASE_URL overrides): the same
 * records written to each read back as the same rows, and the trace facts (attempts appended
 * across writes, bounded) kept alike.
 */

const PG_URL = process.env.LEDGER_TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const SCHEMA = `ledger_cli_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
const logger = pino({ level: 'silent' });
const NOW = Date.now();
const MIN = 60_000;
/** A UUIDv7 of `ms` ago (n distinguishes ids of one millisecond). */
const idAgo = (ms: number, n: number) =>
  `${idFloorOfMs(NOW - ms).slice(0, -12)}${n.toString(16).padStart(12, '0')}`;

const delivered = idAgo(180 * MIN, 1);
const refused = idAgo(90 * MIN, 2);
const retrying = idAgo(10 * MIN, 3);
const fresh = idAgo(1 * MIN, 4);

const attempt = (n: number, atMs: number, extra: Partial<AttemptFact> = {}): AttemptFact => ({
  n,
  at: new Date(atMs).toISOString(),
  durationMs: 12,
  kind: 'retryable',
  status: 503,
  reason: 'http_503',
  breaker: { atStart: 'closed', after: 'closed' },
  ...extra,
});

/** The records both ledgers get, written in two rounds (attempts are appended, not replaced). */
function firstRound(): LedgerUpdate[] {
  const base = { destinationUrl: 'https://ingest.example.com/v1', payloadSize: 300 };
  return [
    {
      id: delivered,
      ...base,
      status: 'success',
      itemCount: 5,
      httpStatus: 200,
      retryCount: 1,
      createdAt: NOW - 180 * MIN,
      sentAt: NOW - 179 * MIN,
      completedAt: NOW - 179 * MIN,
      trace: { trigger: 'size', seqs: [[1, 5]], subjects: ['approved.domain'] },
      attempts: [attempt(1, NOW - 179 * MIN, { kind: 'success', status: 200, reason: undefined })],
    },
    {
      id: refused,
      ...base,
      status: 'dead_lettered',
      itemCount: 2,
      httpStatus: 400,
      errorMessage: 'http_400: schema mismatch',
      retryCount: 1,
      createdAt: NOW - 90 * MIN,
      sentAt: NOW - 89 * MIN,
      completedAt: NOW - 89 * MIN,
    },
    {
      id: retrying,
      ...base,
      status: 'retrying',
      itemCount: 3,
      httpStatus: 503,
      errorMessage: 'http_503',
      retryCount: 1,
      createdAt: NOW - 10 * MIN,
      sentAt: NOW - 9 * MIN,
      trace: {
        trigger: 'interval',
        seqs: [
          [6, 7],
          [9, 9],
        ],
      },
      attempts: [attempt(1, NOW - 9 * MIN)],
    },
    { id: fresh, ...base, status: 'pending', itemCount: 1, createdAt: NOW - MIN },
  ];
}

function secondRound(): LedgerUpdate[] {
  const more = Array.from({ length: MAX_ATTEMPT_FACTS + 4 }, (_, i) =>
    attempt(i + 2, NOW - 8 * MIN + i * 1000),
  );
  return [{ id: retrying, retryCount: MAX_ATTEMPT_FACTS + 5, attempts: more }];
}

async function fill(ledger: Ledger): Promise<void> {
  for (const round of [firstRound(), secondRound()]) {
    for (const update of round) ledger.record(update);
    await ledger.flush();
  }
}

/** `ledger <args>` in this process (the PostgreSQL schema is this run's own), stdout captured. */
async function ledgerOut(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const chunks: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    chunks.push(String(chunk));
    return true;
  });
  try {
    expect(await ledgerCommand(args, env, { pgSchema: SCHEMA })).toBe(0);
  } finally {
    spy.mockRestore();
  }
  return chunks.join('');
}

async function pgReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}
const pgAvailable = await pgReachable();
if (!pgAvailable) console.warn(`cli-ledger: no PostgreSQL at ${PG_URL}; its half skipped`);

const spool = await tempDir('cli-ledger');
const levelEnv = { TRANSMITTER_SPOOL_DIR: spool.path };
const pgEnv = { TRANSMITTER_SPOOL_DIR: spool.path, TRANSMITTER_DATABASE_URL: PG_URL };
let pgLedger: PgLedger | undefined;

afterAll(async () => {
  await pgLedger?.dropSchema().catch(() => undefined);
  await pgLedger?.close();
  await spool.remove();
});

/** What every query must show, whichever ledger holds the records. */
async function expectQueries(env: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  const list = JSON.parse(await ledgerOut(['list', '--json'], env)) as Array<Record<string, unknown>>;
  expect(list.map((r) => r.id)).toEqual([fresh, retrying, refused, delivered]);
  expect(Object.keys(list[0] ?? {})).toEqual([
    'id',
    'status',
    'items',
    'bytes',
    'http',
    'attempts',
    'created_at',
    'sent_at',
    'completed_at',
    'error',
  ]);
  expect(list[2]).toEqual({
    id: refused,
    status: 'dead_lettered',
    items: 2,
    bytes: 300,
    http: 400,
    attempts: 1,
    created_at: new Date(NOW - 90 * MIN).toISOString(),
    sent_at: new Date(NOW - 89 * MIN).toISOString(),
    completed_at: new Date(NOW - 89 * MIN).toISOString(),
    error: 'http_400: schema mismatch',
  });
  const bySince = JSON.parse(await ledgerOut(['list', '--since', '30m', '--json'], env)) as Array<{
    id: string;
  }>;
  expect(bySince.map((r) => r.id)).toEqual([fresh, retrying]);
  const since = new Date(NOW - 100 * MIN).toISOString();
  const byIso = JSON.parse(await ledgerOut(['list', `--since=${since}`, '--json'], env)) as Array<{
    id: string;
  }>;
  expect(byIso.map((r) => r.id)).toEqual([fresh, retrying, refused]);
  const byStatus = JSON.parse(await ledgerOut(['list', '--status', 'success', '--json'], env)) as Array<{
    id: string;
  }>;
  expect(byStatus.map((r) => r.id)).toEqual([delivered]);
  const limited = JSON.parse(await ledgerOut(['list', '--limit', '2', '--json'], env)) as Array<{
    id: string;
  }>;
  expect(limited.map((r) => r.id)).toEqual([fresh, retrying]);

  const shown = JSON.parse(await ledgerOut(['show', retrying], env)) as {
    status: string;
    attempts: number;
    trace: { trigger: string; seqs: number[][]; attempts: AttemptFact[] };
  };
  expect(shown).toMatchObject({ status: 'retrying', attempts: MAX_ATTEMPT_FACTS + 5 });
  expect(shown.trace.trigger).toBe('interval');
  expect(shown.trace.seqs).toEqual([
    [6, 7],
    [9, 9],
  ]);
  // 1 + MAX + 4 attempts written in two rounds: the newest MAX kept, oldest first
  expect(shown.trace.attempts.map((a) => a.n)).toEqual(
    Array.from({ length: MAX_ATTEMPT_FACTS }, (_, i) => i + 6),
  );
  expect(shown.trace.attempts[0]).toEqual(attempt(6, NOW - 8 * MIN + 4000));
  return {
    text: await ledgerOut(['list'], env),
    json: await ledgerOut(['list', '--json'], env),
    show: await ledgerOut(['show', delivered], env),
  };
}

async function expectFindBySeq(ledger: Ledger): Promise<void> {
  expect((await ledger.findBySeq(3))?.id).toBe(delivered);
  expect((await ledger.findBySeq(9))?.id).toBe(retrying);
  expect(await ledger.findBySeq(8)).toBeUndefined();
}

describe('batch-emitter ledger', () => {
  let levelShown: Record<string, string> | undefined;

  it('LevelDB: lists with --status, --since, --limit; shows a record with its trace; finds by sequence', async () => {
    const ledger = await LevelLedger.open(join(spool.path, LEDGER_SUBDIR), { logger, flushIntervalMs: 5 });
    await fill(ledger);
    await expectFindBySeq(ledger);
    // held by another process (as by a running emitter): a clear refusal, exit 1
    const locked = await runCli(levelEnv, ['ledger', 'list']);
    expect(locked.code).toBe(1);
    expect(locked.stderr).toContain('is in use by a running emitter; stop it first');
    await ledger.close();
    levelShown = await expectQueries(levelEnv);
    // the real command, as a process: the same lines
    const cli = await runCli(levelEnv, ['ledger', 'list']);
    expect(cli).toMatchObject({ code: 0, stderr: '' });
    expect(cli.stdout).toBe(levelShown.text);
    expect(cli.stdout.split('\n')[0]).toMatch(
      new RegExp(
        `^${fresh}  status=pending  items=1  bytes=300  http=-  attempts=0  created_at=\\S+  sent_at=-  completed_at=-  error=-$`,
      ),
    );
  });

  it.skipIf(!pgAvailable)(
    'PostgreSQL: the same rows, columns and trace facts as the LevelDB ledger',
    async () => {
      pgLedger = new PgLedger(PG_URL, { logger, schema: SCHEMA, flushIntervalMs: 5 });
      await fill(pgLedger);
      await expectFindBySeq(pgLedger);
      const pgShown = await expectQueries(pgEnv);
      expect(pgShown).toEqual(levelShown);
    },
  );

  it('refuses bad arguments and unknown ids, naming the problem', async () => {
    const refusal = (args: string[]) =>
      ledgerCommand(args, levelEnv).then(
        () => 'accepted',
        (e: CommandError) => e.message,
      );
    expect(await refusal(['list', '--status', 'done'])).toBe(
      '--status "done" is not a ledger status: pending, sending, retrying, success, parked, dead_lettered, split',
    );
    expect(await refusal(['list', '--since', 'yesterday'])).toContain('neither an ISO 8601 time nor a span');
    expect(await refusal(['list', '--limit', '0'])).toContain('not a whole number from 1 to 100000');
    expect(await refusal(['show', 'abc'])).toBe('"abc" is not a batch id (a UUID)');
    expect(await refusal(['show', idAgo(0, 9)])).toContain(`no ledger record of batch ${idAgo(0, 9)}`);
    const bad = await runCli({ ...levelEnv, TRANSMITTER_DATABASE_URL: 'mysql://x' }, ['ledger', 'list']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('TRANSMITTER_DATABASE_URL');
    expect(bad.stderr).not.toContain('mysql://x');
  });
});
