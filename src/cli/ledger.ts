import { LEDGER_STATUSES, type LedgerRecord } from '../observe/ledger/index.js';
import { CommandError, EXIT_OK, out, parseArgs } from './common.js';
import { openLedgerToRead, type LedgerSource, type LedgerSourceOptions } from './ledger-source.js';

/**
 * `batch-emitter ledger list|show`: the batch ledger read from the command line, the same columns
 * from either ledger (LevelDB beside the spool, or PostgreSQL when TRANSMITTER_DATABASE_URL is
 * set, as the service chooses). Read-only.
 */

const LIST_USAGE = 'batch-emitter ledger list [--status S] [--since T] [--limit N] [--json]';
const SHOW_USAGE = 'batch-emitter ledger show <batch-id>';
const MAX_LIMIT = 100_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The columns `ledger list` shows, in order: the ledger table's, with shorter names. */
export const LEDGER_COLUMNS = [
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
] as const;

type Row = Record<(typeof LEDGER_COLUMNS)[number], string | number | null>;

export function rowOf(r: LedgerRecord): Row {
  return {
    id: r.id,
    status: r.status,
    items: r.item_count,
    bytes: r.payload_size,
    http: r.http_status,
    attempts: r.retry_count,
    created_at: r.created_at,
    sent_at: r.sent_at,
    completed_at: r.completed_at,
    error: r.error_message,
  };
}

function line(row: Row): string {
  return LEDGER_COLUMNS.map((column) => {
    const value = row[column];
    if (column === 'error') return `error=${value === null ? '-' : JSON.stringify(value)}`;
    return column === 'id' ? String(value) : `${column}=${value ?? '-'}`;
  }).join('  ');
}

/** `--since`: an ISO 8601 time, or a span back from now (`90s`, `15m`, `2h`, `7d`). */
export function sinceOf(text: string, now = Date.now()): number {
  const span = /^(\d{1,9})([smhd])$/.exec(text);
  if (span) return now - Number(span[1]) * (UNIT_MS[span[2] as string] as number);
  const ms = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms))
    throw new CommandError(
      `--since ${JSON.stringify(text)} is neither an ISO 8601 time nor a span like 15m, 2h, 7d`,
    );
  return ms;
}

function limitOf(text: string | undefined): number {
  if (text === undefined) return 100;
  const n = /^\d{1,6}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= MAX_LIMIT))
    throw new CommandError(`--limit ${JSON.stringify(text)} is not a whole number from 1 to ${MAX_LIMIT}`);
  return n;
}

function statusOf(text: string | undefined): string | undefined {
  if (text === undefined || (LEDGER_STATUSES as readonly string[]).includes(text)) return text;
  throw new CommandError(
    `--status ${JSON.stringify(text)} is not a ledger status: ${LEDGER_STATUSES.join(', ')}`,
  );
}

export const LEDGER_HELP = `Usage:
  ${LIST_USAGE}
  ${SHOW_USAGE}

The batch ledger, one record per batch: the ledger the service uses (PostgreSQL table
transmitter.batches when TRANSMITTER_DATABASE_URL is set, else the LevelDB <TRANSMITTER_SPOOL_DIR>/ledger,
which needs the emitter stopped). list shows, newest first: ${LEDGER_COLUMNS.join(', ')}.

  --status S   only records of one status: ${LEDGER_STATUSES.join(', ')}
  --since T    only batches created since T: an ISO 8601 time or a span back from now (90s, 15m, 2h, 7d)
  --limit N    at most N records (default 100, at most ${MAX_LIMIT})
  --json       the rows as JSON
show prints one record as JSON with its trace facts (seal trigger, stream sequences, attempts).
`;

type OnLedger = (source: LedgerSource) => Promise<number>;

function list(args: string[]): OnLedger {
  const { positional, flags, values } = parseArgs(
    args,
    { flags: ['--json'], values: ['--status', '--since', '--limit'] },
    LIST_USAGE,
  );
  if (positional.length > 0)
    throw new CommandError(`unexpected argument ${positional[0]}; usage: ${LIST_USAGE}`);
  const status = statusOf(values.get('--status'));
  const since = values.has('--since') ? sinceOf(values.get('--since') as string) : undefined;
  const limit = limitOf(values.get('--limit'));
  return async ({ ledger }) => {
    const records = await ledger.list({ status, since, limit });
    const rows = records.map(rowOf);
    if (flags.has('--json')) out(JSON.stringify(rows, null, 2));
    else if (rows.length === 0) out('no ledger records match');
    else out(...rows.map(line));
    return EXIT_OK;
  };
}

function show(args: string[]): OnLedger {
  const { positional } = parseArgs(args, {}, SHOW_USAGE);
  const [id, extra] = positional;
  if (id === undefined || extra !== undefined)
    throw new CommandError(`give one batch id; usage: ${SHOW_USAGE}`);
  if (!UUID.test(id)) throw new CommandError(`${JSON.stringify(id)} is not a batch id (a UUID)`);
  return async ({ ledger, where }) => {
    const record = await ledger.get(id.toLowerCase());
    if (!record) throw new CommandError(`no ledger record of batch ${id} in the ${where}`);
    const { trace, ...columns } = record;
    out(JSON.stringify({ ...rowOf(columns), trace: trace ?? null }, null, 2));
    return EXIT_OK;
  };
}

const SUBCOMMANDS: Record<string, (args: string[]) => OnLedger> = { list, show };

export async function ledgerCommand(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  options: LedgerSourceOptions = {},
): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    out(LEDGER_HELP.trimEnd());
    return EXIT_OK;
  }
  const [sub, ...rest] = args;
  const prepare = sub === undefined ? undefined : SUBCOMMANDS[sub];
  if (!prepare)
    throw new CommandError(
      sub === undefined
        ? 'ledger needs a command: list or show; see batch-emitter --help'
        : `unknown ledger command ${JSON.stringify(sub)}; see batch-emitter --help`,
    );
  const run = prepare(rest);
  const source = await openLedgerToRead(env, options);
  if (!source) throw new CommandError('no ledger yet: the emitter has not run on this spool');
  try {
    return await run(source);
  } catch (error) {
    if (error instanceof CommandError) throw error;
    throw new CommandError(`cannot read the ledger (${source.where}): ${(error as Error).message}`);
  } finally {
    await source.ledger.close();
  }
}
