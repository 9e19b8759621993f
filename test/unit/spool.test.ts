import { stat } from 'node:fs/promises';
import { Level } from 'level';
import { afterEach, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../src/util/ids.js';
import { seqRanges, Spool } from '../../src/spool/spool.js';
import { tempDir } from '../../harness/workload.js';
import { spoolRecord } from '../support/spool-record.js';
import type { Stores } from '../../src/spool/stores.js';

const dirs: Array<{ remove(): Promise<void> }> = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await d.remove();
});

async function freshSpool(): Promise<{ spool: Spool; path: string }> {
  const dir = await tempDir('spool');
  dirs.push(dir);
  return { spool: await Spool.open(`${dir.path}/spool`), path: `${dir.path}/spool` };
}

const record = (body = Buffer.from('{"x":1}')) => spoolRecord(body);

describe('spool (real LevelDB)', () => {
  it('creates its directory 0700, lists oldest first, counts bytes, deletes', async () => {
    const { spool, path } = await freshSpool();
    expect((await stat(path)).mode & 0o777).toBe(0o700);
    const records = [record(), record(), record()];
    for (const r of [...records].reverse()) await spool.batches.put(r.state, r.body, [1, 2]);
    expect(await spool.batches.ids()).toEqual(records.map((r) => r.state.id));
    expect(spool.usage.batches.count).toBe(3);
    expect(spool.usage.batches.bytes).toBe(records.reduce((n, r) => n + r.body.length, 0));
    await spool.batches.delete(records[0]!.state.id);
    expect(spool.usage.batches.count).toBe(2);
    expect(await spool.batches.get(records[0]!.state.id)).toBeUndefined();
    await spool.close();
  });

  it('counts a fresh write without reading, any rewrite once; a delete uncounts from what it is told while its generation stands', async () => {
    const { spool } = await freshSpool();
    const gets: string[] = [];
    // the state records' store, to see which writes and deletes read it
    const { states } = (spool as unknown as { stores: Stores }).stores;
    const get = states.get.bind(states);
    states.get = ((key: string) => {
      gets.push(key);
      return get(key);
    }) as typeof states.get;
    const r = record();
    const written = await spool.batches.put(r.state, r.body, [], { fresh: true });
    expect(gets).toEqual([]);
    await spool.batches.put(r.state, r.body);
    expect(gets).toEqual([r.state.id]);
    expect(spool.usage.batches).toEqual({ count: 1, bytes: r.body.length });
    await spool.batches.delete(r.state.id, { state: r.state, generation: written.generation });
    expect(gets).toEqual([r.state.id]);
    expect(spool.usage.batches).toEqual({ count: 0, bytes: 0 });
    // told of a generation that no longer stands: it reads what to uncount (here: nothing)
    const other = record();
    await spool.batches.put(other.state, other.body, [], { fresh: true });
    await spool.batches.delete(r.state.id, { state: r.state, generation: written.generation - 1 });
    expect(gets).toEqual([r.state.id, r.state.id]);
    expect(spool.usage.batches).toEqual({ count: 1, bytes: other.body.length });
    await spool.close();
  });

  it('indexes stream sequences until the ack floor passes them', async () => {
    const { spool } = await freshSpool();
    const r = record();
    await spool.batches.put(r.state, r.body, [5, 6, 9]);
    expect(await spool.seqIndex.batchOf(6)).toBe(r.state.id);
    expect(await spool.seqIndex.batchOf(7)).toBeUndefined();
    expect(await spool.seqIndex.batchOf(4)).toBeUndefined();
    expect(seqRanges([9, 5, 6, 5])).toEqual([
      [5, 6],
      [9, 9],
    ]);
    expect(await spool.seqIndex.prune(6)).toBe(1);
    expect(await spool.seqIndex.batchOf(6)).toBeUndefined();
    expect(await spool.seqIndex.batchOf(9)).toBe(r.state.id);
    await spool.close();
  });

  it('moves a batch to the dead letters and back with a fresh attempt count', async () => {
    const { spool } = await freshSpool();
    const r = record();
    await spool.batches.put({ ...r.state, attempts: 4 }, r.body);
    await spool.deadLetters.moveBatch(r.state.id, {
      reason: 'http_400',
      at: new Date().toISOString(),
      status: 400,
      subjects: [],
    });
    expect(spool.usage.batches.count).toBe(0);
    expect((await spool.deadLetters.list()).map((d) => d.reason)).toEqual(['http_400']);
    expect(await spool.deadLetters.replay(r.state.id)).toBe(true);
    expect((await spool.batches.getState(r.state.id))?.attempts).toBe(0);
    expect(await spool.deadLetters.list()).toEqual([]);
    await spool.close();
  });

  it('patches a state record with one read and one write of the merge; a batch gone stays gone', async () => {
    const { spool } = await freshSpool();
    const r = record();
    await spool.batches.put({ ...r.state, attempts: 2, lastError: 'http_503' }, r.body);
    await spool.batches.patchState(r.state.id, { attempts: 3, parked: true, lastError: undefined });
    const patched = await spool.batches.getState(r.state.id);
    expect(patched).toMatchObject({ attempts: 3, parked: true, subjects: ['approved.x'] });
    expect(patched?.lastError).toBeUndefined();
    await spool.batches.delete(r.state.id);
    await spool.batches.patchState(r.state.id, { attempts: 4 });
    expect(await spool.batches.getState(r.state.id)).toBeUndefined();
    expect(spool.status()).toMatchObject({ open: true, batches: 0, bytes: 0 });
    await spool.close();
  });

  it('counts dead letters and quarantine in its size, kept in step with every move and recounted at open', async () => {
    const { spool, path } = await freshSpool();
    const [a, b, c] = [
      record(Buffer.alloc(300, 1)),
      record(Buffer.alloc(500, 2)),
      record(Buffer.alloc(700, 3)),
    ];
    for (const r of [a, b, c]) await spool.batches.put(r.state, r.body);
    expect(spool.usage.usedBytes).toBe(1500);
    const letter = { reason: 'http_400', at: new Date().toISOString(), status: 400, subjects: [] };
    await spool.deadLetters.moveBatch(a.state.id, letter);
    await spool.deadLetters.moveBatch(b.state.id, letter);
    await spool.deadLetters.addMessage({
      id: uuidv7(),
      kind: 'message',
      reason: 'invalid_json',
      at: new Date().toISOString(),
      subjects: ['approved.x'],
    });
    await spool.quarantine.takeBatch(c.state.id, 'test');
    expect(spool.usage.batches.bytes).toBe(0);
    expect(spool.usage.deadLetters.count).toBe(3);
    expect(spool.usage.deadLetters.bytes).toBeGreaterThan(800);
    expect(spool.usage.quarantine.count).toBe(1);
    expect(spool.usage.quarantine.bytes).toBeGreaterThan(700);
    expect(spool.usage.usedBytes).toBe(spool.usage.deadLetters.bytes + spool.usage.quarantine.bytes);
    const counted = {
      deadLetters: spool.usage.deadLetters.count,
      deadLetterBytes: spool.usage.deadLetters.bytes,
      quarantined: spool.usage.quarantine.count,
      quarantinedBytes: spool.usage.quarantine.bytes,
    };
    expect(await spool.stats()).toMatchObject(counted);
    await spool.close();

    let reopened = await Spool.open(path);
    expect(await reopened.stats()).toMatchObject({ ...counted, bytes: 0 });
    const deadBefore = reopened.usage.deadLetters.bytes;
    expect(await reopened.deadLetters.replay(a.state.id)).toBe(true);
    expect(reopened.usage.batches.bytes).toBe(300);
    await reopened.deadLetters.purge(b.state.id);
    await reopened.quarantine.purge(c.state.id);
    expect(reopened.usage.deadLetters.count).toBe(1);
    expect(reopened.usage.deadLetters.bytes).toBeLessThan(deadBefore - 800);
    expect(reopened.usage.quarantine.count).toBe(0);
    expect(reopened.usage.quarantine.bytes).toBe(0);
    const after = {
      deadLetters: 1,
      deadLetterBytes: reopened.usage.deadLetters.bytes,
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
    await spool.batches.put(good.state, good.body);
    await spool.batches.put(bad.state, bad.body);
    await spool.close();
    const raw = new Level<string, Buffer>(path, { valueEncoding: 'buffer' });
    await raw.put(`!b!${bad.state.id}`, Buffer.from('garbage!'));
    await raw.close();

    const reopened = await Spool.open(path);
    const problems = await reopened.verify(async () => undefined);
    expect(problems.map((p) => [p.key, p.reason])).toEqual([[bad.state.id, 'body checksum mismatch']]);
    expect(await reopened.batches.get(bad.state.id)).toBeUndefined();
    expect(await reopened.batches.get(good.state.id)).toBeDefined();
    expect((await reopened.stats()).quarantined).toBe(1);
    expect(reopened.usage.batches.count).toBe(1);
    await reopened.close();
  });

  it('quarantines an undecodable state record at open and keeps the rest', async () => {
    const { spool, path } = await freshSpool();
    const good = record();
    const bad = record();
    await spool.batches.put(good.state, good.body);
    await spool.batches.put(bad.state, bad.body);
    await spool.close();
    const raw = new Level<string, string>(path, { valueEncoding: 'utf8' });
    await raw.put(`!s!${bad.state.id}`, '{not json');
    await raw.close();

    const reopened = await Spool.open(path);
    expect(await reopened.batches.ids()).toEqual([good.state.id]);
    expect((await reopened.stats()).quarantined).toBe(1);
    await reopened.close();
  });
});
