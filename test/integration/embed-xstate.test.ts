import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assign, createActor, sendTo, setup, type ActorRefFrom } from 'xstate';
import {
  emitterLogic,
  emittersClosed,
  type EmitterActorEmitted,
  type EmitterActorInput,
} from '../../plugins/xstate.js';
import { Spool } from '../../src/spool/spool.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { deliveredKeys, tempDir } from '../../harness/workload.js';
import { deliveredEvents, embedOptions } from '../fixtures/embed-support.js';

let sink: Sink;
beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink?.close();
});

type ParentEvent =
  | { type: 'FOUND_EDGE'; edge: unknown }
  | { type: 'FOUND_NODE'; node: unknown }
  | { type: 'FINDING'; data: unknown }
  | { type: 'SYNC' }
  | EmitterActorEmitted;

/** A probe-like parent: spawns the emitter actor and forwards what it finds. */
const probe = setup({
  types: {
    context: {} as {
      emitter?: ActorRefFrom<typeof emitterLogic>;
      started: boolean;
      flushed: number;
      errors: string[];
    },
    events: {} as ParentEvent,
    input: {} as EmitterActorInput,
  },
  actors: { emitter: emitterLogic },
}).createMachine({
  context: ({ spawn, input }) => ({
    emitter: spawn('emitter', { id: 'emitter', input }),
    started: false,
    flushed: 0,
    errors: [],
  }),
  on: {
    FOUND_EDGE: {
      actions: sendTo('emitter', ({ event }) => ({ type: 'ADD_EDGE' as const, edge: event.edge })),
    },
    FOUND_NODE: {
      actions: sendTo('emitter', ({ event }) => ({ type: 'ADD_NODE' as const, node: event.node })),
    },
    FINDING: {
      actions: sendTo('emitter', ({ event }) => ({
        type: 'ADD' as const,
        subject: 'probe.finding',
        data: event.data,
      })),
    },
    SYNC: { actions: sendTo('emitter', { type: 'FLUSH' as const }) },
    'emitter.started': { actions: assign({ started: true }) },
    'emitter.flushed': { actions: assign({ flushed: ({ context }) => context.flushed + 1 }) },
    'emitter.error': {
      actions: assign({ errors: ({ context, event }) => [...context.errors, event.error.message] }),
    },
  },
});

const iso = (s: number) => new Date(Date.UTC(2026, 0, 1) + s * 1000).toISOString();

describe('emitterLogic: the emitter as an XState actor', () => {
  it('a parent spawns it, sends ADD/ADD_EDGE/ADD_NODE/FLUSH, stops: everything is delivered', async () => {
    const spool = await tempDir('embed-xstate');
    try {
      const actor = createActor(probe, {
        input: {
          ...embedOptions(`${sink.url}/ingest`, spool.path, { batchSize: 100, batchIntervalS: 60 }),
          closeTimeoutS: 5,
        },
      });
      actor.start();
      // events sent before the spool is open wait for it, in order
      for (let i = 0; i < 250; i++) {
        actor.send({
          type: 'FOUND_EDGE',
          edge: {
            type: 'USES_NS',
            source: `s${i}.example.test`,
            target: 'ns1.example.test',
            observed_at: iso(i),
            probe_id: 'p',
            run_id: 'r',
          },
        });
        actor.send({
          type: 'FOUND_NODE',
          node: { ip: `10.9.0.${i}`, first_seen: iso(i), last_seen: iso(i) },
        });
        actor.send({ type: 'FINDING', data: { id: `f${i}` } });
      }
      actor.send({ type: 'FOUND_EDGE', edge: { type: 'NOPE' } });
      actor.send({ type: 'SYNC' });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no emitter.flushed')), 10_000);
        actor.subscribe((s) => {
          if (s.context.flushed > 0) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      expect(actor.getSnapshot().context.started).toBe(true);
      expect(actor.getSnapshot().context.errors).toEqual([expect.stringMatching(/^edge\.type: /)]);

      // more items after the flush; they are only delivered because stopping flushes and waits
      for (let i = 0; i < 5; i++) actor.send({ type: 'FINDING', data: { id: `late${i}` } });
      actor.stop();
      await emittersClosed();

      const keys = deliveredKeys(sink.requests);
      expect(keys.filter((k) => k.startsWith('e:'))).toHaveLength(250);
      expect(keys.filter((k) => k.startsWith('i:'))).toHaveLength(250);
      const ids = deliveredEvents(sink.requests).map((e) => e.data.id);
      expect(ids).toHaveLength(255);
      expect(ids.slice(-5)).toEqual(['late0', 'late1', 'late2', 'late3', 'late4']);
      // closed cleanly: the spool is released (openable here) and empty
      const reopened = await Spool.open(spool.path);
      try {
        expect(reopened.usage.batches.count).toBe(0);
      } finally {
        await reopened.close();
      }
    } finally {
      await spool.remove();
      sink.clear();
    }
  });

  it('reports a start failure to its parent instead of throwing', async () => {
    const actor = createActor(probe, {
      input: { destinationUrl: 'ftp://nope', spoolDir: '/tmp/never' },
    });
    actor.start();
    actor.send({ type: 'FINDING', data: { id: 'x' } });
    await new Promise((r) => setTimeout(r, 50));
    const { errors, started } = actor.getSnapshot().context;
    expect(started).toBe(false);
    expect(errors[0]).toMatch(/^destinationUrl: /);
    expect(errors).toHaveLength(2);
    actor.stop();
    await emittersClosed();
  });
});
