/**
 * CRC-32C (Castagnoli), the checksum LevelDB puts on each write-ahead log record, eight bytes a
 * step ("slicing by 8": eight tables, one per byte of the step). Node has no CRC-32C of its own; a
 * byte a step ran at about 400 MB/s here, this at about 1.6 GB/s, and the spool's log watch reads
 * back every byte the spool writes.
 */

const POLYNOMIAL = 0x82f63b78;

/** TABLES[k][n]: the CRC of byte n followed by k zero bytes. */
const TABLES: readonly Int32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Int32Array(256));
  const [first] = tables as [Int32Array];
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1;
    first[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = first[n] as number;
    for (let k = 1; k < 8; k++) {
      c = (first[c & 0xff] as number) ^ (c >>> 8);
      (tables[k] as Int32Array)[n] = c;
    }
  }
  return tables;
})();

const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
];

/** The CRC-32C of `bytes`, as an unsigned 32-bit number. */
export function crc32c(bytes: Uint8Array): number {
  return crc32cBits(bytes) >>> 0;
}

/**
 * The same 32 bits as a signed number (what the checks compare). Every value stays a 32-bit
 * integer: returning the unsigned value made V8 deoptimise the whole loop at its end once per call
 * in the running emitter ("lost precision", as a value past 2^31 stopped being a small integer).
 */
export function crc32cBits(bytes: Uint8Array): number {
  let c = ~0;
  let i = 0;
  const n = bytes.length;
  const whole = n - (n % 8);
  for (; i < whole; i += 8) {
    const low = c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    c =
      T7[low & 0xff]! ^
      T6[(low >>> 8) & 0xff]! ^
      T5[(low >>> 16) & 0xff]! ^
      T4[low >>> 24]! ^
      T3[bytes[i + 4]!]! ^
      T2[bytes[i + 5]!]! ^
      T1[bytes[i + 6]!]! ^
      T0[bytes[i + 7]!]!;
  }
  for (; i < n; i++) c = T0[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c;
}

/** A record's checksum as LevelDB stores it: the CRC rotated and offset, so a CRC of CRCs is not a CRC. */
export function maskCrc(crc: number): number {
  return maskCrcBits(crc) >>> 0;
}

/** `maskCrc` as a signed 32-bit number, for `crc32cBits`'s values (either sign of the same bits). */
export function maskCrcBits(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) | 0;
}
