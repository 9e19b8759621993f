import * as fsp from 'node:fs/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LogWatch } from '../../src/spool/log-watch.js';
import { tempDir } from '../../harness/workload.js';

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return { ...actual, open: vi.fn(actual.open), stat: vi.fn(actual.stat) };
});

/** The look at a write-ahead log's head, on a descriptor kept between looks. */

/** CRC-32C, bit by bit (the check value of '123456789' is 0xe3069283). */
function crc32c(bytes: Buffer): number {
  let c = ~0;
  for (const byte of bytes) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

/** LevelDB log records (each a full record, within one 32 KiB block) holding `payloads`. */
function records(...payloads: Array<string | Buffer>): Buffer {
  return Buffer.concat(
    payloads.map((payload) => {
      const data = Buffer.from(payload);
      const head = Buffer.alloc(7);
      const crc = crc32c(Buffer.concat([Buffer.from([1]), data]));
      head.writeUInt32LE(((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0, 0);
      head.writeUInt16LE(data.length, 4);
      head[6] = 1;
      return Buffer.concat([head, data]);
    }),
  );
}

/** Write `bytes` at `position`, as LevelDB's writer does at its own offset. */
async function writeAt(path: string, position: number, bytes: Buffer): Promise<void> {
  const file = await fsp.open(path, 'r+');
  await file.write(bytes, 0, bytes.length, position);
  await file.close();
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function aLog(): Promise<{ path: string; watch: LogWatch; opens: () => number }> {
  const dir = await tempDir('log-watch');
  const path = `${dir.path}/000003.log`;
  await fsp.writeFile(path, records('abcdefgh-record'));
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
    await writeAt(path, 22, records('next-record'));
    expect(await watch.truncated(path)).toBe(true);
  });

  it('a log replaced under the same name counts as lost, however its head reads; one that shrank too', async () => {
    const { path, watch } = await aLog();
    expect(await watch.truncated(path)).toBe(false);
    await fsp.rename(path, `${path}.1`);
    await fsp.writeFile(path, records('abcdefgh-a-record-longer-than-32-bytes'));
    expect(await watch.truncated(path)).toBe(true);
    await watch.forget(); // as a heal does
    expect(await watch.truncated(path)).toBe(false);
    await fsp.rm(path);
    await fsp.writeFile(path, Buffer.alloc(32));
    expect(await watch.truncated(path)).toBe(true);

    await watch.forget();
    await fsp.writeFile(path, records('abcdefgh-a-record-longer-than-32-bytes'));
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
    await fsp.writeFile(path, records('abcdefgh-a-record-longer-than-32-bytes'));
    expect(await watch.truncated(path)).toBe(true);
    watch.keepOnly([]);
    expect(await watch.truncated(path)).toBe(false);
  });

  it('a log cut between a look at its size and the read of its last bytes counts as cut', async () => {
    const { path, watch } = await aLog();
    await fsp.writeFile(path, records(Buffer.alloc(143, 0x41)));
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
    await writeAt(path, 150, records('next-record'));
    expect(await watch.truncated(path)).toBe(true);
  });

  it('the test log records carry LevelDB checksums', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('records written after a look, cut off at or above the size seen, then written on: cut', async () => {
    const { path, watch } = await aLog();
    expect(await watch.truncated(path)).toBe(false);
    const seen = (await fsp.stat(path)).size;
    // writes never looked at (delivery attempts recorded) double the log; the cut keeps what was seen
    await fsp.appendFile(path, records(...Array.from({ length: 8 }, (_, n) => `attempt ${n} of a batch`)));
    const size = (await fsp.stat(path)).size;
    const cutAt = Math.floor(size / 2);
    expect(cutAt).toBeGreaterThanOrEqual(seen);
    await fsp.truncate(path, cutAt);
    await writeAt(path, size, records('a batch written after the cut'));
    expect(await watch.truncated(path)).toBe(true);
  });

  it('the same cut looked at before the writer goes on: cut once it does', async () => {
    const { path, watch } = await aLog();
    expect(await watch.truncated(path)).toBe(false);
    await fsp.appendFile(path, records(...Array.from({ length: 8 }, (_, n) => `attempt ${n} of a batch`)));
    const size = (await fsp.stat(path)).size;
    await fsp.truncate(path, Math.floor(size / 2));
    // nothing tells this look from one during a write still in progress
    expect(await watch.truncated(path)).toBe(false);
    await writeAt(path, size, records('a batch written after the cut'));
    expect(await watch.truncated(path)).toBe(true);
  });

  it('the last record, written after a look, cut inside and written on at its end: cut (its checksum)', async () => {
    const { path, watch } = await aLog();
    expect(await watch.truncated(path)).toBe(false);
    const seen = (await fsp.stat(path)).size;
    await fsp.appendFile(path, records(Buffer.alloc(400, 0x62)));
    const size = (await fsp.stat(path)).size;
    await fsp.truncate(path, seen + 200);
    await writeAt(path, size, records('the next write'));
    expect(await watch.truncated(path)).toBe(true);
  });

  it('a first look at a log cut and written on, its head sound: cut', async () => {
    const { path, watch } = await aLog();
    await fsp.appendFile(path, records('a', 'b', 'c', 'd'));
    const size = (await fsp.stat(path)).size;
    await fsp.truncate(path, size - 10);
    await writeAt(path, size, records('e'));
    expect(await watch.truncated(path)).toBe(true);
  });

  it('a record being written (shorter than its header says) is sound, and read again once written', async () => {
    const { path, watch } = await aLog();
    const next = records(Buffer.alloc(300, 0x63));
    const at = (await fsp.stat(path)).size;
    await fsp.appendFile(path, next.subarray(0, 100));
    expect(await watch.truncated(path)).toBe(false);
    await writeAt(path, at + 100, next.subarray(100));
    expect(await watch.truncated(path)).toBe(false);
    // the same again, completed with a hole where its middle was
    const again = records(Buffer.alloc(300, 0x64));
    const at2 = (await fsp.stat(path)).size;
    await fsp.appendFile(path, again.subarray(0, 100));
    expect(await watch.truncated(path)).toBe(false);
    await writeAt(path, at2 + 200, again.subarray(200));
    expect(await watch.truncated(path)).toBe(true);
  });

  it('records across blocks, with a block trailer, read back sound', async () => {
    const { path, watch } = await aLog();
    const size = (await fsp.stat(path)).size;
    // fill the first block up to 3 bytes short of its end: LevelDB pads those with zeros
    const fill = 32 * 1024 - size - 3 - 7;
    await fsp.appendFile(path, Buffer.concat([records(Buffer.alloc(fill, 0x65)), Buffer.alloc(3)]));
    expect(await watch.truncated(path)).toBe(false);
    await fsp.appendFile(path, records('in the second block'));
    expect(await watch.truncated(path)).toBe(false);
  });
});
