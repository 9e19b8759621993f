import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import { bufferMachine, type BufferEmitted, type BufferInput } from '../../machines/buffer.js';

function start(input: Partial<BufferInput> = {}) {
  const clock = new SimulatedClock();
  const actor = createActor(bufferMachine, {
    clock,
    input: { maxItems: 3, maxItemBytes: 100, intervalMs: 1000, ...input },
  });
  const seals: BufferEmitted[] = [];
  actor.on('seal', (e) => seals.push(e));
  actor.start();
  return { actor, clock, seals };
}

describe('buffer machine', () => {
  it('seals on count', () => {
    const { actor, seals } = start();
    for (let i = 0; i < 7; i++) actor.send({ type: 'ADD', bytes: 10 });
    expect(seals).toEqual([
      { type: 'seal', trigger: 'size', count: 3, bytes: 30 },
      { type: 'seal', trigger: 'size', count: 3, bytes: 30 },
    ]);
    expect(actor.getSnapshot().context).toMatchObject({ count: 1, bytes: 10 });
    expect(actor.getSnapshot().value).toBe('filling');
  });

  it('seals before an item that would overflow the byte budget, and counts it into the next batch', () => {
    const { actor, seals } = start({ maxItems: 100 });
    actor.send({ type: 'ADD', bytes: 60 });
    actor.send({ type: 'ADD', bytes: 40 });
    actor.send({ type: 'ADD', bytes: 1 });
    expect(seals).toEqual([{ type: 'seal', trigger: 'bytes', count: 2, bytes: 100 }]);
    expect(actor.getSnapshot().context).toMatchObject({ count: 1, bytes: 1 });
  });

  it('seals on the interval counted from the first item of the batch', () => {
    const { actor, clock, seals } = start({ maxItems: 100 });
    clock.increment(5000);
    expect(seals).toEqual([]);
    actor.send({ type: 'ADD', bytes: 1 });
    clock.increment(999);
    actor.send({ type: 'ADD', bytes: 1 });
    expect(seals).toEqual([]);
    clock.increment(1);
    expect(seals).toEqual([{ type: 'seal', trigger: 'interval', count: 2, bytes: 2 }]);
    expect(actor.getSnapshot().value).toBe('empty');
  });

  it('restarts the interval after a bytes seal', () => {
    const { actor, clock, seals } = start({ maxItems: 100 });
    actor.send({ type: 'ADD', bytes: 90 });
    clock.increment(600);
    actor.send({ type: 'ADD', bytes: 90 });
    clock.increment(600);
    expect(seals.map((s) => s.trigger)).toEqual(['bytes']);
    clock.increment(400);
    expect(seals.map((s) => s.trigger)).toEqual(['bytes', 'interval']);
  });

  it('seals on FLUSH and SHUTDOWN, and not when empty', () => {
    const { actor, seals } = start();
    actor.send({ type: 'FLUSH' });
    actor.send({ type: 'ADD', bytes: 5 });
    actor.send({ type: 'FLUSH' });
    actor.send({ type: 'ADD', bytes: 7 });
    actor.send({ type: 'SHUTDOWN' });
    expect(seals.map((s) => [s.trigger, s.count])).toEqual([
      ['manual', 1],
      ['shutdown', 1],
    ]);
    expect(actor.getSnapshot().status).toBe('done');
  });

  it('a batch of one item seals at once when maxItems is 1', () => {
    const { actor, seals } = start({ maxItems: 1 });
    actor.send({ type: 'ADD', bytes: 5 });
    actor.send({ type: 'ADD', bytes: 5 });
    expect(seals.map((s) => s.trigger)).toEqual(['size', 'size']);
    expect(actor.getSnapshot().value).toBe('empty');
  });

  it('every state is reachable (path coverage)', () => {
    const paths = getShortestPaths(bufferMachine, {
      input: { maxItems: 2, maxItemBytes: 100, intervalMs: 1000 },
      events: [
        { type: 'ADD', bytes: 10 },
        { type: 'FLUSH' },
        { type: 'SHUTDOWN' },
        { type: 'xstate.after.interval.buffer.filling' } as never,
      ],
    });
    const reached = new Set(paths.map((p) => JSON.stringify(p.state.value)));
    expect(reached).toEqual(new Set(['"empty"', '"filling"', '"closed"']));
  });
});
