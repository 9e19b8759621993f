import type { EmitterEvents } from '../observe/events.js';

/**
 * Reachability of the destination, for /ready: how long every attempt has failed retryably. It
 * only listens to the attempts' outcomes; it never decides a delivery or the breaker's state.
 */

export interface ReachabilityStatus {
  /** how long the destination has failed every attempt (undefined while it answers) */
  originUnreachableMs?: number;
  /** TRANSMITTER_READY_MAX_UNREACHABLE_S in ms: beyond it /ready fails */
  maxUnreachableMs?: number;
}

export class Reachability {
  private unreachableSinceMs?: number;

  constructor(
    events: EmitterEvents,
    private readonly maxUnreachableMs: number | undefined,
  ) {
    // any answer other than a retryable failure means the destination is reachable
    events.on('attempt', ({ outcome }) => {
      if (outcome.kind !== 'retryable') this.unreachableSinceMs = undefined;
      else this.unreachableSinceMs ??= performance.now();
    });
  }

  status(): ReachabilityStatus {
    const since = this.unreachableSinceMs;
    return {
      originUnreachableMs: since === undefined ? undefined : performance.now() - since,
      maxUnreachableMs: this.maxUnreachableMs,
    };
  }
}
