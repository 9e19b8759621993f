import { describe, expect, it } from 'vitest';
import { crc32c, crc32cBits, maskCrc, maskCrcBits } from '../../src/spool/crc32c.js';

/** A byte a step, straight from the definition: what the eight-byte steps must agree with. */
function byteByByte(bytes: Uint8Array): number {
  let c = ~0;
  for (const byte of bytes) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

describe('crc32c', () => {
  it('gives the check value of the standard ("123456789") and of nothing', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    // RFC 3720 (iSCSI), B.4: 32 bytes of zeros, of ones
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
  });

  it('agrees with the byte-a-step definition at every length around the eight-byte steps', () => {
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 2654435761) >>> 24);
    for (let length = 0; length <= bytes.length; length += 1) {
      const part = bytes.subarray(7, 7 + length);
      expect(crc32c(part), `length ${length}`).toBe(byteByByte(part));
    }
  });

  it('masks as LevelDB does (rotate right by 15, add 0xa282ead8)', () => {
    expect(maskCrc(0)).toBe(0xa282ead8);
    expect(maskCrc(0x00008000)).toBe((1 + 0xa282ead8) >>> 0);
  });

  it('gives the same bits signed (crc32cBits, maskCrcBits) as unsigned', () => {
    for (const text of ['', '123456789', 'a'.repeat(1000)]) {
      const bytes = Buffer.from(text);
      expect(crc32cBits(bytes) >>> 0).toBe(crc32c(bytes));
      expect(maskCrcBits(crc32cBits(bytes)) >>> 0).toBe(maskCrc(crc32c(bytes)));
      expect(maskCrcBits(crc32c(bytes))).toBe(maskCrcBits(crc32cBits(bytes)));
    }
    // a checksum past 2^31 (negative when signed), as a header stores it
    const header = Buffer.alloc(4);
    header.writeUInt32LE(maskCrc(crc32c(Buffer.from('123456789'))));
    expect(header.readInt32LE(0)).toBe(maskCrcBits(crc32cBits(Buffer.from('123456789'))));
  });
});
