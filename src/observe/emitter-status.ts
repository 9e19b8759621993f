import type { DeliveryQueue } from '../delivery/queue.js';
import type { Config } from '../config/index.js';
import { Reachability, type ReachabilityStatus } from '../delivery/reachability.js';
import { noIngressStatus, type Ingress } from '../ingress/ingress.js';
import type { Intake, PauseReason } from '../intake/intake.js';
import type { Spool } from '../spool/spool.js';
import type { EmitterEvents } from './events.js';
import type { Ledger } from './ledger/ledger.js';
import { machinesView } from './machines-view.js';
import { liveTrace } from './trace/live.js';
import { type SpoolStatus, type StatusSnapshot, type StatusSource } from './status.js';

/**
 * The one status view of a running emitter, assembled from what each stage reports: /ready,
 * /api/v1/stats, /metrics, /debug/machines and `emitter.stats` all read it. It only reads; it
 * never changes a stage.
 */

export type EmitterStatus = StatusSnapshot & { intakePaused?: PauseReason };

/** The stages as far as they are open. */
export interface StatusStages {
  spool?: Spool;
  delivery?: DeliveryQueue;
  intake?: Intake;
  ingress?: Ingress;
  ledger?: { ledger: Ledger };
}

export interface StatusContext {
  natsEnabled: boolean;
  reachability: ReachabilityStatus;
  /** as configured, for the stages not open yet */
  limits: { maxItems: number; spoolMaxBytes: number };
  shuttingDown: boolean;
}

type StatusConfig = Pick<Config, 'nats' | 'batch' | 'spool' | 'readyMaxUnreachableMs'>;

/** One emitter's status view over its stages (as far as open), its counters and reachability. */
export class EmitterStatusView {
  private readonly reachability: Reachability;

  constructor(
    private readonly stages: StatusStages,
    private readonly events: EmitterEvents,
    private readonly config: StatusConfig,
    private readonly shuttingDown: () => boolean,
  ) {
    this.reachability = new Reachability(events, config.readyMaxUnreachableMs);
  }

  snapshot(): EmitterStatus {
    const { config } = this;
    return emitterStatus(this.stages, {
      natsEnabled: config.nats !== undefined,
      reachability: this.reachability.status(),
      limits: { maxItems: config.batch.maxItems, spoolMaxBytes: config.spool.maxBytes },
      shuttingDown: this.shuttingDown(),
    });
  }

  stats() {
    return statsOf(this.events.counters.summary(), this.snapshot());
  }

  source(): StatusSource {
    return statusSourceOf(this.stages, () => this.snapshot());
  }
}

export function emitterStatus(stages: StatusStages, ctx: StatusContext): EmitterStatus {
  const intake = stages.intake?.status();
  const delivery = deliveryStatus(stages.delivery);
  return {
    ...(stages.ingress?.status() ?? noIngressStatus(ctx.natsEnabled)),
    spool: spoolStatus(stages.spool, ctx.limits.spoolMaxBytes),
    intakePaused: intake?.paused,
    deliveriesActive: delivery.deliveriesActive,
    queued: delivery.queued,
    openItems: intake?.openItems ?? 0,
    maxItems: intake?.maxItems ?? ctx.limits.maxItems,
    openBytes: intake?.openBytes,
    maxBytes: intake?.bodyBudgetBytes,
    breaker: delivery.breaker,
    shuttingDown: ctx.shuttingDown,
    ...ctx.reachability,
    destinationRejecting: delivery.destinationRejecting,
  };
}

/** What the HTTP server and the metrics read: the snapshot, and the slower figures on demand. */
export function statusSourceOf(stages: StatusStages, snapshot: () => StatusSnapshot): StatusSource {
  return {
    snapshot,
    jetstreamPending: async () => stages.ingress?.consumerState(),
    spoolStats: async () => stages.spool?.stats(),
    machines: () =>
      machinesView({
        buffer: stages.intake?.bufferSnapshot(),
        deliveries: stages.delivery?.deliveries(),
        breaker: stages.delivery?.gate.breaker.getSnapshot(),
        limiter: stages.delivery?.gate.limiter.getSnapshot(),
      }),
    trace: (query) => liveTrace(stages, query),
  };
}

/** `emitter.stats`: the counters with the figures a host checks most. */
export function statsOf<Counters extends object>(counters: Counters, s: EmitterStatus) {
  return {
    ...counters,
    spool: { batches: s.spool.batches, bytes: s.spool.bytes },
    /** delivery statecharts running (kept under this name for hosts that read it) */
    inFlight: s.deliveriesActive,
    deliveriesActive: s.deliveriesActive,
    queued: s.queued,
    openItems: s.openItems,
    paused: s.intakePaused,
    natsConnected: s.natsConnected,
    consumerBound: s.consumerBound,
  };
}

function spoolStatus(spool: Spool | undefined, maxBytes: number): SpoolStatus {
  if (!spool) return { open: false, batches: 0, bytes: 0, maxBytes };
  return { ...spool.status(), maxBytes };
}

function deliveryStatus(delivery: DeliveryQueue | undefined) {
  return {
    deliveriesActive: delivery?.activeCount ?? 0,
    queued: delivery?.queuedCount ?? 0,
    breaker: delivery?.gate.status(),
    destinationRejecting: delivery?.rejecting(),
  };
}
