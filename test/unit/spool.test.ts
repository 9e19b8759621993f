import { stat } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { Level } from 'level';
import { afterEach, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../src/util/ids.js';
import { seqRanges, Spool, type BatchState } from '../../src/spool/spool.js';
import { tempDir } from '../../harness/workload.js';

const dirs: Array<{ remove(): Promise<void> }> = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await d.remove();
});

async function freshSpool(): Promise<{ spool: Spool; path: string }> {
  const dir = await tempDir('spool');
  dirs.push(dir);
  return { spool: await Spool.open(`${dir.path}/spool`), path: `${dir.path}/spool` };
}

function record(body = Buffer.from('{"x":1}')): { state: BatchState; body: Buffer } {
  const id = uuidv7();
  const state: BatchState = {
    v: 1,
    id,
    createdAt: new Date().toISOString(),
    itemCount: 1,
    rawBytes: body.length,
    storedBytes: body.length,
    encoding: 'identity',
    subjects: ['approved.x'],
    attempts: 0,
    crc32: crc32(body),
  };
  return { state, body };
}

describe('spool (real LevelDB)', () => {
  it('creates its directory 0700, lists oldest first, counts bytes, deletes', async () => {
    const { spool, path } = await freshSpool();
    expect((await stat(path)).mode & 0o777).toBe(0o700);
    const records = [record(), record(), record()];
    for (const r of [...records].reverse()) await spool.put(r.state, r.body, [1, 2]);
    expect(await spool.listIds()).toEqual(records.map((r) => r.state.id));
    expect(spool.count).toBe(3);
    expect(spool.bytes).toBe(records.reduce((n, r) => n + r.body.length, 0));
    await spool.delete(records[0]!.state.id);
    expect(spool.count).toBe(2);
    expect(await spool.get(records[0]!.state.id)).toBeUndefined();
    await spool.close();
  });

  it('indexes stream sequences until the ack floor passes them', async () => {
    const { spool } = await freshSpool();
    const r = record();
    await spool.put(r.state, r.body, [5, 6, 9]);
    expect(await spool.batchOfSeq(6)).toBe(r.state.id);
    expect(await spool.batchOfSeq(7)).toBeUndefined();
    expect(await spool.batchOfSeq(4)).toBeUndefined();
    expect(seqRanges([9, 5, 6, 5])).toEqual([
      [5, 6],
      [9, 9],
    ]);
    expect(await spool.pruneSeqs(6)).toBe(1);
    expect(await spool.batchOfSeq(6)).toBeUndefined();
    expect(await spool.batchOfSeq(9)).toBe(r.state.id);
    await spool.close();
  });

  it('moves a batch to the dead letters and back with a fresh attempt count', async () => {
    const { spool } = await freshSpool();
    const r = record();
    await spool.put({ ...r.state, attempts: 4 }, r.body);
    await spool.deadLetterBatch(r.state.id, {
      reason: 'http_400',
      at: new Date().toISOString(),
      status: 400,
      subjects: [],
    });
    expect(spool.count).toBe(0);
    expect((await spool.listDeadLetters()).map((d) => d.reason)).toEqual(['http_400']);
    expect(await spool.replayDeadLetter(r.state.id)).toBe(true);
    expect((await spool.getState(r.state.id))?.attempts).toBe(0);
    expect(await spool.listDeadLetters()).toEqual([]);
    await spool.close();
  });

  it('counts dead letters and quarantine in its size, kept in step with every move and recounted at open', async () => {
    const { spool, path } = await freshSpool();
    const [a, b, c] = [
      record(Buffer.alloc(300, 1)),
      record(Buffer.alloc(500, 2)),
      record(Buffer.alloc(700, 3)),
    ];
    for (const r of [a, b, c]) await spool.put(r.state, r.body);
    expect(spool.usedBytes).toBe(1500);
    const letter = { reason: 'http_400', at: new Date().toISOString(), status: 400, subjects: [] };
    await spool.deadLetterBatch(a.state.id, letter);
    await spool.deadLetterBatch(b.state.id, letter);
    await spool.deadLetterMessage({
      id: uuidv7(),
      kind: 'message',
      reason: 'invalid_json',
      at: new Date().toISOString(),
      subjects: ['approved.x'],
    });
    await spool.quarantineBatch(c.state.id, 'test');
    expect(spool.bytes).toBe(0);
    expect(spool.deadLetterCount).toBe(3);
    expect(spool.deadLetterBytes).toBeGreaterThan(800);
    expect(spool.quarantinedCount).toBe(1);
    expect(spool.quarantinedBytes).toBeGreaterThan(700);
    expect(spool.usedBytes).toBe(spool.deadLetterBytes + spool.quarantinedBytes);
    const counted = {
      deadLetters: spool.deadLetterCount,
      deadLetterBytes: spool.deadLetterBytes,
      quarantined: spool.quarantinedCount,
      quarantinedBytes: spool.quarantinedBytes,
    };
    expect(await spool.stats()).toMatchObject(counted);
    await spool.close();

    let reopened = await Spool.open(path);
    expect(await reopened.stats()).toMatchObject({ ...counted, bytes: 0 });
    const deadBefore = reopened.deadLetterBytes;
    expect(await reopened.replayDeadLetter(a.state.id)).toBe(true);
    expect(reopened.bytes).toBe(300);
    await reopened.purgeDeadLetter(b.state.id);
    await reopened.purgeQuarantined(c.state.id);
    expect(reopened.deadLetterCount).toBe(1);
    expect(reopened.deadLetterBytes).toBeLessThan(deadBefore - 800);
    expect(reopened.quarantinedCount).toBe(0);
    expect(reopened.quarantinedBytes).toBe(0);
    const after = {
      deadLetters: 1,
      deadLetterBytes: reopened.deadLetterBytes,
      quarantined: 0,
      quarantinedBytes: 0,
    };
    await reopened.close();
    reopened = await Spool.open(path);
    expect(await reopened.stats()).toMatchObject(after);
    await reopened.close();
  });

  it('quarantines a body overwritten on disk instead of handing it out; verify reports it', async () => {
    const { spool, path } = await freshSpool();
    const good = record();
    const bad = record();
    await spool.put(good.state, good.body);
    await spool.put(bad.state, bad.body);
    await spool.close();
    const raw = new Level<string, Buffer>(path, { valueEncoding: 'buffer' });
    await raw.put(`!b!${bad.state.id}`, Buffer.from('garbage!'));
    await raw.close();

    const reopened = await Spool.open(path);
    const problems = await reopened.verify(async () => undefined);
    expect(problems.map((p) => [p.key, p.reason])).toEqual([[bad.state.id, 'body checksum mismatch']]);
    expect(await reopened.get(bad.state.id)).toBeUndefined();
    expect(await reopened.get(good.state.id)).toBeDefined();
    expect((await reopened.stats()).quarantined).toBe(1);
    expect(reopened.count).toBe(1);
    await reopened.close();
  });

  it('quarantines an undecodable state record at open and keeps the rest', async () => {
    const { spool, path } = await freshSpool();
    const good = record();
    const bad = record();
    await spool.put(good.state, good.body);
    await spool.put(bad.state, bad.body);
    await spool.close();
    const raw = new Level<string, string>(path, { valueEncoding: 'utf8' });
    await raw.put(`!s!${bad.state.id}`, '{not json');
    await raw.close();

    const reopened = await Spool.open(path);
    expect(await reopened.listIds()).toEqual([good.state.id]);
    expect((await reopened.stats()).quarantined).toBe(1);
    await reopened.close();
  });
});
