/**
 * The budget of batch bodies the delivery queue holds for first attempts (handed over by the
 * intake): a body is admitted only while fewer than `maxCount` are held and the bytes held stay
 * within `maxBytes`; one not admitted is read back from the spool like any other. It only counts:
 * the queue says when a body is taken in and when it is let go.
 */
export class HeldBodies {
  private count = 0;
  private bytes = 0;

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {}

  /** Take in a body of `bytes` if the budget allows; true when taken (let it go with `release`). */
  admit(bytes: number): boolean {
    if (this.count >= this.maxCount || this.bytes + bytes > this.maxBytes) return false;
    this.count += 1;
    this.bytes += bytes;
    return true;
  }

  release(bytes: number): void {
    this.count = Math.max(0, this.count - 1);
    this.bytes = Math.max(0, this.bytes - bytes);
  }

  get heldCount(): number {
    return this.count;
  }

  get heldBytes(): number {
    return this.bytes;
  }
}

/**
 * The memory a held body keeps alive: all of the buffer it is a view into (a body written in place
 * into a larger buffer, or cut from a pooled one, keeps the whole of it), never less than itself.
 */
export function retainedBytes(body: Uint8Array): number {
  return Math.max(body.byteLength, body.buffer.byteLength);
}
