import { MACHINES } from './views/machines.js';
import {
  breakerStatus,
  limiterStatus,
  type BreakerSnapshotLike,
  type LimiterSnapshotLike,
} from './status.js';

/**
 * The GET /debug/machines view: the statechart definitions (`machine.toJSON()` of each machine in
 * the views' list, computed once) and plain live figures of the running actors. Only plain fields
 * are copied out of the snapshots: actor refs, functions and the limiter's holder/queue lists
 * never leave the process.
 */

export interface BufferSnapshotLike {
  value: unknown;
  context: { count: number; bytes: number; maxItems?: number; maxBatchBytes?: number; intervalMs?: number };
}

export interface DeliveryLike {
  batchId: string;
  state: unknown;
  attempts: number;
  nextDelayMs?: number;
}

export interface LiveMachines {
  /** `intake.bufferSnapshot()` */
  buffer?: BufferSnapshotLike;
  /** `DeliveryQueue.deliveries()` */
  deliveries?: DeliveryLike[];
  /** `gate.breaker.getSnapshot()` */
  breaker?: BreakerSnapshotLike;
  /** `gate.limiter.getSnapshot()` */
  limiter?: LimiterSnapshotLike;
  /** at most this many deliveries are listed (default 200) */
  limit?: number;
}

let definitions: Record<string, unknown> | undefined;

function machineDefinitions(): Record<string, unknown> {
  definitions ??= Object.fromEntries(MACHINES.map((m) => [m.name, m.machine.toJSON()]));
  return definitions;
}

export function machinesView(live: LiveMachines = {}) {
  const limit = live.limit ?? 200;
  const deliveries = live.deliveries ?? [];
  const b = live.buffer;
  return {
    definitions: machineDefinitions(),
    live: {
      buffer: b
        ? {
            state: b.value,
            count: b.context.count,
            bytes: b.context.bytes,
            maxItems: b.context.maxItems,
            maxBatchBytes: b.context.maxBatchBytes,
            intervalMs: b.context.intervalMs,
          }
        : null,
      deliveries: {
        active: deliveries.length,
        listed: deliveries.slice(0, limit).map((d) => ({
          batchId: d.batchId,
          state: d.state,
          attempts: d.attempts,
          nextDelayMs: d.nextDelayMs ?? null,
        })),
      },
      breaker: live.breaker && live.limiter ? breakerStatus(live.breaker, live.limiter) : null,
      limiter: live.limiter ? limiterStatus(live.limiter) : null,
    },
  };
}
