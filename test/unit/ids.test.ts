import { describe, expect, it } from 'vitest';
import { uuidv7 } from '../../src/util/ids.js';

describe('uuidv7', () => {
  it('makes distinct, ordered RFC 9562 v7 ids across refills of its random pool', () => {
    const ids = Array.from({ length: 2000 }, () => uuidv7(1_700_000_000_000));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // the random tails (last 12 hex digits) do not repeat from one pool to the next
    expect(new Set(ids.map((id) => id.slice(-12))).size).toBe(ids.length);
  });
});
