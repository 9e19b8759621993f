import { describe, expect, it } from 'vitest';
import { HeldBodies, retainedBytes } from '../../src/delivery/held-bodies.js';

describe('HeldBodies', () => {
  it('admits bodies while both the count and the bytes stay within bounds, and again once released', () => {
    const held = new HeldBodies(2, 100);
    expect(held.admit(60)).toBe(true);
    expect(held.admit(50)).toBe(false); // 110 bytes
    expect(held.admit(40)).toBe(true);
    expect(held.admit(0)).toBe(false); // a third body
    expect([held.heldCount, held.heldBytes]).toEqual([2, 100]);
    held.release(60);
    expect(held.admit(50)).toBe(true);
    held.release(40);
    held.release(50);
    expect([held.heldCount, held.heldBytes]).toEqual([0, 0]);
    expect(held.admit(101)).toBe(false); // never more than the byte bound, even alone
  });

  it('counts what a body keeps alive: the whole buffer it is a view into', () => {
    const whole = Buffer.alloc(64 * 1024);
    expect(retainedBytes(whole)).toBe(64 * 1024);
    expect(retainedBytes(whole.subarray(100, 400))).toBe(64 * 1024);
    expect(retainedBytes(new Uint8Array(10))).toBe(10);
  });
});
