import { describe, expect, it } from 'vitest';
import { isoTime } from '../../src/util/iso-time.js';

describe('isoTime', () => {
  it('formats each millisecond as toISOString does, also when it changes back and forth', () => {
    const times = [
      0, 1_700_000_000_123, 1_700_000_000_123, 1_700_000_000_124, 1_700_000_000_123, 0, 253_402_300_799_999,
    ];
    for (const ms of times) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });
});
