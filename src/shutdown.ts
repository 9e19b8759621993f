import { setTimeout as delay } from 'node:timers/promises';
import { closeBounded } from './intake/bounded-close.js';
import type { OpenStages } from './stages.js';
import type { Logger } from './util/logger.js';

/**
 * Taking the chain down in reverse order, so that nothing is acknowledged that is not durable:
 * stop pulling, seal the open batch (bounded), wait (bounded) for deliveries, then close
 * ingress, delivery, ledger, transport and spool. Undelivered batches stay in the spool. It never
 * acknowledges, deletes or sends anything itself: each stage does its own part of closing.
 */

export interface ShutdownOptions {
  /** TRANSMITTER_SHUTDOWN_TIMEOUT_S in ms: for the spool writes and the deliveries together */
  timeoutMs: number;
  /** resolves when close must stop waiting for deliveries (a second SIGTERM) */
  hurried: Promise<void>;
  logger: Logger;
}

export type Abandoned = { batches: number; items: number };

/** Resolves with what could not be written to the spool in time, if anything. */
export async function shutdownStages(
  stages: OpenStages,
  how: ShutdownOptions,
): Promise<Abandoned | undefined> {
  const { ingress, intake, spool } = stages;
  const { timeoutMs, logger } = how;
  const deadline = performance.now() + timeoutMs;
  const pulling = ingress?.stop();
  // a handler paused by backpressure (e.g. spool full while the sink is down) must not hold the stop
  intake?.releaseWaiters();
  await pulling;
  const spoolReplaced = () => spool?.handle.replaced;
  const abandoned =
    intake &&
    (await closeBounded(intake, { deadline, timeoutMs, spoolReplaced, hurried: how.hurried, logger }));
  const outcome = await deliveriesBy(stages, deadline, how.hurried);
  if (outcome !== 'delivered')
    logger.warn(
      { timeoutMs, why: outcome },
      'close: undelivered batches stay in the spool for the next start',
    );
  await closeStages(stages);
  return abandoned;
}

/** Resolves when every batch sealed so far is delivered, parked or dead-lettered. */
export async function delivered({ intake, delivery }: OpenStages): Promise<void> {
  await intake?.settled();
  await delivery?.idle();
}

/** Waits for deliveries until the deadline, a hurry, or the origin's breaker opening. */
function deliveriesBy(
  stages: OpenStages,
  deadline: number,
  hurried: Promise<void>,
): Promise<'delivered' | 'origin_down' | 'hurried' | 'timeout'> {
  const { delivery } = stages;
  return Promise.race([
    delivered(stages).then(() => 'delivered' as const),
    ...(delivery ? [delivery.originDown().then(() => 'origin_down' as const)] : []),
    hurried.then(() => 'hurried' as const),
    delay(Math.max(0, deadline - performance.now()), 'timeout' as const, { ref: false }),
  ]);
}

/** Close whatever is open, last stage first. */
export async function closeStages(stages: OpenStages): Promise<void> {
  await stages.ingress?.close();
  await stages.delivery?.stop();
  stages.ledger?.detach();
  await stages.ledger?.ledger.close();
  await stages.transport?.close().catch(() => undefined);
  await stages.spool?.close().catch(() => undefined);
  await stages.inspection?.stop();
}
