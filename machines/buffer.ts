import { assign, emit, setup } from 'xstate';

/**
 * The buffer statechart: decides when the open batch is sealed. It keeps counts only; the items
 * themselves live in a plain builder in src/ (one XState event per new item, no item copies).
 *
 * A batch is sealed when the next item would overflow the byte budget (`bytes`), when it holds
 * `maxItems` (`size`), `intervalMs` after its first item (`interval`), on FLUSH (`manual`) and
 * on SHUTDOWN (`shutdown`). Each seal is reported with the emitted `seal` event, synchronously,
 * before the item that caused a `bytes` seal is counted into the next batch.
 */

export type SealTrigger = 'size' | 'bytes' | 'interval' | 'manual' | 'shutdown';

export interface BufferInput {
  maxItems: number;
  /** bytes available for items in one batch (the batch limit minus the envelope) */
  maxItemBytes: number;
  intervalMs: number;
}

export interface BufferContext extends BufferInput {
  count: number;
  bytes: number;
}

export type BufferEvent =
  /** a new (not deduplicated) item of `bytes` serialised bytes is about to join the batch */
  { type: 'ADD'; bytes: number } | { type: 'FLUSH' } | { type: 'SHUTDOWN' };

export type BufferEmitted = { type: 'seal'; trigger: SealTrigger; count: number; bytes: number };

export const bufferMachine = setup({
  types: {
    input: {} as BufferInput,
    context: {} as BufferContext,
    events: {} as BufferEvent,
    emitted: {} as BufferEmitted,
  },
  actions: {
    count: assign(({ context, event }) => {
      if (event.type !== 'ADD') return {};
      return { count: context.count + 1, bytes: context.bytes + event.bytes };
    }),
    reset: assign({ count: 0, bytes: 0 }),
    seal: emit(({ context }, params: { trigger: SealTrigger }) => ({
      type: 'seal' as const,
      trigger: params.trigger,
      count: context.count,
      bytes: context.bytes,
    })),
  },
  guards: {
    full: ({ context }) => context.count >= context.maxItems,
    wouldOverflow: ({ context, event }) =>
      event.type === 'ADD' && context.bytes + event.bytes > context.maxItemBytes,
  },
  delays: {
    interval: ({ context }) => context.intervalMs,
  },
}).createMachine({
  id: 'buffer',
  context: ({ input }) => ({ ...input, count: 0, bytes: 0 }),
  initial: 'empty',
  states: {
    empty: {
      on: {
        ADD: { target: 'filling', actions: 'count' },
        SHUTDOWN: 'closed',
      },
    },
    filling: {
      always: {
        guard: 'full',
        target: 'empty',
        actions: [{ type: 'seal', params: { trigger: 'size' } }, 'reset'],
      },
      after: {
        interval: { target: 'empty', actions: [{ type: 'seal', params: { trigger: 'interval' } }, 'reset'] },
      },
      on: {
        ADD: [
          {
            guard: 'wouldOverflow',
            target: 'filling',
            reenter: true,
            actions: [{ type: 'seal', params: { trigger: 'bytes' } }, 'reset', 'count'],
          },
          { actions: 'count' },
        ],
        FLUSH: { target: 'empty', actions: [{ type: 'seal', params: { trigger: 'manual' } }, 'reset'] },
        SHUTDOWN: { target: 'closed', actions: [{ type: 'seal', params: { trigger: 'shutdown' } }, 'reset'] },
      },
    },
    closed: { type: 'final' },
  },
});
