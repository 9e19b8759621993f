/**
 * The members of one JSON array as UTF-8 bytes in one growing Buffer, written as they come. The
 * open batch's events live here instead of as strings on the JS heap: at full speed a batch's
 * strings lived just long enough to be promoted to the old generation, and sealing joined them
 * into one more string and encoded that again.
 */

import type { EventHead } from '../event-head.js';
import type { EventJson } from '../model.js';

/** Worst case UTF-8 bytes of a JS string: 3 per UTF-16 code unit (a surrogate pair is 4 for 2). */
export const MAX_UTF8_PER_UNIT = 3;
const FIRST_CAPACITY = 64 * 1024;
/** what a list leaves free after its members when it grows, for `take`'s `after` */
const TAKE_SLACK = 16;
const EMPTY = new Uint8Array(0);

export class JsonListBytes {
  private buf?: Buffer;
  /** the end of what is written; the members start at `headroom` */
  private used: number;
  /** the capacity the next list starts with: what the last one needed */
  private nextCapacity = FIRST_CAPACITY;

  /**
   * `headroom`: bytes kept free before the members, for what `take` puts in front of them (a
   * batch's envelope), so the whole document is one buffer written once, not joined afterwards.
   */
  constructor(private readonly headroom = 0) {
    this.used = headroom;
  }

  get byteLength(): number {
    return this.used - this.headroom;
  }

  /**
   * Append one member (valid JSON text, or in parts: see EventJson), after a comma unless it is
   * the first; returns the member's UTF-8 bytes (without the comma).
   */
  push(json: EventJson): number {
    if (typeof json !== 'string') return this.pushParts(json.head, json.data);
    const buf = this.room(1 + json.length * MAX_UTF8_PER_UNIT);
    if (this.used > this.headroom) buf[this.used++] = 0x2c; // ','
    const bytes = buf.write(json, this.used, 'utf8');
    this.used += bytes;
    return bytes;
  }

  /** A member in parts (see EventJson): `head`, then the bytes of `data`, then `}`. */
  private pushParts(head: EventHead, data: Uint8Array): number {
    const buf = this.room(1 + head.byteLength + data.length + 1);
    if (this.used > this.headroom) buf[this.used++] = 0x2c; // ','
    const start = this.used;
    this.used = head.write(buf, this.used);
    buf.set(data, this.used);
    this.used += data.length;
    buf[this.used++] = 0x7d; // '}'
    return this.used - start;
  }

  /** The buffer, with room for `bytes` more and for what `take` puts after the members. */
  private room(bytes: number): Buffer {
    const room = this.used + bytes + TAKE_SLACK;
    return !this.buf || room > this.buf.length ? this.grow(room) : this.buf;
  }

  /**
   * Hand over `before`, the members and `after` as one buffer, and start an empty list. `before`
   * goes into the headroom when it fits there (the members are not copied), else they are joined.
   */
  take(before = '', after: Uint8Array = EMPTY): Buffer {
    const buf = this.buf;
    const end = this.used;
    const beforeBytes = Buffer.byteLength(before);
    if (end > this.headroom) this.nextCapacity = Math.max(FIRST_CAPACITY, end + (end >> 3));
    this.buf = undefined;
    this.used = this.headroom;
    if (!buf) return Buffer.concat([Buffer.from(before), after]);
    if (beforeBytes > this.headroom || end + after.length > buf.length) {
      return Buffer.concat([Buffer.from(before), buf.subarray(this.headroom, end), after]);
    }
    const start = this.headroom - beforeBytes;
    buf.write(before, start, 'utf8');
    buf.set(after, end);
    const out = buf.subarray(start, end + after.length);
    // a view keeps its whole buffer alive: copied out when more than a quarter of it would be
    // wasted (a small list after a large one starts with the large one's capacity)
    return buf.length - out.length > out.length >> 2 ? Buffer.from(out) : out;
  }

  private grow(room: number): Buffer {
    let capacity = Math.max(this.buf?.length ?? 0, this.nextCapacity);
    while (capacity < room) capacity *= 2;
    const next = Buffer.allocUnsafe(capacity);
    this.buf?.copy(next, 0, 0, this.used);
    this.buf = next;
    return next;
  }
}
