import { join } from 'node:path';
import { pino } from 'pino';
import { ConfigError, OPTIONS } from '../config/index.js';
import { LEDGER_SUBDIR, LedgerLockedError, LevelLedger, type Ledger } from '../observe/ledger/index.js';
import { CommandError, spoolDirFromEnv } from './common.js';

/**
 * The batch ledger as the service chooses it (TRANSMITTER_DATABASE_URL: PostgreSQL, else the
 * LevelDB `<TRANSMITTER_SPOOL_DIR>/ledger`), opened to read for `batch-emitter ledger` and `trace`.
 */

export interface LedgerSource {
  ledger: Ledger;
  /** which ledger, for messages: `PostgreSQL transmitter.batches` or `LevelDB <dir>` */
  where: string;
}

/** For tests: the PostgreSQL schema (the service always uses `transmitter`). */
export interface LedgerSourceOptions {
  pgSchema?: string;
}

const quiet = pino({ level: 'silent' });

/** TRANSMITTER_DATABASE_URL checked as the service checks it (its value is never shown). */
export function databaseUrlFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  const name = 'TRANSMITTER_DATABASE_URL';
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const parsed = OPTIONS[name].kind.text.safeParse(raw);
  if (!parsed.success)
    throw new ConfigError(name, 'has a value that is not valid; expected postgresql://user@host:port/db');
  return parsed.data;
}

/**
 * The ledger to read, or undefined when there is none yet (no LevelDB ledger in the spool).
 * A LevelDB ledger held by a running emitter is a CommandError, unless `lockedOk` (then undefined).
 */
export async function openLedgerToRead(
  env: NodeJS.ProcessEnv,
  options: LedgerSourceOptions & { lockedOk?: boolean } = {},
): Promise<LedgerSource | undefined> {
  const url = databaseUrlFromEnv(env);
  if (url !== undefined) {
    const { PgLedger } = await import('../observe/ledger/pg-ledger.js');
    const ledger = new PgLedger(url, { logger: quiet, schema: options.pgSchema, connectTimeoutMs: 5000 });
    return { ledger, where: `PostgreSQL ${ledger.schema}.batches` };
  }
  const dir = join(spoolDirFromEnv(env), LEDGER_SUBDIR);
  try {
    const ledger = await LevelLedger.openToRead(dir, { logger: quiet });
    return ledger && { ledger, where: `LevelDB ${dir}` };
  } catch (error) {
    if (!(error instanceof LedgerLockedError))
      throw new CommandError(`cannot open the ledger ${dir}: ${(error as Error).message}`);
    if (options.lockedOk) return undefined;
    throw new CommandError(`the ledger ${dir} is in use by a running emitter; stop it first`);
  }
}
