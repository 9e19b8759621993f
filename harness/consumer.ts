import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * Resolves once the durable consumer has exactly `count` messages delivered and not acknowledged:
 * the emitter holds them in its open batch (acknowledged only once the batch is in the spool).
 */
export async function waitForAckPending(
  natsUrl: string,
  durable: string,
  count: number,
  { stream = 'APPROVED', timeoutMs = 30_000 } = {},
): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const until = performance.now() + timeoutMs;
    let pending = -1;
    while (performance.now() < until) {
      pending = await jsm.consumers
        .info(stream, durable)
        .then((info) => info.num_ack_pending)
        .catch(() => -1);
      if (pending === count) return;
      await delay(100);
    }
    throw new Error(`consumer ${durable}: ${pending} ack pending after ${timeoutMs} ms, expected ${count}`);
  } finally {
    await nc.close();
  }
}
