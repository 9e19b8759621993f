import { emit, setup } from 'xstate';

/**
 * The buffer statechart: decides when the open batch is sealed. The items, and the counting of
 * items and bytes, live in src/ (a plain builder); this machine gets one event per batch-level
 * fact, not one per item: the first item (which starts the interval), a limit reached, a flush,
 * shutdown. That keeps the per-item cost out of the actor (an XState event per item would cost
 * more than the rest of the pipeline).
 *
 * A batch is sealed when a limit is reached (`size` after the item that fills it, `bytes` before
 * the item that would overflow it), `intervalMs` after its first item (`interval`), on FLUSH
 * (`manual`) and on SHUTDOWN (`shutdown`). Each seal is reported with the emitted `seal` event,
 * synchronously, so the wiring takes the builder's items at exactly that point.
 */

export const SEAL_TRIGGERS = ['size', 'bytes', 'interval', 'manual', 'shutdown'] as const;
export type SealTrigger = (typeof SEAL_TRIGGERS)[number];

export interface BufferInput {
  intervalMs: number;
}

export type BufferEvent =
  /** the open batch got its first item */
  | { type: 'FIRST_ITEM' }
  /** the open batch is full: by item count, or the next item would overflow the byte budget */
  | { type: 'LIMIT_REACHED'; trigger: 'size' | 'bytes' }
  | { type: 'FLUSH' }
  | { type: 'SHUTDOWN' };

export type BufferEmitted = { type: 'seal'; trigger: SealTrigger };

export const bufferMachine = setup({
  types: {
    input: {} as BufferInput,
    context: {} as BufferInput,
    events: {} as BufferEvent,
    emitted: {} as BufferEmitted,
  },
  actions: {
    seal: emit((_, params: { trigger: SealTrigger }) => ({ type: 'seal' as const, trigger: params.trigger })),
    sealAtLimit: emit(({ event }) => ({
      type: 'seal' as const,
      trigger: event.type === 'LIMIT_REACHED' ? event.trigger : ('size' as const),
    })),
  },
  delays: {
    interval: ({ context }) => context.intervalMs,
  },
}).createMachine({
  id: 'buffer',
  context: ({ input }) => ({ ...input }),
  initial: 'empty',
  states: {
    empty: {
      on: {
        FIRST_ITEM: 'filling',
        SHUTDOWN: 'closed',
      },
    },
    filling: {
      after: {
        interval: { target: 'empty', actions: { type: 'seal', params: { trigger: 'interval' } } },
      },
      on: {
        LIMIT_REACHED: { target: 'empty', actions: 'sealAtLimit' },
        FLUSH: { target: 'empty', actions: { type: 'seal', params: { trigger: 'manual' } } },
        SHUTDOWN: { target: 'closed', actions: { type: 'seal', params: { trigger: 'shutdown' } } },
      },
    },
    closed: { type: 'final' },
  },
});
