import { Counter, type Registry } from 'prom-client';
import { SECTIONS } from '../model.js';
import type { Counters, Tally } from './counters.js';

/**
 * The Prometheus counter families, read from the emitter's one tally (`Counters`) at scrape time:
 * they keep no count of their own. Label values are made safe here (reason codes capped, results
 * in snake_case); the tally keeps the raw values that /api/v1/stats shows.
 */

type Series = { labels: Record<string, string>; value: number };

/** distinct rejection / pause reasons kept as label values; more become `other` */
const MAX_REASONS = 32;
const RESULT_LABELS: Record<string, string> = {
  delivered: 'delivered',
  split: 'split',
  deadLettered: 'dead_lettered',
  parked: 'parked',
};
const SOURCES = ['jetstream', 'api'] as const;

/** A counter family whose series are read from `read()` on every scrape. */
function countView(
  registers: Registry[],
  spec: { name: string; help: string; labelNames?: string[] },
  read: () => Series[],
): void {
  new Counter({
    ...spec,
    labelNames: spec.labelNames ?? [],
    registers,
    collect() {
      this.reset();
      for (const { labels, value } of read()) {
        if (Object.keys(labels).length === 0) this.inc(value);
        else this.inc(labels, value);
      }
    },
  });
}

/** `code` -> a safe label value; the first MAX_REASONS distinct ones are kept, later ones are `other`. */
function reasonLabeller(): (reason: string) => string {
  const kept = new Set<string>();
  return (reason) => {
    const clean = reason.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 64) || 'unknown';
    if (kept.has(clean)) return clean;
    if (kept.size >= MAX_REASONS) return 'other';
    kept.add(clean);
    return clean;
  };
}

const zeros = (labels: Array<Record<string, string>>): Series[] =>
  labels.map((l) => ({ labels: l, value: 0 }));

function relabel<L extends string>(
  tally: Tally<L>,
  map: (labels: Record<L, string>) => Record<string, string>,
) {
  return tally.entries().map((s) => ({ labels: map(s.labels), value: s.value }));
}

type Label = (reason: string) => string;
interface CountSpec {
  name: string;
  help: string;
  labelNames?: string[];
  /** the series from the tally; `reason` makes a reason code a safe label value */
  read: (counts: Counters, reason: Label) => Series[];
}

const EVERY_SOURCE = SECTIONS.flatMap((section) => SOURCES.map((source) => ({ section, source })));

const COUNT_VIEWS: CountSpec[] = [
  {
    name: 'batch_emitter_items_received_total',
    help: 'Items accepted into a batch, by section (kind) and source (jetstream, api).',
    labelNames: ['section', 'source'],
    read: (c) => [...zeros(EVERY_SOURCE), ...c.received.entries()],
  },
  {
    name: 'batch_emitter_items_rejected_total',
    help: 'Messages or items refused (dead-lettered), by reason code.',
    labelNames: ['reason'],
    read: (c, reason) => relabel(c.rejected, (l) => ({ reason: reason(l.reason) })),
  },
  {
    name: 'batch_emitter_items_delivered_total',
    help: 'Items in batches the destination accepted (2xx).',
    read: (c) => [{ labels: {}, value: c.itemsDelivered }],
  },
  {
    name: 'batch_emitter_batches_sealed_total',
    help: 'Batches sealed and durable in the spool, by trigger.',
    labelNames: ['trigger'],
    read: (c) => c.sealed.entries(),
  },
  {
    name: 'batch_emitter_batches_finished_total',
    help: 'Batch deliveries finished, by result (delivered, split, dead_lettered, parked).',
    labelNames: ['result'],
    read: (c) => [
      ...zeros(Object.values(RESULT_LABELS).map((result) => ({ result }))),
      ...relabel(c.finished, (l) => ({ result: RESULT_LABELS[l.result] ?? l.result })),
    ],
  },
  {
    name: 'batch_emitter_delivery_attempts_total',
    help: 'HTTP delivery attempts, by outcome (success, retryable, split, permanent) and status class (2xx, 4xx, 5xx, none).',
    labelNames: ['outcome', 'status_class'],
    read: (c) => c.attempts.entries(),
  },
  {
    name: 'batch_emitter_breaker_transitions_total',
    help: 'Circuit breaker state changes, by origin and new state.',
    labelNames: ['origin', 'to'],
    read: (c) => c.breakerTransitions.entries(),
  },
  {
    name: 'batch_emitter_intake_pauses_total',
    help: 'Times intake paused for backpressure, by reason.',
    labelNames: ['reason'],
    read: (c, reason) => relabel(c.intakePauses, (l) => ({ reason: reason(l.reason) })),
  },
];

export function registerCountViews(registers: Registry[], counts: () => Counters): void {
  const reasonLabel = reasonLabeller();
  for (const { read, ...spec } of COUNT_VIEWS) countView(registers, spec, () => read(counts(), reasonLabel));
}
