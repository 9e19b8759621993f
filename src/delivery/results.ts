import type { DeliveryOutput } from '../../machines/delivery.js';
import type { Outcome } from '../../machines/outcome.js';
import type { EmitterEvents } from '../observe/events.js';
import { decodeBody, splitDocument, toSpoolRecord } from '../spool/batch-codec.js';
import type { BatchState, KnownBatch, Spool } from '../spool/spool.js';
import { uuidv7 } from '../util/ids.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { ParkSchedule } from './park-schedule.js';

/**
 * Delivery results applied to the spool: attempts and backoff recorded, then the batch deleted
 * (delivered), replaced by its halves (413), moved to the dead letters (permanent) or parked.
 * It never sends, and never decides a result: the delivery machine does.
 */

export type ResultsSpool = Pick<Spool, 'batches' | 'deadLetters'>;

export interface ResultsOptions {
  spool: ResultsSpool;
  logger: Logger;
  events: EmitterEvents;
  schedule: Pick<ParkSchedule, 'park'>;
  /** stamps the wall-clock notBefore of a backoff */
  clock: Clock;
  /** gzip level of the halves of a split batch (default 1) */
  gzipLevel?: number;
  onSpoolShrunk?(): void;
}

/** One attempt as the delivery machine reports it. */
export interface AttemptReport {
  attempt: number;
  outcome: Outcome;
  /** set when another attempt follows */
  nextDelayMs?: number;
}

/** The record fields a delivery changes; all others are fixed when the batch is spooled. */
type Progress = Pick<BatchState, 'attempts' | 'notBefore' | 'lastError'> &
  Pick<Partial<BatchState>, 'parked'>;

/** The log line of a dead-lettered batch: a refused credential says what to check. */
export function deadLetterMessage(status: number | undefined): string {
  if (status === 401 || status === 403) {
    return (
      `batch dead-lettered: destination refused the credentials (${status}): ` +
      'check TRANSMITTER_AUTH_TOKEN / client certificate'
    );
  }
  return 'batch dead-lettered (permanent failure)';
}

export class DeliveryResults {
  constructor(private readonly options: ResultsOptions) {}

  /**
   * A failed attempt: logged, and when another attempt follows, its count and backoff recorded
   * so that they survive a restart. The last attempt is recorded by parking, in one write that
   * no other write for the batch can overtake.
   */
  async recordAttempt(record: BatchState, report: AttemptReport): Promise<void> {
    const { outcome, attempt, nextDelayMs } = report;
    if (outcome.kind !== 'retryable') return;
    const log = this.options.logger;
    log.warn(
      { batchId: record.id, attempt, reason: outcome.reason, status: outcome.status, nextDelayMs },
      'delivery attempt failed',
    );
    if (nextDelayMs === undefined) return;
    const notBefore = this.options.clock.wallMs() + nextDelayMs;
    await this.patch(record, { attempts: attempt, notBefore, lastError: outcome.reason }).catch(
      (error: unknown) => log.error({ err: (error as Error).message }, 'cannot record attempt'),
    );
  }

  /**
   * Apply the end of a delivery; returns the ids of new batches to queue (a split's halves).
   * `known`: the record as this delivery started from it, with the generation it was read on.
   */
  async apply(record: BatchState, output: DeliveryOutput, known?: KnownBatch): Promise<string[]> {
    try {
      const settled = await this.settle(record, output, known);
      if (settled === undefined) return [];
      this.options.events.emit('finished', {
        batchId: record.id,
        result: output.result,
        attempts: output.attempts,
        createdAtMs: Date.parse(record.createdAt),
        items: record.itemCount,
      });
      return settled;
    } catch (error) {
      this.options.logger.error(
        { batchId: record.id, err: (error as Error).message },
        'cannot apply delivery result; batch stays spooled',
      );
      return [];
    } finally {
      this.options.onSpoolShrunk?.();
    }
  }

  /** undefined when the batch turned out unreadable (quarantined, not a dead letter). */
  private async settle(
    record: BatchState,
    output: DeliveryOutput,
    known?: KnownBatch,
  ): Promise<string[] | undefined> {
    switch (output.result) {
      case 'delivered':
        await this.options.spool.batches.delete(record.id, known);
        this.options.logger.info({ batchId: record.id, attempts: output.attempts }, 'batch delivered');
        return [];
      case 'split':
        return this.split(record);
      case 'deadLettered':
        return (await this.deadLetter(record, output)) ? [] : undefined;
      case 'parked':
        await this.park(record, output);
        return [];
    }
  }

  /** Only the fields that change: the spool merges them into the stored record. */
  private patch(record: BatchState, progress: Progress): Promise<void> {
    return this.options.spool.batches.patchState(record.id, progress);
  }

  private async split(record: BatchState): Promise<string[]> {
    const batch = await this.options.spool.batches.get(record.id);
    if (!batch) return [];
    const doc = await decodeBody(batch.state, batch.body);
    const halves = splitDocument(doc, uuidv7);
    const base = { subjects: record.subjects, parentId: record.id };
    const level = this.options.gzipLevel;
    const parts = await Promise.all(
      halves.map((half) => toSpoolRecord(half, batch.state.encoding, base, level)),
    );
    await this.options.spool.batches.replace(record.id, parts);
    const sizes = parts.map(({ state }) => ({
      batchId: state.id,
      items: state.itemCount,
      storedBytes: state.storedBytes,
    }));
    this.options.events.emit('split', { parentId: record.id, parts: sizes });
    this.options.logger.warn(
      { batchId: record.id, parts: sizes.map((p) => ({ id: p.batchId, items: p.items })) },
      'batch too large for the endpoint (413): split in two',
    );
    return parts.map((p) => p.state.id);
  }

  private async deadLetter(record: BatchState, output: DeliveryOutput): Promise<boolean> {
    const outcome = output.lastOutcome;
    const permanent = outcome?.kind === 'permanent' ? outcome : undefined;
    const moved = await this.options.spool.deadLetters.moveBatch(record.id, {
      reason: permanent?.reason ?? 'permanent failure',
      at: new Date().toISOString(),
      status: permanent?.status,
      // already scrubbed by the batch sender: a careless receiver may echo our token back
      bodyExcerpt: permanent?.bodyExcerpt,
      subjects: record.subjects,
      history: output.history,
    });
    const log = this.options.logger;
    if (!moved) {
      log.error({ batchId: record.id }, 'batch quarantined: it could not be read from the spool');
      return false;
    }
    log.error(
      { batchId: record.id, status: permanent?.status, reason: permanent?.reason },
      deadLetterMessage(permanent?.status),
    );
    return true;
  }

  private async park(record: BatchState, output: DeliveryOutput): Promise<void> {
    const last = output.lastOutcome;
    const lastError = last?.kind === 'retryable' ? last.reason : undefined;
    const notBefore = this.options.schedule.park(record.id);
    await this.patch(record, { attempts: output.attempts, parked: true, notBefore, lastError });
    this.options.logger.warn(
      { batchId: record.id, attempts: output.attempts, lastError },
      'batch parked: attempts exhausted, kept in spool',
    );
  }
}
