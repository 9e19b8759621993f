import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tempDir } from '../../harness/workload.js';
import { crc32c, crc32cBits, maskCrc, maskCrcBits } from '../../src/spool/crc32c.js';
import { LogWatch } from '../../src/spool/log-watch.js';
import { ManifestWatch, missingManifest } from '../../src/spool/manifest-watch.js';
import { Spool } from '../../src/spool/spool.js';
import { spoolRecord } from '../support/spool-record.js';

/**
 * The identity check stats CURRENT and reads it again only when its (inode, size, ctime) changed
 * or it changed less than a second before the look, and the log check compares CRCs as signed
 * 32-bit numbers. Every attack here changes CURRENT (or the manifest, or a log) right after a
 * check, most of them keeping CURRENT's inode and size; a fresh read of CURRENT at every look
 * (`missingManifest`) is the reference. Real files, a real LevelDB (classic-level); a clock too
 * coarse to date each change is simulated in test/unit/manifest-watch.test.ts.
 */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openSpool(): Promise<{ spool: Spool; path: string }> {
  const dir = await tempDir('mw-attack');
  const path = `${dir.path}/spool`;
  const spool = await Spool.open(path);
  cleanups.push(() => dir.remove());
  cleanups.push(() => spool.close().catch(() => undefined));
  return { spool, path };
}

const named = async (dir: string): Promise<string> =>
  (await fsp.readFile(join(dir, 'CURRENT'), 'utf8')).trim();

/** A manifest name of the same length as `name` that is not in `dir`. */
function absentLike(name: string, n: number): string {
  const digits = name.length - 'MANIFEST-'.length;
  return `MANIFEST-${String(900000 + n).padStart(digits, '9')}`;
}

const inPlace = (how: string): boolean => how !== 'rename over it' && how !== 'unlink + create (inode reuse)';

type Rewrite = (current: string, text: string) => Promise<void>;

/** Ways of giving CURRENT new text of the same size, most keeping its inode. */
const rewrites: Record<string, Rewrite> = {
  // open O_TRUNC, write: same inode, size 0 then the same size again
  'writeFile in place': (current, text) => fsp.writeFile(current, text),
  // no truncation at all: same inode, same size throughout, only the bytes change
  'pwrite over the bytes': async (current, text) => {
    const file = await fsp.open(current, 'r+');
    await file.write(Buffer.from(text), 0, text.length, 0);
    await file.close();
  },
  // `cp other CURRENT`: copy_file_range / sendfile into the same inode
  'copyFile (cp) over it': async (current, text) => {
    await fsp.writeFile(`${current}.src`, text);
    await fsp.copyFile(`${current}.src`, current);
    await fsp.rm(`${current}.src`);
  },
  // deleted and created anew: ext4 hands the freed inode number straight back
  'unlink + create (inode reuse)': async (current, text) => {
    await fsp.rm(current);
    await fsp.writeFile(current, text);
  },
  // as LevelDB does it: a temp file renamed over CURRENT
  'rename over it': async (current, text) => {
    await fsp.writeFile(`${current}.tmp`, text);
    await fsp.rename(`${current}.tmp`, current);
  },
};

describe('ManifestWatch attacked with real files', () => {
  const dirs = [undefined, existsSync('/dev/shm') ? '/dev/shm' : undefined];

  for (const base of dirs) {
    for (const [how, rewrite] of Object.entries(rewrites)) {
      it(`${how} right after a look (${base ?? 'os.tmpdir()'}): answers as a fresh read of CURRENT does`, async () => {
        const dir = base ? await fsp.mkdtemp(join(base, 'be-mw-attack-')) : (await tempDir('mw-attack')).path;
        cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
        const current = join(dir, 'CURRENT');
        await fsp.writeFile(join(dir, 'MANIFEST-000005'), 'x');
        await fsp.writeFile(current, 'MANIFEST-000005\n');
        const watch = new ManifestWatch(dir);
        let sameStat = 0;
        // alternate between the present manifest and an absent one, each change straight after a look
        for (let i = 0; i < 40; i++) {
          expect(await watch.missing()).toBe(await missingManifest(dir));
          const before = await fsp.stat(current, { bigint: true });
          const text = i % 2 === 0 ? `${absentLike('MANIFEST-000005', i)}\n` : 'MANIFEST-000005\n';
          await rewrite(current, text);
          const after = await fsp.stat(current, { bigint: true });
          if (before.ino === after.ino && before.size === after.size) sameStat++;
          const reference = await missingManifest(dir);
          expect(reference, `change ${i}`).toBe(i % 2 === 0 ? text.trim() : undefined);
          expect(await watch.missing(), `change ${i} (${how})`).toBe(reference);
        }
        // the in-place ways do keep inode and size: only ctime can tell the change
        if (inPlace(how)) expect(sameStat).toBe(40);
      });
    }
  }
});

describe('the spool identity check attacked with a real LevelDB', () => {
  for (const [how, rewrite] of Object.entries(rewrites)) {
    it(`CURRENT pointed (${how}) at a manifest that is not there: refused at the next write; put back: trusted again`, async () => {
      const { spool, path } = await openSpool();
      const current = join(path, 'CURRENT');
      const real = await named(path);
      const r = spoolRecord();
      expect(spool.handle.isSound(await spool.batches.put(r.state, r.body))).toBe(true);
      // a look caches CURRENT's stat; the change follows at once
      expect(await spool.handle.confirmIdentity()).toBeUndefined();
      const gone = absentLike(real, 1);
      await rewrite(current, `${gone}\n`);
      const next = spoolRecord();
      await expect(spool.batches.put(next.state, next.body)).rejects.toThrow(
        new RegExp(`${gone} \\(the index of the spool's files\\) is missing`),
      );
      expect(spool.handle.replaced).toMatch(gone);
      // CURRENT put back the same way: no lasting false alarm
      await rewrite(current, `${real}\n`);
      expect(await spool.handle.confirmIdentity()).toBeUndefined();
      const last = spoolRecord();
      expect(spool.handle.isSound(await spool.batches.put(last.state, last.body))).toBe(true);
    });
  }

  it('the manifest renamed away and back, right after a look: caught, then cleared', async () => {
    const { spool, path } = await openSpool();
    const manifest = await named(path);
    expect(await spool.handle.confirmIdentity()).toBeUndefined();
    await fsp.rename(join(path, manifest), join(path, `${manifest}.bak`));
    expect(await spool.handle.confirmIdentity()).toMatch(
      `${manifest} (the index of the spool's files) is missing`,
    );
    await fsp.rename(join(path, `${manifest}.bak`), join(path, manifest));
    expect(await spool.handle.confirmIdentity()).toBeUndefined();
  });

  it('reopens of LevelDB (each a new manifest, the old one deleted) between and during looks: no false alarm', async () => {
    const { spool, path } = await openSpool();
    const seen = new Set([await named(path)]);
    for (let n = 1; n <= 4; n++) {
      expect(await spool.handle.confirmIdentity()).toBeUndefined();
      vi.spyOn(spool.handle.db, 'batch').mockRejectedValueOnce(
        Object.assign(new Error('IO error: injected'), { code: 'LEVEL_IO_ERROR' }),
      );
      const r = spoolRecord();
      const failing = spool.batches.put(r.state, r.body).then(
        () => undefined,
        (error: unknown) => error,
      );
      // looks while the reopen switches CURRENT and deletes the old manifest
      const looks: Array<string | undefined> = [];
      const deadline = Date.now() + 3000;
      while (spool.handle.reopens < n && Date.now() < deadline)
        looks.push(await spool.handle.checkIdentity());
      expect(String(await failing)).toMatch(/injected/);
      expect(spool.handle.reopens).toBe(n);
      expect(looks.length).toBeGreaterThan(0);
      expect(looks.filter((why) => why !== undefined)).toEqual([]);
      seen.add(await named(path));
      expect(await spool.handle.confirmIdentity()).toBeUndefined();
      const again = spoolRecord();
      expect(spool.handle.isSound(await spool.batches.put(again.state, again.body))).toBe(true);
    }
    // each reopen did switch manifests (so the cached name had to be dropped each time)
    expect(seen.size).toBe(5);
  });
});

describe('signed CRC-32C (crc32cBits, maskCrcBits) against the unsigned one', () => {
  it('the same bits for edge values and 20,000 pseudo-random ones of both signs', () => {
    const edges = [
      0, 1, 0x7fff, 0x8000, 0x7fffffff, 0x80000000, 0xffffffff, -1, -0x80000000, 0xa282ead8, 0x5d7d1528,
    ];
    let x = 0x12345678;
    const values = [...edges];
    for (let i = 0; i < 20_000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) | 0;
      values.push(x, x >>> 0);
    }
    const differ = values.filter(
      (v) => maskCrcBits(v) >>> 0 !== maskCrc(v >>> 0) || maskCrcBits(v) !== maskCrcBits(v >>> 0),
    );
    expect(differ).toEqual([]);
    let seed = 7;
    const lengths: number[] = [];
    for (let length = 0; length < 300; length++) {
      const bytes = Uint8Array.from(
        { length },
        () => (seed = (Math.imul(seed, 1664525) + 1013904223) | 0) >>> 24,
      );
      const bits = crc32cBits(bytes);
      if (bits >>> 0 !== crc32c(bytes) || (bits | 0) !== bits) lengths.push(length);
    }
    expect(lengths).toEqual([]);
  });

  it('a real LevelDB log (CRCs of both signs) reads back sound; one byte flipped in a record of either sign is caught', async () => {
    const { spool, path } = await openSpool();
    for (let i = 0; i < 60; i++) {
      const r = spoolRecord(Buffer.from(JSON.stringify({ events: [{ n: i, pad: 'p'.repeat(i * 37) }] })));
      expect(spool.handle.isSound(await spool.batches.put(r.state, r.body))).toBe(true);
    }
    const log = (await fsp.readdir(path)).find((name) => /^\d+\.log$/.test(name))!;
    const bytes = await fsp.readFile(join(path, log));
    await spool.close();
    // the records of the log's first block (full records only, type 1), with their stored CRCs
    const records: Array<{ at: number; end: number; signed: number }> = [];
    for (let at = 0; at + 7 <= Math.min(bytes.length, 32 * 1024);) {
      const length = bytes.readUInt16LE(at + 4);
      if (bytes[at + 6] === 0 || at + 7 + length > 32 * 1024) break;
      records.push({ at, end: at + 7 + length, signed: bytes.readInt32LE(at) });
      at += 7 + length;
    }
    const negative = records.find((rec) => rec.signed < 0 && rec.end - rec.at > 8);
    const positive = records.find((rec) => rec.signed >= 0 && rec.end - rec.at > 8);
    expect(negative).toBeDefined();
    expect(positive).toBeDefined();
    for (const rec of records) {
      expect(maskCrcBits(crc32cBits(bytes.subarray(rec.at + 6, rec.end)))).toBe(rec.signed);
    }

    const scratch = await tempDir('mw-attack-log');
    cleanups.push(() => scratch.remove());
    const copy = join(scratch.path, log);
    await fsp.writeFile(copy, bytes);
    const sound = new LogWatch();
    cleanups.push(() => sound.close());
    expect(await sound.truncated(copy)).toBe(false);
    for (const rec of [negative!, positive!]) {
      const bad = Buffer.from(bytes);
      bad[rec.end - 1]! ^= 0x01;
      await fsp.writeFile(copy, bad);
      const watch = new LogWatch();
      cleanups.push(() => watch.close());
      expect(await watch.truncated(copy), `record at ${rec.at}, CRC ${rec.signed}`).toBe(true);
    }
  });
});
