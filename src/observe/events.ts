import { EventEmitter } from 'node:events';
import type { SealTrigger } from '../../machines/buffer.js';
import type { DeliveryResult } from '../../machines/delivery.js';
import type { Outcome } from '../../machines/outcome.js';
import type { Section } from '../model.js';
import { Counters } from './counters.js';

/**
 * What happens inside the emitter, as typed events: metrics, stats, logs, the ledger and the debug
 * view subscribe here instead of being called from the pipeline's code. The bus never decides
 * anything; it only delivers events and keeps the one tally of them (`counters`).
 */
export interface EmitterEventMap {
  /**
   * `count` items were accepted into the open batch: one add, or the JetStream messages of one
   * section handled in one turn of the event loop (one event per message cost 4% of the CPU)
   */
  received: { section: Section; source: 'jetstream' | 'api'; count: number };
  /**
   * a message or an add was refused; `reason` is the code before the first ':'. Neither it nor
   * `detail` carries message content; the message's subject, sequence and size come apart.
   */
  rejected: { reason: string; detail: string; subject?: string; seq?: number; bytes?: number };
  /** a sealed batch is durable in the spool */
  sealed: {
    batchId: string;
    trigger: SealTrigger;
    items: number;
    rawBytes: number;
    storedBytes: number;
    /** oldest JetStream publish time of its items, epoch ms, when known */
    oldestPublishedMs?: number;
    /** when its first item arrived, epoch ms */
    openedAtMs?: number;
    /** the stream sequences of its messages, as runs [first, last] (JetStream only) */
    seqRanges?: Array<[number, number]>;
    /** its messages' distinct subjects */
    subjects?: string[];
  };
  /** one HTTP attempt starts */
  sending: { batchId: string; attempt: number };
  /** one HTTP attempt finished */
  attempt: {
    batchId: string;
    attempt: number;
    outcome: Outcome;
    durationMs: number;
    nextDelayMs?: number;
    /** the origin's breaker when the attempt started and once its outcome was counted */
    breaker?: { atStart: string; after: string };
  };
  /** a delivery statechart finished: delivered, split, deadLettered or parked */
  finished: { batchId: string; result: DeliveryResult; attempts: number; createdAtMs: number; items: number };
  breaker: { origin: string; from: string; to: string };
  /** a 413 split replaced a batch in the spool by its halves (new ids) */
  split: { parentId: string; parts: Array<{ batchId: string; items: number; storedBytes: number }> };
  /** intake paused or resumed (backpressure) */
  intake: { paused: boolean; reason?: string };
}

export class EmitterEvents extends EventEmitter {
  /** every event emitted here, counted before any listener runs: the counts everything reports */
  readonly counters = new Counters();

  override emit<K extends keyof EmitterEventMap>(name: K, event: EmitterEventMap[K]): boolean {
    this.counters.count(name, event);
    return super.emit(name, event);
  }
  override on<K extends keyof EmitterEventMap>(name: K, listener: (event: EmitterEventMap[K]) => void): this {
    return super.on(name, listener);
  }
}
