import * as fsp from 'node:fs/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LogWatch } from '../../src/spool/log-watch.js';
import { tempDir } from '../../harness/workload.js';

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return { ...actual, open: vi.fn(actual.open), stat: vi.fn(actual.stat) };
});

/** The look at a write-ahead log's head, on a descriptor kept between looks. */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function aLog(): Promise<{ path: string; watch: LogWatch; opens: () => number }> {
  const dir = await tempDir('log-watch');
  const path = `${dir.path}/000003.log`;
  await fsp.writeFile(path, Buffer.from('abcdefgh-record'));
  const watch = new LogWatch();
  cleanups.push(() => dir.remove());
  cleanups.push(() => watch.close());
  const opens = () => vi.mocked(fsp.open).mock.calls.filter(([p]) => p === path).length;
  return { path, watch, opens };
}

describe('LogWatch', () => {
  it('looks at a healthy log on one descriptor, and sees a hole written past a truncation on it', async () => {
    const { path, watch, opens } = await aLog();
    const before = opens();
    for (let i = 0; i < 5; i++) expect(await watch.truncated(path)).toBe(false);
    expect(opens() - before).toBe(1);

    // copytruncate, then the writer goes on at its old offset: the head is now a hole
    await fsp.truncate(path, 0);
    const file = await fsp.open(path, 'r+');
    await file.write(Buffer.from('next-record'), 0, 11, 15);
    await file.close();
    expect(await watch.truncated(path)).toBe(true);
  });

  it('a log replaced under the same name counts as lost, however its head reads; one that shrank too', async () => {
    const { path, watch } = await aLog();
    expect(await watch.truncated(path)).toBe(false);
    await fsp.rename(path, `${path}.1`);
    await fsp.writeFile(path, Buffer.from('abcdefgh-a-record-longer-than-32-bytes'));
    expect(await watch.truncated(path)).toBe(true);
    await watch.forget(); // as a heal does
    expect(await watch.truncated(path)).toBe(false);
    await fsp.rm(path);
    await fsp.writeFile(path, Buffer.alloc(32));
    expect(await watch.truncated(path)).toBe(true);

    await watch.forget();
    await fsp.writeFile(path, Buffer.from('abcdefgh-a-record-longer-than-32-bytes'));
    expect(await watch.truncated(path)).toBe(false);
    await fsp.truncate(path, 10);
    expect(await watch.truncated(path)).toBe(true);
  });

  it('a cut log stays cut for every later look until a heal forgets it or it leaves the directory', async () => {
    const { path, watch } = await aLog();
    expect(await watch.truncated(path)).toBe(false);
    await fsp.truncate(path, 4);
    // two looks overlapping a heal: the second must not take the size the first recorded as sound
    expect(await Promise.all([watch.truncated(path), watch.truncated(path)])).toEqual([true, true]);
    await fsp.writeFile(path, Buffer.from('abcdefgh-a-record-longer-than-32-bytes'));
    expect(await watch.truncated(path)).toBe(true);
    watch.keepOnly([]);
    expect(await watch.truncated(path)).toBe(false);
  });

  it('a log cut between a look at its size and the read of its last bytes counts as cut', async () => {
    const { path, watch } = await aLog();
    await fsp.writeFile(path, Buffer.alloc(150, 0x41));
    // the first look at this log: its size is seen at 150, then it is cut to half (its head
    // sound) before its last bytes are read
    const actualStat = vi.mocked(fsp.stat).getMockImplementation()!;
    vi.mocked(fsp.stat).mockImplementationOnce(async (p, opts) => {
      const seen = await actualStat(p, opts);
      await fsp.truncate(path, 75);
      return seen;
    });
    expect(await watch.truncated(path)).toBe(true);
    // and stays cut once the writer goes on at its old offset, past the hole
    const file = await fsp.open(path, 'r+');
    await file.write(Buffer.from('next-record'), 0, 11, 150);
    await file.close();
    expect(await watch.truncated(path)).toBe(true);
  });
});
