import { crc32 } from 'node:zlib';
import type { BatchState } from '../../src/spool/spool.js';
import { uuidv7 } from '../../src/util/ids.js';

/** A small, valid batch record (one item, stored uncompressed) with a fresh id. */
export function spoolRecord(body = Buffer.from(JSON.stringify({ events: [{ n: Math.random() }] }))): {
  state: BatchState;
  body: Buffer;
} {
  const state: BatchState = {
    v: 1,
    id: uuidv7(),
    createdAt: new Date().toISOString(),
    itemCount: 1,
    rawBytes: body.length,
    storedBytes: body.length,
    encoding: 'identity',
    subjects: ['approved.x'],
    attempts: 0,
    crc32: crc32(body),
  };
  return { state, body };
}
