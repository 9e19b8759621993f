import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { damagedError, isCorruption, SpoolError, SpoolHandle, type Db } from './handle.js';

/**
 * Repairing a spool LevelDB will not open (a table file or CURRENT deleted by hand, blocks lost by
 * the disk): LevelDB's repairer rebuilds the file index from the data files that are left and moves
 * those it cannot use into `lost/`. Records that were only in missing files are gone for good; the
 * rest opens again. Only ever run with no emitter on the spool: an open that reaches the damage
 * has held LevelDB's lock, so none did a moment ago.
 */

export type RepairCheck = { damaged: false } | { damaged: true; reason: string };

/** Read every record once: LevelDB only finds a damaged table block when something reads it. */
async function readAll(db: Db): Promise<void> {
  for await (const entry of db.iterator({ fillCache: false })) void entry;
}

/**
 * Whether the spool at `dir` opens and every record of it reads; SPOOL_LOCKED and other open
 * failures are thrown.
 */
export async function checkSpool(dir: string): Promise<RepairCheck> {
  let handle: SpoolHandle;
  try {
    handle = await SpoolHandle.open(dir, { createIfMissing: false });
  } catch (error) {
    if (error instanceof SpoolError && error.code === 'SPOOL_DAMAGED') {
      return { damaged: true, reason: error.message };
    }
    throw error;
  }
  try {
    await readAll(handle.db);
    return { damaged: false };
  } catch (error) {
    if (isCorruption(error)) return { damaged: true, reason: damagedError(dir, error).message };
    throw error;
  } finally {
    await handle.close();
  }
}

/** In Node, `level` is classic-level, whose static repair() its type declarations leave out. */
const levelRepair = (Level as unknown as { repair(dir: string): Promise<void> }).repair.bind(Level);

/**
 * Rebuild the index of a damaged spool; returns the table files it could not read (moved to
 * `lost/`; it archives the logs it converted and the old manifests there too).
 */
export async function repairSpool(dir: string): Promise<string[]> {
  await levelRepair(dir);
  const setAside = await readdir(join(dir, 'lost')).catch(() => [] as string[]);
  return setAside.filter((name) => /\.(ldb|sst)$/.test(name));
}
