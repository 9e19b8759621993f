import { afterEach, describe, expect, it } from 'vitest';
import { Redelivery } from '../../src/ingress/redelivery.js';
import { Spool } from '../../src/spool/spool.js';
import { approvedEvent, intakeWithRedelivery } from '../../harness/intake-wiring.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** An intake whose sealed sequences are kept by a Redelivery index, as the emitter wires them. */
async function intakeWith(maxItems: number) {
  const wired = await intakeWithRedelivery(maxItems);
  cleanups.push(wired.close);
  return wired;
}

describe('redelivery: the sequence index follows the stream incarnation (issue 12, item 2)', () => {
  const from = (incarnation: string) => (seq: number) => ({ seq, incarnation, ack: () => undefined });

  /** Holds the spool's first put until released; `first` fails it instead (a refused write). */
  function holdFirstPut(spool: Spool, mode: 'delay' | 'fail') {
    const put = spool.batches.put.bind(spool.batches);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const called = new Promise<void>((r) => (started = r));
    let calls = 0;
    spool.batches.put = async (...args: Parameters<Spool['batches']['put']>) => {
      calls += 1;
      if (calls === 1) {
        started();
        await released;
        if (mode === 'fail') throw new Error('ENOSPC: no space left on device');
      }
      return put(...args);
    };
    return { called, release };
  }

  it('a batch of the old stream still being written when the stream is replaced never indexes into the new one', async () => {
    const { intake, spool, redelivery } = await intakeWith(3);
    await redelivery.rebind('APPROVED@old');
    const held = holdFirstPut(spool, 'fail');
    const old = from('APPROVED@old');
    const durable = Promise.all([1, 2, 3].map((n) => intake.offer(approvedEvent(n), old(n))));
    await held.called;
    held.release();
    // the write failed and waits to be tried again (as on a full disk) while the stream is replaced
    await redelivery.rebind('APPROVED@new');
    await durable;
    expect(await spool.seqIndex.batchOf(1)).toBeUndefined();
    expect(await redelivery.findSeq(1, 'APPROVED@new')).toBeUndefined();
    expect(redelivery.mayBeSealed(1)).toBe(false);
  });

  it('a write under way when the stream is replaced is waited for, then the index is cleared', async () => {
    const { intake, spool, redelivery } = await intakeWith(3);
    await redelivery.rebind('APPROVED@old');
    const held = holdFirstPut(spool, 'delay');
    const old = from('APPROVED@old');
    const durable = Promise.all([1, 2, 3].map((n) => intake.offer(approvedEvent(n), old(n))));
    await held.called;
    let rebound = false;
    const rebinding = redelivery.rebind('APPROVED@new').then(() => (rebound = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(rebound).toBe(false);
    // an old sequence is not found while sealing either, once the stream changed
    expect(await redelivery.findSeq(2, 'APPROVED@old')).toBeUndefined();
    held.release();
    await Promise.all([rebinding, durable]);
    expect(await spool.seqIndex.batchOf(2)).toBeUndefined();
    expect(redelivery.mayBeSealed(2)).toBe(false);

    // the new stream's own sequences are indexed as usual
    const fresh = from('APPROVED@new');
    await Promise.all([1, 2, 3].map((n) => intake.offer(approvedEvent(10 + n), fresh(n))));
    expect(await spool.seqIndex.batchOf(2)).toBeDefined();
    expect(await redelivery.findSeq(2, 'APPROVED@new')).toBeDefined();
    expect(await redelivery.findSeq(2, 'APPROVED@old')).toBeUndefined();
  });

  it('a redelivery of a batch still being written is found, durable only once the write lands', async () => {
    const { intake, spool, redelivery } = await intakeWith(3);
    await redelivery.rebind('APPROVED@1');
    const held = holdFirstPut(spool, 'delay');
    const first = from('APPROVED@1');
    const durable = Promise.all([1, 2, 3].map((n) => intake.offer(approvedEvent(n), first(n))));
    await held.called;
    expect(redelivery.mayHold({ seq: 2, deliveryCount: 1 })).toBe(true);
    expect(redelivery.mayHold({ seq: 4, deliveryCount: 1 })).toBe(false);
    expect(redelivery.mayHold({ seq: 4, deliveryCount: 2 })).toBe(true);
    // beyond 2^53 a sequence may stand for another message: never looked up (sent again instead)
    expect(redelivery.mayHold({ seq: 2 ** 60, deliveryCount: 2 })).toBe(false);
    const found = await redelivery.findSeq(2, 'APPROVED@1');
    expect(found).toBeDefined();
    let landed = false;
    void found?.durable.then(() => (landed = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(landed).toBe(false);
    held.release();
    await durable;
    await found?.durable;
    expect(landed).toBe(true);
    expect(await redelivery.findSeq(2, 'APPROVED@1')).toEqual({
      batchId: found?.batchId,
      durable: expect.any(Promise),
    });
    expect(await redelivery.findSeq(5, 'APPROVED@1')).toBeUndefined();
  });
});

describe('redelivery: a stream rolled back gives its sequences to new messages', () => {
  const stored = (incarnation: string, publishedMs: number) => (seq: number) => ({
    seq,
    incarnation,
    publishedMs,
    ack: () => undefined,
  });

  it('a message stored after every message of the batch holding its sequence is not held by it (durable or being written)', async () => {
    const { intake, spool, redelivery } = await intakeWith(3);
    await redelivery.rebind('APPROVED@same');
    const old = stored('APPROVED@same', 1_000);
    await Promise.all([1, 2, 3].map((n) => intake.offer(approvedEvent(n), old(n))));
    // a true redelivery (stored when it was first) is recognised; one stored later is another message
    expect(await redelivery.findSeq(2, 'APPROVED@same', 1_000)).toBeDefined();
    expect(await redelivery.findSeq(2, 'APPROVED@same', 999)).toBeDefined();
    expect(await redelivery.findSeq(2, 'APPROVED@same', 5_000)).toBeUndefined();
    expect(await spool.seqIndex.batchOf(2, 5_000)).toBeUndefined();
    expect(await spool.seqIndex.batchOf(2)).toBeDefined();

    // a batch still being written: the same, from the batches being sealed
    const put = spool.batches.put.bind(spool.batches);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    spool.batches.put = async (...args: Parameters<Spool['batches']['put']>) => {
      await released;
      return put(...args);
    };
    const later = stored('APPROVED@same', 2_000);
    const durable = Promise.all([4, 5, 6].map((n) => intake.offer(approvedEvent(n), later(n))));
    await new Promise((r) => setTimeout(r, 20));
    expect(await redelivery.findSeq(5, 'APPROVED@same', 2_000)).toBeDefined();
    expect(await redelivery.findSeq(5, 'APPROVED@same', 3_000)).toBeUndefined();
    release();
    await durable;
    expect(await redelivery.findSeq(5, 'APPROVED@same', 3_000)).toBeUndefined();
  });
});

describe('redelivery: a lookup overlapped by a seal or a write still finds the batch', () => {
  /** A sequence index whose reads wait until `answer` is called; `reads` counts them. */
  function slowIndex() {
    const answers: Array<(batchId: string | undefined) => void> = [];
    let onRead: () => void = () => undefined;
    const store = {
      seqIndex: {
        highest: 0,
        bind: async () => undefined,
        batchOf: (_seq: number) =>
          new Promise<string | undefined>((resolve) => {
            answers.push(resolve);
            onRead();
          }),
      },
      handle: { replaced: undefined },
    };
    const nextRead = () => new Promise<void>((r) => (onRead = r));
    return { store: store as unknown as ConstructorParameters<typeof Redelivery>[0], answers, nextRead };
  }
  const source = (seq: number) => ({ seq, incarnation: 'S@1', ack: () => undefined });
  /** A lookup of sequence 7 whose first read of the index has begun and not been answered. */
  async function lookupReading() {
    const { store, answers, nextRead } = slowIndex();
    const redelivery = new Redelivery(store);
    await redelivery.rebind('S@1');
    const firstRead = nextRead();
    const lookup = redelivery.findSeq(7, 'S@1');
    await firstRead;
    return { redelivery, answers, nextRead, lookup };
  }

  it('the batch holding it became durable during the read (its index entry written after the read began): looked up again', async () => {
    const { redelivery, answers, nextRead, lookup } = await lookupReading();
    // meanwhile the open batch holding 7 is sealed and written, index entry and all
    let durable!: () => void;
    redelivery.sealing('b1', [source(6), source(7)], new Promise<void>((r) => (durable = r)));
    durable();
    await Promise.resolve();
    const secondRead = nextRead();
    answers[0]?.(undefined); // the first read began before that write
    await Promise.race([secondRead, lookup]);
    answers[1]?.('b1');
    expect(await lookup).toEqual({ batchId: 'b1', durable: expect.any(Promise) });
    expect(answers).toHaveLength(2);
  });

  it('the open batch holding it was sealed during the read: found among the batches being written', async () => {
    const { redelivery, answers, lookup } = await lookupReading();
    const durable = new Promise<void>(() => undefined);
    redelivery.sealing('b2', [source(7)], durable);
    answers[0]?.(undefined);
    expect(await lookup).toEqual({ batchId: 'b2', durable });
  });

  it('nothing holds it: one read, undefined', async () => {
    const { answers, lookup } = await lookupReading();
    answers[0]?.(undefined);
    expect(await lookup).toBeUndefined();
    expect(answers).toHaveLength(1);
  });
});
