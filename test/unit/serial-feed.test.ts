import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { SerialFeed } from '../../src/ingress/serial-feed.js';
import { deferred, type Deferred } from '../../src/util/deferred.js';

describe('SerialFeed', () => {
  it('hands items over at once, in order, while no handling is pending', () => {
    const seen: number[] = [];
    const feed = new SerialFeed<number>((n) => void seen.push(n));
    for (const n of [1, 2, 3]) feed.push(n);
    expect(seen).toEqual([1, 2, 3]);
  });

  it('holds later items until the pending handling settles, then goes on in order', async () => {
    const seen: number[] = [];
    const gates = new Map<number, Deferred>();
    const feed = new SerialFeed<number>((n) => {
      seen.push(n);
      if (n % 2 === 0) {
        const gate = deferred();
        gates.set(n, gate);
        return gate.promise;
      }
      return undefined;
    });
    for (const n of [1, 2, 3, 4, 5]) feed.push(n);
    expect(seen).toEqual([1, 2]);
    gates.get(2)?.resolve();
    await Promise.resolve();
    await Promise.resolve();
    expect(seen).toEqual([1, 2, 3, 4]);
    feed.push(6);
    expect(seen).toEqual([1, 2, 3, 4]);
    gates.get(4)?.resolve();
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('a push from inside a handling waits for that handling to return', () => {
    const events: string[] = [];
    const feed: SerialFeed<number> = new SerialFeed<number>((n) => {
      events.push(`start ${n}`);
      if (n === 1) feed.push(2);
      events.push(`end ${n}`);
    });
    feed.push(1);
    expect(events).toEqual(['start 1', 'end 1', 'start 2', 'end 2']);
  });

  it('close waits for the handling in flight and returns what was never handed over', async () => {
    const gate = deferred();
    let settled = false;
    const feed = new SerialFeed<number>((n) =>
      n === 1 ? gate.promise.then(() => void (settled = true)) : undefined,
    );
    for (const n of [1, 2, 3]) feed.push(n);
    const closing = feed.close();
    feed.push(4);
    let closed = false;
    void closing.then(() => (closed = true));
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(false);
    gate.resolve();
    expect(await closing).toEqual([2, 3]);
    expect(settled).toBe(true);
  });

  it('a handling that throws or rejects closes the feed and settles failed with the error', async () => {
    const seen: number[] = [];
    const thrower = new SerialFeed<number>((n) => {
      seen.push(n);
      if (n === 2) throw new Error('bad 2');
    });
    for (const n of [1, 2, 3]) thrower.push(n);
    expect(seen).toEqual([1, 2]);
    expect((await thrower.failed).message).toBe('bad 2');
    expect(await thrower.close()).toEqual([3]);

    const rejecter = new SerialFeed<number>((n) => (n === 1 ? Promise.reject('refused') : undefined));
    rejecter.push(1);
    rejecter.push(2);
    const error = await rejecter.failed;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toBe('refused');
    expect(await rejecter.close()).toEqual([2]);
  });

  it('keeps no item once handed over, though items keep coming while handlings wait', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    let gate = deferred();
    let handled = 0;
    // every 100th handling waits, as an intake that pauses now and then
    const feed = new SerialFeed<object>(() => (++handled % 100 === 0 ? gate.promise : undefined));
    const firsts: WeakRef<object>[] = [];
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 250; i++) {
        const item = { round, i };
        if (round === 0) firsts.push(new WeakRef(item));
        feed.push(item);
      }
      const open = gate;
      gate = deferred();
      open.resolve();
      await new Promise((r) => setImmediate(r));
    }
    // 250 come per round, 100 are handled: the feed is never empty, the first round went long ago
    expect(handled).toBeGreaterThan(5000);
    for (let k = 0; k < 3 && firsts.some((ref) => ref.deref() !== undefined); k++) {
      await new Promise((r) => setTimeout(r, 10));
      gc();
    }
    expect(firsts.filter((ref) => ref.deref() !== undefined)).toHaveLength(0);
  });
});
