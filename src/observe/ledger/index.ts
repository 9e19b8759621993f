import { join } from 'node:path';
import type { Logger } from '../../util/logger.js';
import { LevelLedger, type LevelLedgerOptions } from './level-ledger.js';
import type { PgLedgerOptions } from './pg-ledger.js';
import type { Ledger } from './ledger.js';

export * from './ledger.js';
export { LedgerLockedError, LevelLedger, type LevelLedgerOptions } from './level-ledger.js';
export type { PgLedgerOptions } from './pg-ledger.js';

export interface OpenLedgerOptions {
  /** postgresql://... : the ledger is `transmitter.batches` there; unset: LevelDB in the spool dir */
  databaseUrl?: string;
  spoolDir: string;
  logger: Logger;
  /** tuning for either backend (schema name, retention, queue bounds) */
  level?: Omit<LevelLedgerOptions, 'logger'>;
  pg?: Omit<PgLedgerOptions, 'logger'>;
}

/** The ledger directory inside the spool directory. */
export const LEDGER_SUBDIR = 'ledger';

/**
 * Open the batch ledger. With a PostgreSQL URL this does not connect (the first write does, and
 * retries while the database is down), so an unreachable database never delays start-up. Without
 * one it opens a LevelDB at `<spoolDir>/ledger`; open it AFTER the spool, whose open tightens
 * every entry of its directory to 0600 (this one is set back to 0700 here).
 */
export async function openLedger(opts: OpenLedgerOptions): Promise<Ledger> {
  const { databaseUrl, spoolDir, logger } = opts;
  if (databaseUrl) {
    // loaded only here: the PostgreSQL client costs ~3 MB of heap in every emitter that has no use for it
    const { PgLedger } = await import('./pg-ledger.js');
    const ledger = new PgLedger(databaseUrl, { ...opts.pg, logger });
    logger.info({ schema: ledger.schema }, 'ledger: PostgreSQL');
    return ledger;
  }
  const dir = join(spoolDir, LEDGER_SUBDIR);
  const ledger = await LevelLedger.open(dir, { ...opts.level, logger });
  logger.info({ dir }, 'ledger: LevelDB');
  return ledger;
}
