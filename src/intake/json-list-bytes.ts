/**
 * The members of one JSON array as UTF-8 bytes in one growing Buffer, written as they come. The
 * open batch's events live here instead of as strings on the JS heap: at full speed a batch's
 * strings lived just long enough to be promoted to the old generation, and sealing joined them
 * into one more string and encoded that again.
 */

import type { EventJson } from '../model.js';

/** Worst case UTF-8 bytes of a JS string: 3 per UTF-16 code unit (a surrogate pair is 4 for 2). */
export const MAX_UTF8_PER_UNIT = 3;
const FIRST_CAPACITY = 64 * 1024;

export class JsonListBytes {
  private buf?: Buffer;
  private used = 0;
  /** the capacity the next list starts with: what the last one needed */
  private nextCapacity = FIRST_CAPACITY;

  get byteLength(): number {
    return this.used;
  }

  /**
   * Append one member (valid JSON text, or in parts: see EventJson), after a comma unless it is
   * the first; returns the member's UTF-8 bytes (without the comma).
   */
  push(json: EventJson): number {
    if (typeof json !== 'string') return this.pushParts(json.head, json.data);
    const buf = this.room(1 + json.length * MAX_UTF8_PER_UNIT);
    if (this.used > 0) buf[this.used++] = 0x2c; // ','
    const bytes = buf.write(json, this.used, 'utf8');
    this.used += bytes;
    return bytes;
  }

  /** A member in parts (see EventJson): `head`, then the bytes of `data`, then `}`. */
  private pushParts(head: string, data: Uint8Array): number {
    const buf = this.room(1 + head.length * MAX_UTF8_PER_UNIT + data.length + 1);
    if (this.used > 0) buf[this.used++] = 0x2c; // ','
    const start = this.used;
    this.used += buf.write(head, this.used, 'utf8');
    buf.set(data, this.used);
    this.used += data.length;
    buf[this.used++] = 0x7d; // '}'
    return this.used - start;
  }

  /** The buffer, with room for `bytes` more. */
  private room(bytes: number): Buffer {
    const room = this.used + bytes;
    return !this.buf || room > this.buf.length ? this.grow(room) : this.buf;
  }

  /** Hand over the bytes written (a view) and start an empty list. */
  take(): Buffer {
    const out = this.buf ? this.buf.subarray(0, this.used) : Buffer.alloc(0);
    if (this.used > 0) this.nextCapacity = Math.max(FIRST_CAPACITY, this.used + (this.used >> 3));
    this.buf = undefined;
    this.used = 0;
    return out;
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
