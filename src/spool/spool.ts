import { chmod, mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { z } from 'zod';
import type { Logger } from '../util/logger.js';
import { SpoolError, SpoolHandle, type Db, type Written } from './handle.js';

export { SpoolError, type Written };

/**
 * The spool: LevelDB write-ahead log of every sealed batch. A batch is written atomically
 * (its state record and its body in one synced LevelDB batch) before any of its source messages
 * is acknowledged, and stays until delivered (deleted), split (replaced by its halves) or
 * dead-lettered (moved aside, replayable). Keys are UUIDv7 batch ids, so listing is oldest first.
 */

const BatchStateSchema = z.object({
  v: z.literal(1),
  id: z.string(),
  createdAt: z.string(),
  itemCount: z.number().int().nonnegative(),
  rawBytes: z.number().int().nonnegative(),
  storedBytes: z.number().int().nonnegative(),
  encoding: z.enum(['gzip', 'identity']),
  subjects: z.array(z.string()),
  attempts: z.number().int().nonnegative(),
  /** epoch ms before which no attempt is made (backoff or parking survive a restart) */
  notBefore: z.number().optional(),
  parked: z.boolean().optional(),
  lastError: z.string().optional(),
  parentId: z.string().optional(),
  /** CRC-32 of the stored body: a body overwritten on disk is quarantined, never sent */
  crc32: z.number().int().optional(),
});
export type BatchState = z.output<typeof BatchStateSchema>;

export interface SpooledBatch {
  state: BatchState;
  body: Buffer;
}

export interface DeadLetter {
  id: string;
  kind: 'batch' | 'message';
  reason: string;
  at: string;
  status?: number;
  bodyExcerpt?: string;
  subjects: string[];
  /** for batches: the spooled state at the time; for messages: where it came from */
  batch?: BatchState;
  message?: { subject: string; seq: number | null; rawBase64: string; rawBytes: number; truncated: boolean };
  history?: unknown[];
}

export interface QuarantineEntry {
  key: string;
  reason: string;
}

export interface SpoolStats {
  batches: number;
  bytes: number;
  oldestCreatedAt?: string;
  deadLetters: number;
  deadLetterBytes: number;
  quarantined: number;
  quarantinedBytes: number;
}

/** What the spool holds beside its live batches: it counts toward the spool's size and limit. */
interface AsideCounts {
  deadLetters: number;
  deadLetterBytes: number;
  quarantined: number;
  quarantinedBytes: number;
}

/** Bytes a dead letter takes: its record, and the batch body kept beside it. */
function deadLetterSize(text: string): number {
  let body = 0;
  try {
    body = (JSON.parse(text) as Partial<DeadLetter>).batch?.storedBytes ?? 0;
  } catch {
    // an unreadable record still takes its own bytes
  }
  return Buffer.byteLength(text) + body;
}

export interface SpoolOptions {
  logger?: Logger;
  /** after each reopen (following a failed operation), once what the spool holds was re-read */
  onReopened?: () => void;
}

async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

/** LevelDB creates its files with the process umask; tighten whatever is already there. */
async function tightenFiles(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile()) await chmod(join(dir, entry.name), 0o600).catch(() => undefined);
  }
}

function decodeState(text: string): BatchState | undefined {
  try {
    const parsed = BatchStateSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Why a stored body cannot be trusted, or undefined when it can. */
function bodyProblem(state: BatchState, body: Buffer | undefined): string | undefined {
  if (body === undefined) return 'body missing';
  if (state.crc32 !== undefined && crc32(body) !== state.crc32) return 'body checksum mismatch';
  return undefined;
}

const seqKey = (seq: number) => seq.toString().padStart(16, '0');

/** Sorted runs of consecutive sequences: one index entry per run, not per message. */
export function seqRanges(seqs: readonly number[]): Array<[number, number]> {
  const sorted = [...seqs].sort((a, b) => a - b);
  const runs: Array<[number, number]> = [];
  for (const seq of sorted) {
    const last = runs[runs.length - 1];
    if (last && seq <= last[1] + 1) last[1] = Math.max(last[1], seq);
    else runs.push([seq, seq]);
  }
  return runs;
}

/** A batch set aside because it could not be read, as quarantineBatch kept it. */
export interface QuarantinedBatch {
  id: string;
  reason: string;
  /** the state record's text, when there was one */
  state?: string;
  /** the stored body, when there was one */
  bodyBase64?: string;
}

function parseQuarantined(id: string, text: string): QuarantinedBatch {
  try {
    const kept = JSON.parse(text) as { reason?: unknown; state?: unknown; bodyBase64?: unknown };
    return {
      id,
      reason: String(kept.reason ?? 'unknown'),
      state: typeof kept.state === 'string' ? kept.state : undefined,
      bodyBase64: typeof kept.bodyBase64 === 'string' ? kept.bodyBase64 : undefined,
    };
  } catch {
    return { id, reason: 'unknown' };
  }
}

export class Spool {
  private liveBytes = 0;
  private liveCount = 0;
  /** dead letters and quarantine, counted once (see countAside) and kept up to date on each move */
  private aside?: AsideCounts;
  private highestSeq = 0;
  private readonly states;
  private readonly bodies;
  private readonly dead;
  private readonly deadBodies;
  private readonly quarantine;
  /** JetStream stream sequence -> id of the batch holding that message (until the ack floor passes it) */
  private readonly seqIndex;
  private readonly meta;

  private readonly db: Db;

  private constructor(
    readonly dir: string,
    /** the one LevelDB handle of this directory: generations, reopen after a failure, identity */
    readonly handle: SpoolHandle,
  ) {
    const db = handle.db;
    this.db = db;
    this.states = db.sublevel<string, string>('s', { valueEncoding: 'utf8' });
    this.bodies = db.sublevel<string, Buffer>('b', { valueEncoding: 'buffer' });
    this.dead = db.sublevel<string, string>('d', { valueEncoding: 'utf8' });
    this.deadBodies = db.sublevel<string, Buffer>('db', { valueEncoding: 'buffer' });
    this.quarantine = db.sublevel<string, string>('q', { valueEncoding: 'utf8' });
    this.seqIndex = db.sublevel<string, string>('x', { valueEncoding: 'utf8' });
    this.meta = db.sublevel<string, string>('m', { valueEncoding: 'utf8' });
  }

  /** Every sublevel: closing the database closes them, a reopen must open each again. */
  private sublevels() {
    return [this.states, this.bodies, this.dead, this.deadBodies, this.quarantine, this.seqIndex, this.meta];
  }

  /**
   * Open (creating 0700) the spool directory. Undecodable batch records are quarantined. Another
   * process holding it is SPOOL_LOCKED.
   */
  static async open(dir: string, options: SpoolOptions = {}): Promise<Spool> {
    await ensurePrivateDir(dir);
    const handle = await SpoolHandle.open(dir, { createIfMissing: true, logger: options.logger });
    try {
      await tightenFiles(dir);
      const spool = new Spool(dir, handle);
      await spool.recount();
      await spool.loadHighestSeq();
      handle.afterReopen = () => spool.reread();
      handle.onReopened = options.onReopened;
      handle.watchIdentity();
      return spool;
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Open an existing spool for an operator command (batch-emitter dlq / spool): never creates the
   * directory or the database (SPOOL_NOT_FOUND), reports a spool held by another process as
   * SPOOL_LOCKED, and counts the records without quarantining any, so opening changes nothing.
   */
  static async openExisting(dir: string): Promise<Spool> {
    const isDb = await stat(join(dir, 'CURRENT')).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!isDb) throw new SpoolError('SPOOL_NOT_FOUND', `no spool at ${dir}`);
    const handle = await SpoolHandle.open(dir, { createIfMissing: false });
    try {
      await tightenFiles(dir);
      const spool = new Spool(dir, handle);
      for await (const [id, text] of spool.states.iterator()) {
        const state = decodeState(text);
        if (!state || state.id !== id) continue;
        spool.liveBytes += state.storedBytes;
        spool.liveCount += 1;
      }
      return spool;
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  /** After a reopen: the sublevels open again, the totals and the index are read from disk again. */
  private async reread(): Promise<void> {
    await Promise.all(this.sublevels().map((sub) => sub.open()));
    const highest = this.highestSeq;
    await this.recount();
    await this.loadHighestSeq();
    this.highestSeq = Math.max(highest, this.highestSeq);
  }

  /** Every state record, oldest first, with its decoded state (undefined when it does not decode). */
  async inspectStates(): Promise<Array<{ id: string; state?: BatchState }>> {
    const out: Array<{ id: string; state?: BatchState }> = [];
    for await (const [id, text] of this.states.iterator()) {
      const state = decodeState(text);
      out.push(state && state.id === id ? { id, state } : { id });
    }
    return out;
  }

  get bytes(): number {
    return this.liveBytes;
  }

  get deadLetterCount(): number {
    return this.aside?.deadLetters ?? 0;
  }

  get deadLetterBytes(): number {
    return this.aside?.deadLetterBytes ?? 0;
  }

  get quarantinedCount(): number {
    return this.aside?.quarantined ?? 0;
  }

  get quarantinedBytes(): number {
    return this.aside?.quarantinedBytes ?? 0;
  }

  /** Everything the spool holds: live batches, dead letters and quarantine. The byte limit is on this. */
  get usedBytes(): number {
    return this.liveBytes + this.deadLetterBytes + this.quarantinedBytes;
  }

  /** Count dead letters and quarantined batches (one scan of their records, no bodies read). */
  private async countAside(): Promise<AsideCounts> {
    const counts: AsideCounts = { deadLetters: 0, deadLetterBytes: 0, quarantined: 0, quarantinedBytes: 0 };
    for await (const text of this.dead.values()) {
      counts.deadLetters += 1;
      counts.deadLetterBytes += deadLetterSize(text);
    }
    for await (const text of this.quarantine.values()) {
      counts.quarantined += 1;
      counts.quarantinedBytes += Buffer.byteLength(text);
    }
    this.aside = counts;
    return counts;
  }

  private async asideCounts(): Promise<AsideCounts> {
    return this.aside ?? this.countAside();
  }

  /** Keep the counts of what is set aside in step with a move (no-op before they were counted). */
  private countMove(change: Partial<AsideCounts>): void {
    if (!this.aside) return;
    for (const key of Object.keys(change) as Array<keyof AsideCounts>) {
      this.aside[key] = Math.max(0, this.aside[key] + (change[key] ?? 0));
    }
  }

  /** The highest stream sequence in the index (kept after pruning: pruning is below the ack floor). */
  get highestIndexedSeq(): number {
    return this.highestSeq;
  }

  private async loadHighestSeq(): Promise<void> {
    const [last] = await this.seqIndex.keys({ reverse: true, limit: 1 }).all();
    this.highestSeq = last === undefined ? 0 : Number(last.slice(0, 16));
  }

  get isOpen(): boolean {
    return this.handle.isOpen;
  }

  get count(): number {
    return this.liveCount;
  }

  /** Scan all state records once: totals, and quarantine of records that cannot be read. */
  private async recount(): Promise<void> {
    this.liveBytes = 0;
    this.liveCount = 0;
    const bad: QuarantineEntry[] = [];
    for await (const [id, text] of this.states.iterator()) {
      const state = decodeState(text);
      if (!state || state.id !== id) {
        bad.push({ key: id, reason: 'state record does not decode' });
        continue;
      }
      this.liveBytes += state.storedBytes;
      this.liveCount += 1;
    }
    for (const entry of bad) await this.quarantineBatch(entry.key, entry.reason);
    await this.countAside();
  }

  /**
   * Write a sealed batch durably (synced) and atomically, with the stream sequences of its source
   * messages, so a redelivered message can be recognised as already spooled. Resolves with the
   * handle generation it was written on once the directory is confirmed to be still the one
   * opened (one stat per batch); acknowledge its sources only while `isSound(written)` holds.
   * Writing a batch again (after a reopen) is harmless: same keys, counted once.
   */
  async put(state: BatchState, body: Buffer, seqs: readonly number[] = []): Promise<Written> {
    const written = await this.handle.run(
      async () => {
        const generation = this.handle.generation;
        const known = (await this.states.get(state.id)) !== undefined;
        await this.db.batch<string, string | Buffer>(
          [
            { type: 'put', sublevel: this.states, key: state.id, value: JSON.stringify(state) },
            { type: 'put', sublevel: this.bodies, key: state.id, value: body },
            ...seqRanges(seqs).map(([first, last]) => ({
              type: 'put' as const,
              sublevel: this.seqIndex,
              key: `${seqKey(last)}!${state.id}`,
              value: `${first} ${state.id}`,
            })),
          ],
          { sync: true },
        );
        if (!known) {
          this.liveBytes += state.storedBytes;
          this.liveCount += 1;
        }
        for (const seq of seqs) if (seq > this.highestSeq) this.highestSeq = seq;
        return { generation };
      },
      { strict: true },
    );
    const replaced = await this.handle.checkIdentity();
    if (replaced !== undefined)
      throw new SpoolError('SPOOL_REPLACED', `spool directory replaced: ${replaced}`);
    return written;
  }

  /** Whether a batch written on `written`'s handle generation may be acknowledged now. */
  isSound(written: Written): boolean {
    return this.handle.isSound(written);
  }

  /** Why the spool directory is no longer the one opened (deleted or replaced), if it is not. */
  get replaced(): string | undefined {
    return this.handle.replaced;
  }

  /**
   * The sequence index belongs to one incarnation of one stream: when the stream is another one
   * (deleted and re-created, or renamed), forget the index so old sequences cannot match new ones.
   */
  async bindSeqIndex(incarnation: string): Promise<void> {
    const current = await this.meta.get('seqIndexStream');
    if (current === incarnation) return;
    await this.seqIndex.clear();
    await this.meta.put('seqIndexStream', incarnation);
    this.highestSeq = 0;
  }

  /** The batch that took the message with this stream sequence, if it is still indexed. */
  async batchOfSeq(seq: number): Promise<string | undefined> {
    // entries are keyed by the last sequence of a run: the first few ending at or after `seq`
    for await (const value of this.seqIndex.values({ gte: seqKey(seq), limit: 4 })) {
      const [first, batchId] = value.split(' ');
      if (Number(first) <= seq) return batchId;
    }
    return undefined;
  }

  /** Forget sequences at or below the consumer's ack floor: they are never redelivered. */
  async pruneSeqs(ackFloor: number): Promise<number> {
    const keys = await this.seqIndex.keys({ lt: seqKey(ackFloor + 1), limit: 100_000 }).all();
    if (keys.length > 0) await this.seqIndex.batch(keys.map((key) => ({ type: 'del' as const, key })));
    return keys.length;
  }

  async getState(id: string): Promise<BatchState | undefined> {
    const text = await this.states.get(id);
    return text === undefined ? undefined : decodeState(text);
  }

  /** The batch with its body, or undefined if it is gone; an unreadable record is quarantined. */
  async get(id: string): Promise<SpooledBatch | undefined> {
    const [text, body] = await Promise.all([this.states.get(id), this.bodies.get(id)]);
    if (text === undefined) return undefined;
    const state = decodeState(text);
    const problem = !state ? 'state record does not decode' : bodyProblem(state, body);
    if (problem !== undefined || !state || !body) {
      await this.quarantineBatch(id, problem ?? 'body missing');
      return undefined;
    }
    return { state, body };
  }

  /** Record attempts / backoff. Not synced: losing it in an OS crash only costs an early retry. */
  async updateState(state: BatchState): Promise<void> {
    if ((await this.states.get(state.id)) === undefined) return;
    await this.states.put(state.id, JSON.stringify(state));
  }

  /** Delivered: remove the batch. */
  async delete(id: string): Promise<void> {
    const state = await this.getState(id);
    await this.db.batch<string, string | Buffer>(
      [
        { type: 'del', sublevel: this.states, key: id },
        { type: 'del', sublevel: this.bodies, key: id },
      ],
      {},
    );
    if (state) this.forget(state);
  }

  /** Replace a batch by its parts in one synced write (a 413 split). */
  async replace(parentId: string, parts: Array<{ state: BatchState; body: Buffer }>): Promise<void> {
    const parent = await this.getState(parentId);
    await this.db.batch<string, string | Buffer>(
      [
        { type: 'del', sublevel: this.states, key: parentId },
        { type: 'del', sublevel: this.bodies, key: parentId },
        ...parts.flatMap((p) => [
          { type: 'put' as const, sublevel: this.states, key: p.state.id, value: JSON.stringify(p.state) },
          { type: 'put' as const, sublevel: this.bodies, key: p.state.id, value: p.body },
        ]),
      ],
      { sync: true },
    );
    if (parent) this.forget(parent);
    for (const p of parts) {
      this.liveBytes += p.state.storedBytes;
      this.liveCount += 1;
    }
  }

  /** Move a batch to the dead letters, body and all, in one synced write. */
  /** Returns false when the batch is no longer in the spool (e.g. quarantined). */
  async deadLetterBatch(id: string, letter: Omit<DeadLetter, 'id' | 'kind' | 'batch'>): Promise<boolean> {
    const batch = await this.get(id);
    if (!batch) return false;
    const record: DeadLetter = { ...letter, id, kind: 'batch', batch: batch.state };
    const text = JSON.stringify(record);
    await this.db.batch<string, string | Buffer>(
      [
        { type: 'del', sublevel: this.states, key: id },
        { type: 'del', sublevel: this.bodies, key: id },
        { type: 'put', sublevel: this.dead, key: id, value: text },
        { type: 'put', sublevel: this.deadBodies, key: id, value: batch.body },
      ],
      { sync: true },
    );
    this.forget(batch.state);
    this.countMove({ deadLetters: 1, deadLetterBytes: deadLetterSize(text) });
    return true;
  }

  /** Keep a message that could not be decoded or validated (synced before it is terminated). */
  async deadLetterMessage(letter: DeadLetter): Promise<void> {
    const text = JSON.stringify(letter);
    await this.db.batch<string, string | Buffer>(
      [{ type: 'put', sublevel: this.dead, key: letter.id, value: text }],
      {
        sync: true,
      },
    );
    this.countMove({ deadLetters: 1, deadLetterBytes: deadLetterSize(text) });
  }

  async listDeadLetters(limit = Infinity): Promise<DeadLetter[]> {
    const out: DeadLetter[] = [];
    for await (const [key, text] of this.dead.iterator()) {
      if (out.length >= limit) break;
      try {
        out.push(JSON.parse(text) as DeadLetter);
      } catch {
        out.push({
          id: key,
          kind: 'batch',
          reason: 'dead letter record does not decode',
          at: '',
          subjects: [],
        });
      }
    }
    return out;
  }

  async getDeadLetter(id: string): Promise<{ letter: DeadLetter; body?: Buffer } | undefined> {
    const text = await this.dead.get(id);
    if (text === undefined) return undefined;
    return { letter: JSON.parse(text) as DeadLetter, body: await this.deadBodies.get(id) };
  }

  /** Put a dead-lettered batch back into the spool with a fresh attempt count. */
  async replayDeadLetter(id: string): Promise<boolean> {
    const text = await this.dead.get(id);
    const found = await this.getDeadLetter(id);
    if (text === undefined || !found?.letter.batch || !found.body) return false;
    const state: BatchState = { ...found.letter.batch, attempts: 0, notBefore: undefined, parked: false };
    await this.db.batch<string, string | Buffer>(
      [
        { type: 'del', sublevel: this.dead, key: id },
        { type: 'del', sublevel: this.deadBodies, key: id },
        { type: 'put', sublevel: this.states, key: id, value: JSON.stringify(state) },
        { type: 'put', sublevel: this.bodies, key: id, value: found.body },
      ],
      { sync: true },
    );
    this.liveBytes += state.storedBytes;
    this.liveCount += 1;
    this.countMove({ deadLetters: -1, deadLetterBytes: -deadLetterSize(text) });
    return true;
  }

  async purgeDeadLetter(id: string): Promise<void> {
    const text = await this.dead.get(id);
    await this.db.batch<string, string | Buffer>(
      [
        { type: 'del', sublevel: this.dead, key: id },
        { type: 'del', sublevel: this.deadBodies, key: id },
      ],
      {},
    );
    if (text !== undefined) this.countMove({ deadLetters: -1, deadLetterBytes: -deadLetterSize(text) });
  }

  /** Batch ids, oldest first, strictly after `after` when given. */
  async listIds(options: { after?: string; limit?: number } = {}): Promise<string[]> {
    const range = options.after === undefined ? {} : { gt: options.after };
    return this.states.keys({ ...range, limit: options.limit ?? -1 }).all();
  }

  async listStates(options: { after?: string; limit?: number } = {}): Promise<BatchState[]> {
    const range = options.after === undefined ? {} : { gt: options.after };
    const out: BatchState[] = [];
    for await (const [, text] of this.states.iterator({ ...range, limit: options.limit ?? -1 })) {
      const state = decodeState(text);
      if (state) out.push(state);
    }
    return out;
  }

  async stats(): Promise<SpoolStats> {
    const [oldest] = await this.listStates({ limit: 1 });
    return {
      batches: this.liveCount,
      bytes: this.liveBytes,
      oldestCreatedAt: oldest?.createdAt,
      ...(await this.asideCounts()),
    };
  }

  /** Read every record; report the ones that do not decode. Changes nothing. */
  async verify(decodeBody: (state: BatchState, body: Buffer) => Promise<void>): Promise<QuarantineEntry[]> {
    const problems: QuarantineEntry[] = [];
    for await (const [id, text] of this.states.iterator()) {
      const state = decodeState(text);
      if (!state) {
        problems.push({ key: id, reason: 'state record does not decode' });
        continue;
      }
      const body = await this.bodies.get(id);
      const problem = bodyProblem(state, body);
      if (problem !== undefined || !body) {
        problems.push({ key: id, reason: problem ?? 'body missing' });
        continue;
      }
      await decodeBody(state, body).catch((error: unknown) =>
        problems.push({ key: id, reason: `body does not decode: ${(error as Error).message}` }),
      );
    }
    for await (const [key, text] of this.quarantine.iterator()) {
      problems.push({ key, reason: `quarantined earlier: ${parseQuarantined(key, text).reason}` });
    }
    return problems;
  }

  /** The batches set aside, oldest id first, with what was kept of them. */
  async quarantinedBatches(): Promise<QuarantinedBatch[]> {
    const kept: QuarantinedBatch[] = [];
    for await (const [id, text] of this.quarantine.iterator()) kept.push(parseQuarantined(id, text));
    return kept;
  }

  /** Delete what was kept of a quarantined batch (an operator's decision: it is never sent). */
  async purgeQuarantined(id: string): Promise<void> {
    const text = await this.quarantine.get(id);
    await this.db.batch<string, string | Buffer>([{ type: 'del', sublevel: this.quarantine, key: id }], {
      sync: true,
    });
    if (text !== undefined) this.countMove({ quarantined: -1, quarantinedBytes: -Buffer.byteLength(text) });
  }

  /** Set an unreadable batch aside (kept for inspection) so the rest can flow. */
  async quarantineBatch(id: string, reason: string): Promise<void> {
    const [text, body] = await Promise.all([this.states.get(id), this.bodies.get(id)]);
    const kept = JSON.stringify({ reason, state: text, bodyBase64: body?.toString('base64') });
    const earlier = await this.quarantine.get(id);
    await this.db.batch<string, string | Buffer>(
      [
        { type: 'put', sublevel: this.quarantine, key: id, value: kept },
        { type: 'del', sublevel: this.states, key: id },
        { type: 'del', sublevel: this.bodies, key: id },
      ],
      { sync: true },
    );
    const state = text === undefined ? undefined : decodeState(text);
    if (state) this.forget(state);
    this.countMove({
      quarantined: earlier === undefined ? 1 : 0,
      quarantinedBytes: Buffer.byteLength(kept) - (earlier === undefined ? 0 : Buffer.byteLength(earlier)),
    });
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  private forget(state: BatchState): void {
    this.liveBytes = Math.max(0, this.liveBytes - state.storedBytes);
    this.liveCount = Math.max(0, this.liveCount - 1);
  }
}

/**
 * Every other database operation of the spool runs through its handle: it waits for a reopen in
 * progress, and a failure (I/O error, background compaction error, EMFILE) marks the handle failed
 * so it is reopened, then the operation runs once more on the fresh handle. A dead-lettered
 * message is terminated after its write, so that write is refused once the directory was replaced.
 */
const GUARDED: Array<[name: keyof Spool, strict: boolean]> = [
  ['inspectStates', false],
  ['bindSeqIndex', false],
  ['batchOfSeq', false],
  ['pruneSeqs', false],
  ['getState', false],
  ['get', false],
  ['updateState', false],
  ['delete', false],
  ['replace', false],
  ['deadLetterBatch', false],
  ['deadLetterMessage', true],
  ['listDeadLetters', false],
  ['getDeadLetter', false],
  ['replayDeadLetter', false],
  ['purgeDeadLetter', false],
  ['listIds', false],
  ['listStates', false],
  ['stats', false],
  ['verify', false],
  ['quarantinedBatches', false],
  ['purgeQuarantined', false],
  ['quarantineBatch', false],
];
type Operation = (this: Spool, ...args: unknown[]) => Promise<unknown>;
const proto = Spool.prototype as unknown as Record<string, Operation>;
for (const [name, strict] of GUARDED) {
  const operation = proto[name] as Operation;
  proto[name] = function (this: Spool, ...args: unknown[]) {
    return this.handle.run(() => operation.apply(this, args), { strict, retry: true });
  };
}
