import { describe, expect, it } from 'vitest';
import { boundHeapGrowth } from '../../src/heap-tuning.js';

describe('boundHeapGrowth', () => {
  it('leaves a heap growth given on the command line alone', () => {
    expect(boundHeapGrowth(['--heap-growing-percent=80'])).toBe(false);
  });

  it('bounds the heap growth otherwise', () => {
    expect(boundHeapGrowth(['--enable-source-maps'])).toBe(true);
  });
});
