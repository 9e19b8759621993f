import * as fsp from 'node:fs/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Spool } from '../../src/spool/spool.js';
import { tempDir } from '../../harness/workload.js';
import { spoolRecord } from '../support/spool-record.js';

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return { ...actual, readdir: vi.fn(actual.readdir) };
});

/**
 * Every sealed batch is followed by a look for a deleted or truncated write-ahead log before it
 * is acknowledged; on a healthy spool that is one look (one directory listing), not a heal's look
 * and a second one. (What a deleted or truncated log does is in spool-handle.test.ts.)
 */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('spool log check', () => {
  it('a healthy spool lists its directory once per batch written, and a write joining a check looks again', async () => {
    const dir = await tempDir('spool-log-check');
    const path = `${dir.path}/spool`;
    const spool = await Spool.open(path);
    cleanups.push(() => dir.remove());
    cleanups.push(() => spool.close().catch(() => undefined));
    const listings = () => vi.mocked(fsp.readdir).mock.calls.filter(([p]) => p === path).length;

    const before = listings();
    for (let i = 0; i < 5; i++) {
      const r = spoolRecord();
      expect(spool.handle.isSound(await spool.batches.put(r.state, r.body))).toBe(true);
    }
    expect(listings() - before).toBe(5);

    // two writes at once: the second joins the first one's check and then looks for itself
    const mid = listings();
    const [a, b] = [spoolRecord(), spoolRecord()];
    const written = await Promise.all([
      spool.batches.put(a.state, a.body),
      spool.batches.put(b.state, b.body),
    ]);
    for (const w of written) expect(spool.handle.isSound(w)).toBe(true);
    expect(listings() - mid).toBeGreaterThanOrEqual(2);
    expect(listings() - mid).toBeLessThanOrEqual(3);
  });

  it('writes completing during a check share the next one, which starts after them and sees what changed', async () => {
    const dir = await tempDir('spool-log-check');
    const path = `${dir.path}/spool`;
    const spool = await Spool.open(path);
    cleanups.push(() => dir.remove());
    cleanups.push(() => spool.close().catch(() => undefined));
    const listings = () => vi.mocked(fsp.readdir).mock.calls.filter(([p]) => p === path).length;

    const before = listings();
    const first = spool.handle.confirmIdentity();
    const joined = [1, 2, 3, 4].map(() => spool.handle.confirmIdentity());
    expect(await first).toBeUndefined();
    for (const answer of await Promise.all(joined)) expect(answer).toBeUndefined();
    expect(listings() - before).toBe(2);

    // a check running when CURRENT goes: the callers after the change get a check that sees it
    const running = spool.handle.confirmIdentity();
    await fsp.rename(`${path}/CURRENT`, `${path}/CURRENT.moved`);
    const after = spool.handle.confirmIdentity();
    await running;
    expect(await after).toMatch(/CURRENT is missing/);
    await fsp.rename(`${path}/CURRENT.moved`, `${path}/CURRENT`);
    expect(await spool.handle.confirmIdentity()).toBeUndefined();
  });
});
