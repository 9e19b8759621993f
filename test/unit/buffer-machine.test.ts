import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import { bufferMachine, type BufferEmitted } from '../../machines/buffer.js';

function start(intervalMs = 1000) {
  const clock = new SimulatedClock();
  const actor = createActor(bufferMachine, { clock, input: { intervalMs } });
  const seals: string[] = [];
  actor.on('seal', (e: BufferEmitted) => seals.push(e.trigger));
  actor.start();
  return { actor, clock, seals };
}

describe('buffer machine', () => {
  it('seals on a limit with the limit as trigger', () => {
    const { actor, seals } = start();
    actor.send({ type: 'FIRST_ITEM' });
    actor.send({ type: 'LIMIT_REACHED', trigger: 'size' });
    actor.send({ type: 'FIRST_ITEM' });
    actor.send({ type: 'LIMIT_REACHED', trigger: 'bytes' });
    expect(seals).toEqual(['size', 'bytes']);
    expect(actor.getSnapshot().value).toBe('empty');
  });

  it('seals on the interval counted from the first item of the batch', () => {
    const { actor, clock, seals } = start();
    clock.increment(5000);
    expect(seals).toEqual([]);
    actor.send({ type: 'FIRST_ITEM' });
    clock.increment(999);
    expect(seals).toEqual([]);
    clock.increment(1);
    expect(seals).toEqual(['interval']);
    expect(actor.getSnapshot().value).toBe('empty');
  });

  it('restarts the interval for the next batch after a limit seal', () => {
    const { actor, clock, seals } = start();
    actor.send({ type: 'FIRST_ITEM' });
    clock.increment(600);
    actor.send({ type: 'LIMIT_REACHED', trigger: 'bytes' });
    actor.send({ type: 'FIRST_ITEM' });
    clock.increment(600);
    expect(seals).toEqual(['bytes']);
    clock.increment(400);
    expect(seals).toEqual(['bytes', 'interval']);
  });

  it('seals on FLUSH and SHUTDOWN, and not when empty', () => {
    const { actor, seals } = start();
    actor.send({ type: 'FLUSH' });
    actor.send({ type: 'FIRST_ITEM' });
    actor.send({ type: 'FLUSH' });
    actor.send({ type: 'FIRST_ITEM' });
    actor.send({ type: 'SHUTDOWN' });
    expect(seals).toEqual(['manual', 'shutdown']);
    expect(actor.getSnapshot().status).toBe('done');
  });

  it('shuts down without a seal when empty', () => {
    const { actor, seals } = start();
    actor.send({ type: 'SHUTDOWN' });
    expect(seals).toEqual([]);
    expect(actor.getSnapshot().status).toBe('done');
  });

  it('every state is reachable (path coverage)', () => {
    const paths = getShortestPaths(bufferMachine, {
      input: { intervalMs: 1000 },
      events: [
        { type: 'FIRST_ITEM' },
        { type: 'LIMIT_REACHED', trigger: 'size' },
        { type: 'LIMIT_REACHED', trigger: 'bytes' },
        { type: 'FLUSH' },
        { type: 'SHUTDOWN' },
        { type: 'xstate.after.interval.buffer.filling' } as never,
      ],
    });
    const reached = new Set(paths.map((p) => JSON.stringify(p.state.value)));
    expect(reached).toEqual(new Set(['"empty"', '"filling"', '"closed"']));
  });
});
