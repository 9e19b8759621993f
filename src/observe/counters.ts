import { SEAL_TRIGGERS } from '../../machines/buffer.js';
import type { EmitterEventMap } from './events.js';

/**
 * The one tally of what the emitter did, kept from its events: /metrics, /api/v1/stats, the close
 * log line and `emitter.stats` all read these counts; none keeps its own. Counting only: no I/O,
 * no clock, no decision is ever taken on a count here.
 */

/** One count split by label values, like a Prometheus counter family; series in first-seen order. */
export class Tally<L extends string> {
  private readonly series: Array<{ labels: Record<L, string>; value: number }> = [];
  /**
   * the series by their label values, one map level per label: an add of a series already seen
   * allocates nothing (a key joined from the values cost a string per add, and adds come per item)
   */
  private readonly tree = new Map<string, unknown>();

  constructor(private readonly labelNames: readonly L[]) {}

  add(labels: Record<L, string>, by = 1): void {
    const names = this.labelNames;
    let node = this.tree;
    for (let i = 0; i < names.length - 1; i++) {
      const value = labels[names[i] as L];
      let next = node.get(value) as Map<string, unknown> | undefined;
      if (next === undefined) node.set(value, (next = new Map()));
      node = next;
    }
    const last = names.length > 0 ? labels[names[names.length - 1] as L] : '';
    const found = node.get(last) as { value: number } | undefined;
    if (found) found.value += by;
    else {
      const series = { labels: { ...labels }, value: by };
      node.set(last, series);
      this.series.push(series);
    }
  }

  get total(): number {
    let sum = 0;
    for (const s of this.series) sum += s.value;
    return sum;
  }

  /** The totals by one label, e.g. `by('section')` -> `{ edges: 30, nodes_ip: 1 }`. */
  by(label: L): Record<string, number> {
    const out = Object.create(null) as Record<string, number>;
    for (const s of this.series) out[s.labels[label]] = (out[s.labels[label]] ?? 0) + s.value;
    return out;
  }

  /** The count of one label value, e.g. `of('result', 'delivered')`. */
  of(label: L, value: string): number {
    return this.by(label)[value] ?? 0;
  }

  entries(): Array<{ labels: Readonly<Record<L, string>>; value: number }> {
    return [...this.series];
  }
}

/** `503` -> `5xx`; anything that is not an HTTP status -> `none`. */
export function statusClass(status: number | undefined): string {
  if (status === undefined || !Number.isFinite(status) || status < 100 || status > 599) return 'none';
  return `${Math.floor(status / 100)}xx`;
}

/** What `emitter.stats` and the close log line show: items and batch results. */
export interface CountSummary {
  received: number;
  rejected: number;
  delivered: number;
  parked: number;
  deadLettered: number;
  split: number;
}

/** batch ids remembered so that a batch retried many times counts once as retried */
const RETRIED_TRACK_LIMIT = 10_000;

export class Counters {
  /** items accepted into a batch */
  readonly received = new Tally(['section', 'source'] as const);
  /** messages or items refused, by reason code */
  readonly rejected = new Tally(['reason'] as const);
  /** batches durable in the spool, by seal trigger (every trigger present, from 0) */
  readonly sealed = new Tally(['trigger'] as const);
  /** delivery statecharts finished, by DeliveryResult */
  readonly finished = new Tally(['result'] as const);
  /** HTTP attempts, by outcome kind and status class */
  readonly attempts = new Tally(['outcome', 'status_class'] as const);
  readonly breakerTransitions = new Tally(['origin', 'to'] as const);
  readonly intakePauses = new Tally(['reason'] as const);
  /** items in batches the destination accepted */
  itemsDelivered = 0;
  /** batches that needed at least one retry (counted once per batch) */
  retried = 0;
  private readonly retriedIds = new Set<string>();

  constructor() {
    for (const trigger of SEAL_TRIGGERS) this.sealed.add({ trigger }, 0);
  }

  /** Count one event (EmitterEvents calls this for every event it emits). */
  count<K extends keyof EmitterEventMap>(name: K, event: EmitterEventMap[K]): void {
    const counter = this.byEvent[name] as ((e: EmitterEventMap[K]) => void) | undefined;
    counter?.(event);
  }

  summary(): CountSummary {
    const result = (r: string) => this.finished.of('result', r);
    return {
      received: this.received.total,
      rejected: this.rejected.total,
      delivered: result('delivered'),
      parked: result('parked'),
      deadLettered: result('deadLettered'),
      split: result('split'),
    };
  }

  /** A frozen copy (what a view keeps once it stops following the events). */
  copy(): Counters {
    const twin = new Counters();
    for (const key of TALLIES) {
      const into = twin[key] as unknown as Tally<string>;
      for (const s of this[key].entries()) into.add(s.labels, s.value);
    }
    twin.itemsDelivered = this.itemsDelivered;
    twin.retried = this.retried;
    return twin;
  }

  private readonly byEvent: { [K in keyof EmitterEventMap]?: (event: EmitterEventMap[K]) => void } = {
    received: (e) => this.received.add({ section: e.section, source: e.source }, e.count),
    rejected: (e) => this.rejected.add({ reason: e.reason }),
    sealed: (e) => this.sealed.add({ trigger: e.trigger }),
    attempt: (e) => {
      const status = 'status' in e.outcome ? e.outcome.status : undefined;
      this.attempts.add({ outcome: e.outcome.kind, status_class: statusClass(status) });
      if (e.outcome.kind === 'retryable') this.countRetried(e.batchId);
    },
    finished: (e) => {
      this.finished.add({ result: e.result });
      if (e.result === 'delivered') this.itemsDelivered += e.items;
      // a parked batch comes back later and may retry again: keep it; the others are done
      if (e.result !== 'parked') this.retriedIds.delete(e.batchId);
    },
    breaker: (e) => this.breakerTransitions.add({ origin: e.origin, to: e.to }),
    intake: (e) => {
      if (e.paused) this.intakePauses.add({ reason: e.reason ?? 'unknown' });
    },
  };

  private countRetried(batchId: string): void {
    if (this.retriedIds.has(batchId)) return;
    this.retried += 1;
    if (this.retriedIds.size >= RETRIED_TRACK_LIMIT) {
      const oldest = this.retriedIds.values().next().value;
      if (oldest !== undefined) this.retriedIds.delete(oldest);
    }
    this.retriedIds.add(batchId);
  }
}

const TALLIES = [
  'received',
  'rejected',
  'sealed',
  'finished',
  'attempts',
  'breakerTransitions',
  'intakePauses',
] as const satisfies ReadonlyArray<keyof Counters>;
