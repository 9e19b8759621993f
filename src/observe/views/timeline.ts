import type { EmitterEvents, EmitterEventMap } from '../events.js';

/**
 * Wall-clock times for the /debug view, which the statecharts cannot give (they have no clock):
 * when each delivery's next attempt is due (the `attempt` event's nextDelayMs, counted from the
 * moment the attempt finished) and since when the breaker is in its state (the `breaker` event),
 * from which the time it tries the origin again follows. Bounded: at most `limit` deliveries.
 */

export interface TimelineSnapshot {
  /** batchId -> epoch ms of the next attempt (only batches backing off) */
  retryAt: Record<string, number>;
  breaker: { state: string; since: number; retryAfterMs?: number } | null;
}

export class DebugTimeline {
  private readonly retryAt = new Map<string, number>();
  private breaker: TimelineSnapshot['breaker'] = null;
  private lastRetryAfterMs: number | undefined;
  private readonly unsubscribe: () => void;

  constructor(
    events: EmitterEvents,
    private readonly now: () => number = Date.now,
    private readonly limit = 10_000,
  ) {
    const onAttempt = (e: EmitterEventMap['attempt']): void => {
      this.retryAt.delete(e.batchId);
      if (e.outcome.kind === 'retryable' && e.outcome.retryAfterMs !== undefined) {
        this.lastRetryAfterMs = e.outcome.retryAfterMs;
      }
      if (e.nextDelayMs === undefined) return;
      if (this.retryAt.size >= this.limit) {
        const oldest = this.retryAt.keys().next().value;
        if (oldest !== undefined) this.retryAt.delete(oldest);
      }
      this.retryAt.set(e.batchId, this.now() + e.nextDelayMs);
    };
    const onSending = (e: EmitterEventMap['sending']): void => {
      this.retryAt.delete(e.batchId);
    };
    const onFinished = (e: EmitterEventMap['finished']): void => {
      this.retryAt.delete(e.batchId);
    };
    const onBreaker = (e: EmitterEventMap['breaker']): void => {
      this.breaker = {
        state: e.to,
        since: this.now(),
        ...(e.to === 'paused' && this.lastRetryAfterMs !== undefined
          ? { retryAfterMs: this.lastRetryAfterMs }
          : {}),
      };
    };
    events.on('attempt', onAttempt);
    events.on('sending', onSending);
    events.on('finished', onFinished);
    events.on('breaker', onBreaker);
    this.unsubscribe = () => {
      events.off('attempt', onAttempt);
      events.off('sending', onSending);
      events.off('finished', onFinished);
      events.off('breaker', onBreaker);
    };
  }

  snapshot(): TimelineSnapshot {
    return { retryAt: Object.fromEntries(this.retryAt), breaker: this.breaker };
  }

  close(): void {
    this.unsubscribe();
  }
}

interface LiveLike {
  deliveries?: { listed?: Array<{ batchId: string; state: unknown }> };
  breaker?: { state: string; resetTimeoutMs: number } | null;
}

export interface DebugTimes {
  /** batchId -> RFC 3339 time of the next attempt, for the listed deliveries backing off */
  nextRetryAt: Record<string, string>;
  breaker: {
    /** since when the breaker is in its current state (null: not seen changing since start) */
    since: string | null;
    /** open: when it lets a probe through (since + reset timeout); paused: since + Retry-After */
    reopenAt: string | null;
  };
}

const iso = (ms: number | undefined): string | null =>
  ms === undefined || !Number.isFinite(ms) ? null : new Date(ms).toISOString();

/** Join the timeline with the live view: times only for what is live now. */
export function debugTimes(live: LiveLike | undefined, timeline: TimelineSnapshot): DebugTimes {
  const nextRetryAt: Record<string, string> = {};
  for (const d of live?.deliveries?.listed ?? []) {
    const at = timeline.retryAt[d.batchId];
    if (d.state === 'backoff' && at !== undefined) nextRetryAt[d.batchId] = iso(at) as string;
  }
  const b = live?.breaker ?? null;
  const t = timeline.breaker;
  const current = b && t && t.state === b.state ? t : null;
  let reopenAt: number | undefined;
  if (current && b?.state === 'open') reopenAt = current.since + b.resetTimeoutMs;
  if (current && b?.state === 'paused' && current.retryAfterMs !== undefined) {
    reopenAt = current.since + current.retryAfterMs;
  }
  return { nextRetryAt, breaker: { since: iso(current?.since), reopenAt: iso(reopenAt) } };
}
