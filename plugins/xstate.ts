import { fromCallback } from 'xstate';
import { createEmitter, type EmbeddedConfig, type TransmitterEnv } from '../src/index.js';

/**
 * The emitter as XState actor logic. A parent invokes or spawns it with the embedded
 * configuration as input:
 *
 *   setup({ actors: { emitter: emitterLogic } }).createMachine({
 *     invoke: { id: 'emitter', src: 'emitter', input: { destinationUrl, spoolDir } },
 *     on: { FOUND: { actions: sendTo('emitter', ({ event }) => ({ type: 'ADD_EDGE', edge: event.edge })) } },
 *   });
 *
 * It accepts ADD, ADD_EDGE, ADD_NODE and FLUSH, in order (events sent before the spool is open
 * wait for it). It sends back to its parent `emitter.started`, `emitter.flushed` and
 * `emitter.error` (with the error: an invalid item, a closed emitter, a start failure).
 *
 * When the actor stops (its state is left, or the parent stops) it closes cleanly in the
 * background: flush, wait at most `closeTimeoutS` (default 5), close. XState cannot await that;
 * a host that exits right after stopping its actors awaits `emittersClosed()` first.
 */

export type EmitterActorEvent =
  | { type: 'ADD'; subject: string; data: unknown }
  | { type: 'ADD_EDGE'; edge: unknown }
  | { type: 'ADD_NODE'; node: unknown }
  | { type: 'FLUSH' };

export type EmitterActorEmitted =
  | { type: 'emitter.started' }
  | { type: 'emitter.flushed' }
  | { type: 'emitter.error'; error: Error; event?: EmitterActorEvent['type'] };

export type EmitterActorInput = (EmbeddedConfig | TransmitterEnv) & {
  /** the longest a stopped actor waits for deliveries before closing; default 5 s */
  closeTimeoutS?: number;
};

const closing = new Set<Promise<void>>();

/** Resolves when every emitter actor stopped so far has finished closing. */
export async function emittersClosed(): Promise<void> {
  while (closing.size > 0) await Promise.allSettled([...closing]);
}

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

export const emitterLogic = fromCallback<EmitterActorEvent, EmitterActorInput, EmitterActorEmitted>(
  ({ input, receive, sendBack }) => {
    const { closeTimeoutS = 5, ...config } = input;
    let stopped = false;
    const report = (event: EmitterActorEmitted) => {
      if (!stopped) sendBack(event);
    };
    let ready: Promise<void>;
    let emitter: ReturnType<typeof createEmitter> | undefined;
    try {
      emitter = createEmitter(config);
      ready = emitter.start().then(() => report({ type: 'emitter.started' }));
    } catch (error) {
      ready = Promise.reject(asError(error));
    }
    ready.catch((error: unknown) => report({ type: 'emitter.error', error: asError(error) }));

    // Every event runs after the previous ones were offered: they chain on `ready`, in order.
    receive((event) => {
      const run = (): Promise<unknown> => {
        const e = emitter!;
        switch (event.type) {
          case 'ADD':
            return e.add(event.subject, event.data);
          case 'ADD_EDGE':
            return e.addEdge(event.edge);
          case 'ADD_NODE':
            return e.addNode(event.node);
          case 'FLUSH':
            return e.flush().then(() => report({ type: 'emitter.flushed' }));
        }
      };
      ready
        .then(run)
        .catch((error: unknown) =>
          report({ type: 'emitter.error', error: asError(error), event: event.type }),
        );
    });

    return () => {
      stopped = true;
      if (!emitter) return;
      const e = emitter;
      const done = ready
        .then(async () => {
          await e.flush();
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            e.wait(),
            new Promise((resolve) => (timer = setTimeout(resolve, closeTimeoutS * 1000))),
          ]);
          clearTimeout(timer);
        })
        .catch(() => undefined)
        .then(() => e.close())
        .catch((error: unknown) => {
          e.logger.error({ err: asError(error).message }, 'emitter actor: close failed');
        });
      closing.add(done);
      void done.finally(() => closing.delete(done));
    };
  },
);
