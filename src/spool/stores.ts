import type { Db } from './handle.js';

/**
 * The stores of one spool database: LevelDB sublevels, named by the prefixes on disk (never
 * rename one: it would orphan what an older spool holds). Only the spool's modules use them.
 */

export function openStores(db: Db) {
  return {
    /** batch id -> state record (JSON) */
    states: db.sublevel<string, string>('s', { valueEncoding: 'utf8' }),
    /** batch id -> stored body */
    bodies: db.sublevel<string, Buffer>('b', { valueEncoding: 'buffer' }),
    /** id -> dead letter record (JSON) */
    deadLetters: db.sublevel<string, string>('d', { valueEncoding: 'utf8' }),
    /** batch id -> body of a dead-lettered batch */
    deadBodies: db.sublevel<string, Buffer>('db', { valueEncoding: 'buffer' }),
    /** batch id -> what was kept of an unreadable batch (JSON) */
    quarantine: db.sublevel<string, string>('q', { valueEncoding: 'utf8' }),
    /** last sequence of a run + batch id -> "first batchId" */
    seqIndex: db.sublevel<string, string>('x', { valueEncoding: 'utf8' }),
    /** small settings, e.g. the stream incarnation the sequence index is bound to */
    meta: db.sublevel<string, string>('m', { valueEncoding: 'utf8' }),
  };
}

export type Stores = ReturnType<typeof openStores>;
type Sublevel = Stores[keyof Stores];

/** Closing the database closes every sublevel: after a reopen each must be opened again. */
export async function reopenStores(stores: Stores): Promise<void> {
  await Promise.all(Object.values(stores).map((sublevel) => sublevel.open()));
}

export type WriteOp =
  | { type: 'put'; sublevel: Sublevel; key: string; value: string | Buffer }
  | { type: 'del'; sublevel: Sublevel; key: string };

export const put = (sublevel: Sublevel, key: string, value: string | Buffer): WriteOp => ({
  type: 'put',
  sublevel,
  key,
  value,
});

export const del = (sublevel: Sublevel, key: string): WriteOp => ({ type: 'del', sublevel, key });

/** One atomic LevelDB batch across stores; `sync` for moves that must survive an OS crash. */
export async function commit(db: Db, ops: WriteOp[], options: { sync: boolean }): Promise<void> {
  await db.batch<string, string | Buffer>(ops, { sync: options.sync });
}
