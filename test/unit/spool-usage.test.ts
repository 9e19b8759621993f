import { describe, expect, it } from 'vitest';
import { SpoolUsage } from '../../src/spool/usage.js';

describe('spool usage', () => {
  it('keeps one tally per store; the limit reads their sum', () => {
    const usage = new SpoolUsage();
    usage.set('batches', { count: 2, bytes: 300 });
    usage.set('deadLetters', { count: 1, bytes: 50 });
    usage.set('quarantine', { count: 0, bytes: 0 });
    usage.change('batches', -1, -100);
    usage.change('deadLetters', 1, 100);
    expect(usage.batches).toEqual({ count: 1, bytes: 200 });
    expect(usage.deadLetters).toEqual({ count: 2, bytes: 150 });
    expect(usage.usedBytes).toBe(350);
  });

  it('ignores moves into a store not counted yet, and never goes below zero', () => {
    const usage = new SpoolUsage();
    usage.change('quarantine', 1, 700);
    expect(usage.counted('quarantine')).toBe(false);
    expect(usage.quarantine).toEqual({ count: 0, bytes: 0 });
    usage.set('batches', { count: 1, bytes: 10 });
    usage.change('batches', -2, -50);
    expect(usage.batches).toEqual({ count: 0, bytes: 0 });
  });

  it('hands out copies: a reader cannot change the tally', () => {
    const usage = new SpoolUsage();
    usage.set('batches', { count: 1, bytes: 10 });
    usage.batches.count = 99;
    expect(usage.batches.count).toBe(1);
  });
});
