import { randomBytes } from 'node:crypto';

let lastMs = 0;
let counter = 0;
/** the 12 hex digits of `lastMs` */
let msHex = '000000000000';

/**
 * Random hex digits for 256 ids at a time, drawn as text: one crypto call per id cost more than
 * the rest of an in-process add (a pino transport makes one id per log line), and cutting each id
 * out of a Buffer and hex-encoding it cost a third of what was left.
 */
const POOL_IDS = 256;
const HEX_PER_ID = 16;
let pool = '';
let poolOffset = 0;

function randomHex(): string {
  if (poolOffset >= pool.length) {
    pool = randomBytes((POOL_IDS * HEX_PER_ID) / 2).toString('hex');
    poolOffset = 0;
  }
  poolOffset += HEX_PER_ID;
  return pool.slice(poolOffset - HEX_PER_ID, poolOffset);
}

/** the variant's two bits (10) over two random bits */
const VARIANT = ['8', '9', 'a', 'b'];

/** the counter's three hex digits, 000..fff (toString(16) per id was a runtime call) */
const COUNTER_HEX = Array.from({ length: 0x1000 }, (_, n) => n.toString(16).padStart(3, '0'));

/**
 * A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then a 12-bit counter that keeps ids made in
 * the same millisecond in creation order, then random bits. Lexicographic order = creation order,
 * which is what makes the spool list oldest first.
 */
export function uuidv7(nowMs: number = Date.now()): string {
  if (nowMs <= lastMs) {
    counter += 1;
    if (counter > 0xfff) {
      lastMs += 1;
      counter = 0;
      msHex = lastMs.toString(16).padStart(12, '0');
    }
  } else {
    lastMs = nowMs;
    counter = 0;
    msHex = lastMs.toString(16).padStart(12, '0');
  }
  const r = randomHex();
  const variant = VARIANT[parseInt(r[0] as string, 16) & 3] as string;
  return `${msHex.slice(0, 8)}-${msHex.slice(8)}-7${COUNTER_HEX[counter] as string}-${variant}${r.slice(1, 4)}-${r.slice(4)}`;
}
