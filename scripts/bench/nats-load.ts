/** Putting load on JetStream: streams, pre-published messages, a publisher at a fixed rate. */
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { progress, sleep } from './context.js';
import { eventBytes } from './payload.js';

// NATS helpers

export async function ensureStream(nc: NatsConnection, name: string, subjects: string[]): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects, storage: StorageType.File });
}

export async function streamCount(nc: NatsConnection, name: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  return (await jsm.streams.info(name)).state.messages;
}

/** JetStream publish with a window of 1000 outstanding acks. */
export async function prepublish(
  nc: NatsConnection,
  subject: string,
  n: number,
): Promise<{ seconds: number }> {
  const js = jetstream(nc);
  const started = performance.now();
  const WINDOW = 1000;
  for (let i = 0; i < n; i += WINDOW) {
    const acks: Promise<unknown>[] = [];
    for (let k = i; k < Math.min(n, i + WINDOW); k++)
      acks.push(js.publish(subject, eventBytes(k, Date.now())));
    await Promise.all(acks);
    progress.set({ label: 'publish', done: Math.min(n, i + WINDOW), total: n, unit: 'msgs' });
  }
  return { seconds: (performance.now() - started) / 1000 };
}

/**
 * Core-NATS publish at a fixed offered rate (the stream captures the subject) until stop();
 * `sent` counts what was published. Each event carries its publish time in `t`.
 */
export function pacedPublisher(nc: NatsConnection, subject: string, rate: number) {
  const state = { sent: 0, stopped: false };
  const started = performance.now();
  const done = (async () => {
    while (!state.stopped) {
      const target = Math.floor(((performance.now() - started) / 1000) * rate);
      while (state.sent < target) {
        nc.publish(subject, eventBytes(state.sent, Date.now()));
        state.sent += 1;
      }
      await sleep(2);
    }
    await nc.flush();
  })();
  return {
    state,
    async stop() {
      state.stopped = true;
      await done;
      return state.sent;
    },
  };
}
