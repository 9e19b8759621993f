import type { Counters } from './counters.js';
import type { EmitterStatus } from './emitter-status.js';
import type { SpoolStatus } from './status.js';

/**
 * The figures of the summary log lines, each named with its unit (items, batches, bytes), so that
 * a reader never sets items beside batches: `items_received` and `batches_delivered`, not
 * `received` and `delivered`. Log lines only; `emitter.stats` keeps its names for hosts.
 */

/** The close line: what came in, what went out, and what is left. */
export function closeSummary(counters: Counters, s: EmitterStatus) {
  const summary = counters.summary();
  return {
    items_received: summary.received,
    items_rejected: summary.rejected,
    items_delivered: counters.itemsDelivered,
    batches_delivered: summary.delivered,
    batches_parked: summary.parked,
    batches_dead_lettered: summary.deadLettered,
    batches_split: summary.split,
    batches_retried: counters.retried,
    batches_in_flight: s.deliveriesActive,
    batches_queued: s.queued,
    items_open: s.openItems,
    ...spoolSummary(s.spool),
  };
}

/** What the spool holds, as the spool open and close lines show it. */
export function spoolSummary(spool: Omit<SpoolStatus, 'open' | 'maxBytes'>) {
  return {
    spool_batches: spool.batches,
    spool_bytes: spool.bytes,
    spool_dead_letters: spool.deadLetters ?? 0,
    spool_dead_letter_bytes: spool.deadLetterBytes ?? 0,
    spool_quarantined_batches: spool.quarantined ?? 0,
    spool_quarantined_bytes: spool.quarantinedBytes ?? 0,
  };
}
