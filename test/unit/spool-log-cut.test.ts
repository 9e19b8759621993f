import { randomBytes } from 'node:crypto';
import { readdir, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Spool } from '../../src/spool/spool.js';
import { tempDir } from '../../harness/workload.js';
import { spoolRecord } from '../support/spool-record.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function liveLog(dir: string): Promise<string> {
  const logs = (await readdir(dir)).filter((name) => /^\d+\.log$/.test(name));
  expect(logs).toHaveLength(1);
  return join(dir, logs[0] ?? '');
}

/** A new spool in a temp dir, closed and removed after the test. */
async function newSpool(): Promise<{ path: string; spool: Spool }> {
  const dir = await tempDir('spool-log-cut');
  const path = `${dir.path}/spool`;
  cleanups.push(() => dir.remove());
  const spool = await Spool.open(path);
  cleanups.push(() => spool.close().catch(() => undefined));
  return { path, spool };
}

/** Close the spool and open it again (LevelDB recovers from its log): the acked batches missing then. */
async function missingAfterReopen(spool: Spool, path: string, acked: readonly string[]): Promise<string[]> {
  await spool.close();
  const reopened = await Spool.open(path);
  cleanups.push(() => reopened.close());
  const held = new Set(await reopened.batches.ids());
  return acked.filter((id) => !held.has(id));
}

describe('spool: a live log cut at or above the size last looked at', () => {
  it('writes after the last look, cut off, then written on: every acknowledged batch is there after a restart', async () => {
    const { path, spool } = await newSpool();
    const acked: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = spoolRecord(Buffer.alloc(600, 0x61 + i));
      expect(spool.handle.isSound(await spool.batches.put(r.state, r.body, [], { fresh: true }))).toBe(true);
      acked.push(r.state.id);
    }
    const log = await liveLog(path);
    const looked = (await stat(log)).size;
    // failed delivery attempts recorded (written, never looked at) until the log doubled
    for (let n = 1; (await stat(log)).size < 2 * looked + 64; n++)
      await spool.batches.patchState(acked[n % 4] ?? '', { attempts: n, lastError: 'ECONNREFUSED' });
    const size = (await stat(log)).size;
    await truncate(log, Math.floor(size / 2));
    for (let i = 0; i < 2; i++) {
      const r = spoolRecord(Buffer.alloc(600, 0x71 + i));
      const written = await spool.batches.put(r.state, r.body, [], { fresh: true });
      if (spool.handle.isSound(written)) acked.push(r.state.id);
    }
    expect(await missingAfterReopen(spool, path, acked)).toEqual([]);
  });
});

describe('spool: a write cut off the log before the look that confirms it', () => {
  it('the look after a write sees its record cut (above the size last seen) and heals before it is acknowledged', async () => {
    const { path, spool } = await newSpool();
    const acked: string[] = [];
    const first = spoolRecord(Buffer.alloc(600, 0x61));
    await spool.batches.put(first.state, first.body, [], { fresh: true });
    acked.push(first.state.id);
    const log = await liveLog(path);
    const looked = (await stat(log)).size;
    // the next write lands; before its look, the log is cut inside it (above the size last seen)
    const confirm = spool.handle.confirmIdentity.bind(spool.handle);
    spool.handle.confirmIdentity = async () => {
      const size = (await stat(log)).size;
      await truncate(log, Math.max(looked, Math.floor((looked + size) / 2)));
      spool.handle.confirmIdentity = confirm;
      return confirm();
    };
    const cut = spoolRecord(Buffer.alloc(3000, 0x62));
    if (spool.handle.isSound(await spool.batches.put(cut.state, cut.body, [], { fresh: true })))
      acked.push(cut.state.id);
    const later = spoolRecord(Buffer.alloc(600, 0x63));
    if (spool.handle.isSound(await spool.batches.put(later.state, later.body, [], { fresh: true })))
      acked.push(later.state.id);
    expect(acked).toHaveLength(3);
    expect(await missingAfterReopen(spool, path, acked)).toEqual([]);
  });
});

describe('spool: a sound log read back record by record', () => {
  it('records across blocks (first, middle, last) and small ones between: never taken for cut', async () => {
    const { path, spool } = await newSpool();
    const log = await liveLog(path);
    for (let i = 0; i < 20; i++) {
      const r = spoolRecord(randomBytes(70_000 + i * 997));
      expect(spool.handle.isSound(await spool.batches.put(r.state, r.body, [], { fresh: true }))).toBe(true);
      await spool.batches.patchState(r.state.id, { attempts: 1, lastError: 'ECONNREFUSED' });
    }
    expect(await spool.handle.confirmIdentity()).toBeUndefined();
    // no heal: a heal flushes the memory table and starts a new log
    expect(await liveLog(path)).toBe(log);
    expect((await stat(log)).size).toBeGreaterThan(20 * 70_000);
  });
});
