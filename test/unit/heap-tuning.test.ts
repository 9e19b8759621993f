import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { boundHeapGrowth, HEAP_GROWING_FLAG } from '../../src/util/heap-tuning.js';

describe('boundHeapGrowth', () => {
  it('leaves a heap growth given on the command line alone, in either spelling', () => {
    const set: string[] = [];
    expect(boundHeapGrowth(['--heap-growing-percent=80'], (f) => set.push(f))).toBe(false);
    expect(boundHeapGrowth(['--heap_growing_percent=80'], (f) => set.push(f))).toBe(false);
    expect(set).toEqual([]);
  });

  it('bounds the heap growth otherwise', () => {
    const set: string[] = [];
    expect(boundHeapGrowth(['--enable-source-maps'], (f) => set.push(f))).toBe(true);
    expect(set).toEqual([HEAP_GROWING_FLAG]);
  });

  it('names a flag this V8 knows', () => {
    // an unknown flag only prints a warning, so check the name against V8's own list
    const options = execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8' });
    const name = HEAP_GROWING_FLAG.split('=')[0] as string;
    expect(options).toContain(`${name} `);
  });
});
