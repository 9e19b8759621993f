import { open, stat, type FileHandle } from 'node:fs/promises';

/**
 * What the spool's identity check keeps of LevelDB's write-ahead logs between two looks: the
 * size each had (a log only grows), and a descriptor on the last log whose head it read, so that
 * the look every sealed batch pays reads the head without opening and closing the file. A log
 * of another inode under that name, or a read that fails, opens it afresh.
 */

/** a LevelDB log record header: checksum (4), length (2), type (1, never 0) */
const LOG_HEADER_BYTES = 7;
/** the last bytes of a log as seen, read again at the next look (LevelDB never rewrites them) */
const TAIL_BYTES = 32;

const isHole = (head: Buffer | undefined): boolean =>
  head?.length === LOG_HEADER_BYTES && head.every((byte) => byte === 0);

/** `length` bytes of a file from `position` (fewer at its end), on a descriptor opened for it. */
async function readFresh(path: string, position: number, length: number): Promise<Buffer | undefined> {
  const file = await open(path, 'r').catch(() => undefined);
  if (!file) return undefined;
  try {
    const out = Buffer.alloc(length);
    const { bytesRead } = await file.read(out, 0, length, position);
    return out.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

/** A log as last seen: its inode, size, and its last bytes (from `tailAt`). */
interface Seen {
  ino: number;
  size: number;
  tailAt: number;
  tail?: Buffer;
}

interface HeldLog {
  path: string;
  ino: number;
  file: Promise<FileHandle | undefined>;
}

export class LogWatch {
  private readonly sizes = new Map<string, Seen>();
  /**
   * Logs seen cut, until the next heal (`forget`) or until they leave the directory: a second
   * look that overlaps the heal must not read a cut log as sound just because the first look
   * already recorded its new size.
   */
  private readonly cut = new Set<string>();
  private held?: HeldLog;
  private closed = false;

  /**
   * LevelDB only appends to its log, so a log that shrank, or that starts with a hole (truncated,
   * e.g. by a `copytruncate` log rotation, then written on at the old offset), lost what recovery
   * needs. So did one of another inode under the same name (renamed away and created anew, as
   * logrotate's default does): LevelDB never reuses a log's number and goes on writing into the
   * renamed file, which the next start never reads.
   */
  async truncated(path: string): Promise<boolean> {
    if (this.cut.has(path)) return true;
    const s = await stat(path).catch(() => undefined);
    if (!s) return false;
    const seen = this.sizes.get(path);
    const tailAt = Math.max(0, s.size - TAIL_BYTES);
    this.sizes.set(path, { ino: s.ino, size: s.size, tailAt });
    const tail = await this.readAt(path, s.ino, tailAt, s.size - tailAt);
    // fewer bytes than the size just seen: cut between the two looks (recorded, that short tail
    // would hide the hole the writer leaves once it writes on at its old offset)
    const cutMeanwhile = tail !== undefined && tail.length < s.size - tailAt;
    const now = this.sizes.get(path);
    if (now?.ino === s.ino && now.size === s.size && now.tailAt === tailAt) now.tail = tail;
    const replaced = seen !== undefined && seen.ino !== s.ino;
    const shrank = seen !== undefined && s.size < seen.size;
    if (
      cutMeanwhile ||
      replaced ||
      shrank ||
      (await this.rewritten(path, seen)) ||
      (await this.headIsHole(path, s.ino))
    )
      this.cut.add(path);
    // a look that overlapped this one may have seen the cut (and recorded the size this one read)
    return this.cut.has(path);
  }

  /**
   * The last bytes seen read otherwise: the log was cut below its old end, past its head, and
   * written on at LevelDB's offset, which leaves a hole where acknowledged records were.
   */
  private async rewritten(path: string, seen: Seen | undefined): Promise<boolean> {
    if (seen?.tail === undefined || seen.tail.length === 0) return false;
    const again = await this.readAt(path, seen.ino, seen.tailAt, seen.tail.length);
    return again !== undefined && !again.equals(seen.tail);
  }

  /** The logs now in the directory: what is kept of any other goes. */
  keepOnly(paths: readonly string[]): void {
    for (const path of this.sizes.keys()) if (!paths.includes(path)) this.sizes.delete(path);
    for (const path of this.cut) if (!paths.includes(path)) this.cut.delete(path);
    if (this.held && !paths.includes(this.held.path)) void this.release();
  }

  /** Forget every size seen and let go of the descriptor (after a heal, and at close). */
  forget(): Promise<void> {
    this.sizes.clear();
    this.cut.clear();
    return this.release();
  }

  /** Let go of the descriptor for good: a look still running reads the head the old way. */
  close(): Promise<void> {
    this.closed = true;
    return this.forget();
  }

  private async headIsHole(path: string, ino: number): Promise<boolean> {
    return isHole(await this.readAt(path, ino, 0, LOG_HEADER_BYTES));
  }

  /** Bytes of the log (fewer at its end), on the descriptor kept for it; undefined if it cannot be opened. */
  private async readAt(
    path: string,
    ino: number,
    position: number,
    length: number,
  ): Promise<Buffer | undefined> {
    if (this.closed) return readFresh(path, position, length);
    if (this.held?.path !== path || this.held.ino !== ino) {
      void this.release();
      this.held = { path, ino, file: open(path, 'r').catch(() => undefined) };
    }
    const held = this.held;
    const file = await held.file;
    if (!file) {
      if (this.held === held) this.held = undefined;
      return undefined;
    }
    try {
      const out = Buffer.alloc(length);
      const { bytesRead } = await file.read(out, 0, length, position);
      return out.subarray(0, bytesRead);
    } catch {
      // let go of it (it may have been released meanwhile) and look the old way, whose error counts
      if (this.held === held) void this.release();
      return readFresh(path, position, length);
    }
  }

  private async release(): Promise<void> {
    const held = this.held;
    this.held = undefined;
    const file = await held?.file;
    await file?.close().catch(() => undefined);
  }
}
