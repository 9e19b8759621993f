/**
 * What the spool holds, counted once per store: live batches, dead letters, quarantine. Each
 * module recounts its store at open and after a reopen, and reports every move here; the byte
 * limit reads `usedBytes`. It never touches the database itself.
 */

export type StoreName = 'batches' | 'deadLetters' | 'quarantine';

export interface Tally {
  count: number;
  bytes: number;
}

const NONE: Tally = { count: 0, bytes: 0 };

export class SpoolUsage {
  private readonly tallies = new Map<StoreName, Tally>();

  /** Replace a store's tally with a fresh count. */
  set(store: StoreName, tally: Tally): void {
    this.tallies.set(store, { ...tally });
  }

  /** Keep a store's tally in step with a move; nothing before the store was counted. */
  change(store: StoreName, count: number, bytes: number): void {
    const tally = this.tallies.get(store);
    if (!tally) return;
    tally.count = Math.max(0, tally.count + count);
    tally.bytes = Math.max(0, tally.bytes + bytes);
  }

  /** Operator commands count dead letters and quarantine only when asked (see `Spool.stats`). */
  counted(store: StoreName): boolean {
    return this.tallies.has(store);
  }

  private tally(store: StoreName): Tally {
    return { ...(this.tallies.get(store) ?? NONE) };
  }

  get batches(): Tally {
    return this.tally('batches');
  }

  get deadLetters(): Tally {
    return this.tally('deadLetters');
  }

  get quarantine(): Tally {
    return this.tally('quarantine');
  }

  /**
   * Everything the spool holds: live batches, dead letters and quarantine. The byte limit is on
   * this; intake reads it for every message, so it copies nothing.
   */
  get usedBytes(): number {
    let bytes = 0;
    for (const tally of this.tallies.values()) bytes += tally.bytes;
    return bytes;
  }
}
