import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Counters } from './counters.js';
import type { EmitterEvents } from './events.js';
import { registerCountViews } from './metrics-counts.js';
import { registerBreakerGauges, registerStatusGauges } from './metrics-gauges.js';
import { registerHistograms } from './metrics-histograms.js';
import { fullSnapshot, type JetStreamPending, type StatusSnapshot, type StatusSource } from './status.js';
import { VERSION } from '../util/version.js';

/**
 * Prometheus metrics of one emitter, in a registry of its own (never prom-client's global one).
 * Counters are read from the event bus's one tally (`events.counters`), histograms follow the
 * events, gauges of current values are read from `status()` at scrape time; nothing is pushed.
 * Names: `batch_emitter_` prefix, base units (seconds, bytes), `_total` on counters. Default
 * process/Node.js metrics are included under their usual names.
 */

export interface MetricsOptions {
  /** async figures read once per scrape (bounded by `timeoutMs`): JetStream pending counts */
  jetstreamPending?: StatusSource['jetstreamPending'];
  /** async spool figures (oldest batch, dead letters) when the snapshot lacks them */
  spoolStats?: StatusSource['spoolStats'];
  timeoutMs?: number;
  /** clock in epoch ms (tests) */
  now?: () => number;
  /** default process metrics (default true) */
  defaultMetrics?: boolean;
}

export interface Metrics {
  registry: Registry;
  contentType: string;
  /** the exposition text; reads the status once for all gauges */
  metrics(): Promise<string>;
  /** stop following the events */
  close(): void;
}

export function createMetrics(
  events: EmitterEvents,
  status: () => StatusSnapshot,
  options: MetricsOptions = {},
): Metrics {
  const registry = new Registry();
  const now = options.now ?? Date.now;
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  // One status read per scrape: metrics() fills `scrape`; a direct registry.metrics() reads live.
  let scrape: StatusSnapshot | undefined;
  const current = (): StatusSnapshot | undefined => {
    if (scrape) return scrape;
    try {
      return status();
    } catch {
      return undefined;
    }
  };
  // once closed, the counts stay as they were (a frozen copy)
  let frozen: Counters | undefined;

  new Gauge({
    name: 'batch_emitter_info',
    help: 'Build information; always 1.',
    labelNames: ['version'],
    registers,
  }).set({ version: VERSION }, 1);
  registerCountViews(registers, () => frozen ?? events.counters);
  const stopHistograms = registerHistograms(registers, events, now);
  registerStatusGauges(registers, current, now);
  registerBreakerGauges(registers, current);

  const source: StatusSource = {
    snapshot: status,
    ...(options.jetstreamPending ? { jetstreamPending: options.jetstreamPending } : {}),
    ...(options.spoolStats ? { spoolStats: options.spoolStats } : {}),
  };
  return {
    registry,
    contentType: registry.contentType,
    async metrics(): Promise<string> {
      const snapshot = await fullSnapshot(source, options.timeoutMs ?? 1000).catch(() => undefined);
      scrape = snapshot;
      try {
        return await registry.metrics();
      } finally {
        if (scrape === snapshot) scrape = undefined;
      }
    },
    close(): void {
      if (frozen) return;
      stopHistograms();
      frozen = events.counters.copy();
    },
  };
}

export type { JetStreamPending };
