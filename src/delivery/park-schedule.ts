import type { BatchState } from '../spool/spool.js';
import type { Clock } from '../util/clock.js';

/**
 * When parked batches are due again, on the monotonic clock, and one timer that wakes the queue
 * for the earliest of them. The spool's `notBefore` is wall-clock and only read after a restart;
 * this schedule never touches the spool.
 */

export interface ParkScheduleOptions {
  clock: Clock;
  /** how long a batch stays parked */
  parkDelayMs: number;
  /** the longest wait the queue ever sets: caps a wall-clock notBefore read from the spool */
  longestWaitMs: number;
  /** called when the earliest parked batch is due */
  onDue(): void;
}

export class ParkSchedule {
  private readonly dueAt = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private timerAtMs?: number;
  private stopped = false;

  constructor(private readonly options: ParkScheduleOptions) {}

  /**
   * When a parked batch is due. A batch parked by this process has its due time in memory; one
   * read from the spool after a restart has only the wall-clock notBefore, trusted for at most
   * the longest wait (a clock set back cannot hold a batch longer than that).
   */
  dueOf(state: BatchState): number {
    const known = this.dueAt.get(state.id);
    if (known !== undefined) return known;
    const { clock, longestWaitMs } = this.options;
    const left = Math.max(0, (state.notBefore ?? 0) - clock.wallMs());
    const due = clock.monoMs() + Math.min(left, longestWaitMs);
    this.dueAt.set(state.id, due);
    return due;
  }

  /** Park a batch now; returns the wall-clock notBefore to record in the spool. */
  park(id: string): number {
    const { clock, parkDelayMs } = this.options;
    const due = clock.monoMs() + parkDelayMs;
    this.dueAt.set(id, due);
    this.wakeAt(due);
    return clock.wallMs() + parkDelayMs;
  }

  /** The batch is being delivered again. */
  forget(id: string): void {
    this.dueAt.delete(id);
  }

  /** Call `onDue` when `dueMs` is reached, unless an earlier wake is already set. */
  wakeAt(dueMs: number): void {
    if (this.stopped || (this.timerAtMs !== undefined && this.timerAtMs <= dueMs)) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAtMs = dueMs;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAtMs = undefined;
        this.options.onDue();
      },
      Math.max(0, dueMs - this.options.clock.monoMs()),
    );
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
