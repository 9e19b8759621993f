import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../util/logger.js';
import type { Intake } from './intake.js';

/**
 * Closing the intake against the shutdown deadline: seal the open batch and wait for every write.
 * Writes that are failing are then abandoned (their sources stay unacknowledged, their adders are
 * rejected); writes that are only slow get a short grace first, so a shutdown timeout of 0 still
 * makes the last batch durable on a working disk. It never acknowledges anything itself.
 */

/** beyond the shutdown timeout, for spool writes that are slow but not failing */
const SLOW_WRITE_GRACE_MS = 10_000;

export interface BoundedClose {
  /** monotonic ms (performance.now()) by which the writes should be done */
  deadline: number;
  /** TRANSMITTER_SHUTDOWN_TIMEOUT_S in ms, for the log line */
  timeoutMs: number;
  /** why the spool is no longer the one opened, for the log line */
  spoolReplaced(): string | undefined;
  /** resolves on a second SIGTERM: failing writes are not waited for any longer */
  hurried: Promise<void>;
  logger: Logger;
}

/** Resolves with what was abandoned, or undefined when every write finished. */
export async function closeBounded(
  intake: Intake,
  how: BoundedClose,
): Promise<{ batches: number; items: number } | undefined> {
  const closing = intake.close().then(() => true);
  const within = (ms: number) => Promise.race([closing, delay(Math.max(0, ms), false, { ref: false })]);
  let closed = await Promise.race([within(how.deadline - performance.now()), how.hurried.then(() => false)]);
  const failing = () => ['spool_write_failing', 'spool_replaced'].includes(intake.pauseReason() ?? '');
  if (!closed && !failing()) closed = await within(SLOW_WRITE_GRACE_MS);
  if (closed) return undefined;
  const abandoned = await intake.abandonWrites();
  how.logger.error(
    {
      batches_abandoned: abandoned.batches,
      items_abandoned: abandoned.items,
      timeoutMs: how.timeoutMs,
      spool: how.spoolReplaced() ?? 'writes failing',
    },
    'close: batches could not be written to the spool before the shutdown timeout; their messages ' +
      'stay unacknowledged in JetStream (in-process adds were rejected)',
  );
  return abandoned;
}
