import { open, stat, type FileHandle } from 'node:fs/promises';
import { crc32cBits, maskCrcBits } from './crc32c.js';

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
/** a LevelDB log is written in blocks: a record never spans one, fewer than a header's bytes left are zeros */
const BLOCK_BYTES = 32 * 1024;
/** the records written since the last look are read this much at a time (more than a block) */
const WALK_BYTES = 256 * 1024;

/** A record's checksum as its header stores it (read signed): masked CRC-32C of its type byte and its data. */
const maskedCrc = (typeAndData: Buffer): number => maskCrcBits(crc32cBits(typeAndData));

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
  /**
   * Where the first record not yet read whole starts, in each log (of that inode): every record
   * before it was read back sound (header and checksum) by some look.
   */
  private readonly walkedTo = new Map<string, { ino: number; at: number }>();
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
      (await this.headIsHole(path, s.ino)) ||
      (await this.recordsLost(path, s.ino, s.size))
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

  /**
   * The records written since the last look do not read back sound. Writes that were never looked
   * at can be cut off at or above the size last seen (whose last bytes then still read as seen):
   * LevelDB then writes on at its offset, and at the next start drops the rest of that block at
   * the hole (or at the record cut short), the records written after the cut with it. A record
   * still being written (shorter than its header says) is read again at the next look.
   */
  private async recordsLost(path: string, ino: number, size: number): Promise<boolean> {
    const from = this.walkedTo.get(path);
    let pos = from?.ino === ino ? from.at : 0;
    while (pos < size) {
      const want = Math.min(size - pos, WALK_BYTES);
      const bytes = await this.readAt(path, ino, pos, want);
      if (bytes === undefined) return false;
      if (bytes.length < want) return true;
      let at = 0;
      for (;;) {
        const left = BLOCK_BYTES - ((pos + at) % BLOCK_BYTES);
        if (left < LOG_HEADER_BYTES) {
          if (at + left > bytes.length) break;
          at += left;
          continue;
        }
        if (at + LOG_HEADER_BYTES > bytes.length) break;
        const length = bytes.readUInt16LE(at + 4);
        const type = bytes[at + 6] ?? 0;
        // type 0 is a hole; LevelDB writes types 1 to 4, each record within its block
        if (type < 1 || type > 4 || LOG_HEADER_BYTES + length > left) return true;
        const end = at + LOG_HEADER_BYTES + length;
        if (end > bytes.length) break;
        if (bytes.readInt32LE(at) !== maskedCrc(bytes.subarray(at + 6, end))) return true;
        at = end;
      }
      if (at === 0) break;
      pos += at;
    }
    const now = this.walkedTo.get(path);
    if (now === undefined || now.ino !== ino || now.at < pos) this.walkedTo.set(path, { ino, at: pos });
    return false;
  }

  /** The logs now in the directory: what is kept of any other goes. */
  keepOnly(paths: readonly string[]): void {
    for (const path of this.sizes.keys()) if (!paths.includes(path)) this.sizes.delete(path);
    for (const path of this.cut) if (!paths.includes(path)) this.cut.delete(path);
    for (const path of this.walkedTo.keys()) if (!paths.includes(path)) this.walkedTo.delete(path);
    if (this.held && !paths.includes(this.held.path)) void this.release();
  }

  /** Forget every size seen and let go of the descriptor (after a heal, and at close). */
  forget(): Promise<void> {
    this.sizes.clear();
    this.cut.clear();
    this.walkedTo.clear();
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
