import type { EventEmitter } from 'node:events';
import type { EmitterEventMap, EmitterEvents } from '../events.js';

/**
 * The batch ledger: one record per batch, updated in place through its life, with the
 * columns of the `transmitter.batches` table that ingestion services of this kind keep.
 *
 *   pending (sealed and spooled) -> sending (an attempt starts)
 *     -> retrying (the attempt failed and another follows after a backoff) -> sending -> ...
 *     -> success | dead_lettered | parked | split
 *
 * `split` is a status beyond that table's original list: a parent batch answered 413 and was replaced in the
 * spool by two halves, which are new records with their own (new) ids. It fits VARCHAR(20).
 * `parked` is not final: the batch stays in the spool and the periodic sweep tries it again, so
 * a parked record can go back to `sending`. Final statuses (success, dead_lettered, split) set
 * `completed_at`.
 *
 * The ledger is a record for operators, NOT the source of truth: the spool is. The ledger is fed
 * from the emitter's events, its writes are queued and batched off the delivery path, and a slow
 * or unreachable ledger database never blocks or fails a delivery; when it stays unreachable the
 * bounded queue fills and further updates are dropped (counted and logged).
 */

export const LEDGER_STATUSES = [
  'pending',
  'sending',
  'retrying',
  'success',
  'parked',
  'dead_lettered',
  'split',
] as const;
export type LedgerStatus = (typeof LEDGER_STATUSES)[number];

/** Statuses after which the batch is gone from the spool; they set completed_at. */
export const FINAL_STATUSES: ReadonlySet<string> = new Set<LedgerStatus>([
  'success',
  'dead_lettered',
  'split',
]);

/** One batch, with the column names of `transmitter.batches`. Timestamps are ISO 8601 UTC. */
export interface LedgerRecord {
  /** the batch id (UUIDv7), also the idempotency-key sent with it */
  id: string;
  status: LedgerStatus;
  item_count: number;
  /** bytes as stored in the spool (gzipped when compression is gzip); 0 while unknown */
  payload_size: number;
  /** origin + path of the destination, never credentials, query or fragment */
  destination_url: string;
  /** status of the last HTTP response (null before one, or when the last failure had none) */
  http_status: number | null;
  /** reason of the last failed attempt; kept after a later success (retry_count tells) */
  error_message: string | null;
  /** attempts made, the first one included (1 after a first-try success; 0 while pending) */
  retry_count: number;
  created_at: string;
  /** when the first attempt started */
  sent_at: string | null;
  /** when the batch reached a final status (success, dead_lettered, split) */
  completed_at: string | null;
  /** how it got here, for `batch-emitter trace` (absent in records written before it existed) */
  trace?: LedgerTrace;
}

/** One HTTP attempt as the ledger keeps it. */
export interface AttemptFact {
  /** 1 for the first attempt */
  n: number;
  /** when it started, ISO 8601 */
  at: string;
  durationMs: number;
  /** success | retryable | split | permanent */
  kind: string;
  status?: number;
  /** the failure's reason: http_503, ECONNREFUSED, timeout, ... */
  reason?: string;
  /** the origin's breaker when the attempt started, and once its outcome was counted */
  breaker?: { atStart: string; after: string };
  /** when the next attempt was due, ISO 8601 (absent when none followed) */
  nextRetryAt?: string;
}

/** The facts beyond the table's columns: why it was sealed, what it holds, each attempt. */
export interface LedgerTrace {
  /** the buffer's seal trigger (machines/buffer.ts SEAL_TRIGGERS) */
  trigger?: string;
  /** when its first item arrived, ISO 8601 */
  openedAt?: string;
  /** stream sequences of its messages as runs [first, last] */
  seqs?: Array<[number, number]>;
  subjects?: string[];
  /** the batch it is a half of (a 413 split) */
  parentId?: string;
  /** its halves, after a 413 split */
  parts?: string[];
  /** the last MAX_ATTEMPT_FACTS attempts, oldest first */
  attempts?: AttemptFact[];
}

/**
 * The trace with its fields in the order they are written here (PostgreSQL's JSONB reorders an
 * object's keys), so both ledgers show the same document.
 */
export function canonicalTrace(trace: LedgerTrace): LedgerTrace {
  const { trigger, openedAt, seqs, subjects, parentId, parts, attempts } = trace;
  return dropUndefined({
    trigger,
    openedAt,
    seqs,
    subjects,
    parentId,
    parts,
    attempts: attempts?.map((a) =>
      dropUndefined({
        n: a.n,
        at: a.at,
        durationMs: a.durationMs,
        kind: a.kind,
        status: a.status,
        reason: a.reason,
        breaker: a.breaker && { atStart: a.breaker.atStart, after: a.breaker.after },
        nextRetryAt: a.nextRetryAt,
      }),
    ),
  });
}

/** Attempts kept per batch: a batch parked through a long outage gets one per sweep. */
export const MAX_ATTEMPT_FACTS = 20;

/**
 * A change to one record. Fields left undefined are unchanged; a record that does not exist yet
 * is created with status 'pending', counts 0 and created_at from the UUIDv7 id.
 */
export interface LedgerUpdate {
  id: string;
  status?: LedgerStatus;
  itemCount?: number;
  payloadSize?: number;
  destinationUrl?: string;
  httpStatus?: number;
  errorMessage?: string;
  /** attempts made; the stored value only grows */
  retryCount?: number;
  /** epoch ms */
  createdAt?: number;
  /** epoch ms of an attempt start; the first one stays */
  sentAt?: number;
  /** epoch ms */
  completedAt?: number;
  /** trace facts to set (attempts excluded) */
  trace?: Omit<LedgerTrace, 'attempts'>;
  /** attempts to append to the trace */
  attempts?: AttemptFact[];
}

export interface ListOptions {
  status?: string;
  /** only batches created at or after this (epoch ms) */
  since?: number;
  /** default 100 */
  limit?: number;
}

/** Whether a record's trace holds the stream sequence `seq`. */
export function holdsSeq(record: LedgerRecord, seq: number): boolean {
  return (record.trace?.seqs ?? []).some(([first, last]) => first <= seq && seq <= last);
}

export interface LedgerStats {
  /** batches with updates waiting to be written */
  queued: number;
  /** updates written */
  written: number;
  /** updates dropped because the queue was full (the database unreachable for long) or closed */
  dropped: number;
  /** failed writes (each retried with backoff) */
  errors: number;
  lastError?: string;
}

export interface Ledger {
  /** Queue an update. Never blocks, never throws; written by the next flush. */
  record(update: LedgerUpdate): void;
  /** The stored record (queued updates not yet flushed are not included). */
  get(id: string): Promise<LedgerRecord | undefined>;
  /** Stored records, newest first, optionally of one status (default limit 100). */
  list(opts?: ListOptions): Promise<LedgerRecord[]>;
  /** The newest record whose trace holds this stream sequence. */
  findBySeq(seq: number): Promise<LedgerRecord | undefined>;
  /** Stored records per status. */
  counts(): Promise<Record<string, number>>;
  /** Write what is queued now. Never rejects: a failed write stays queued and is retried. */
  flush(): Promise<void>;
  /** Write what is queued (bounded wait) and close. Never rejects. Idempotent. */
  close(): Promise<void>;
  stats(): LedgerStats;
}

export const MAX_ERROR_MESSAGE = 1000;

/** Fold a newer update into an older one for the same batch. */
export function mergeUpdates(older: LedgerUpdate, newer: LedgerUpdate): LedgerUpdate {
  const merged: LedgerUpdate = { ...older };
  for (const [key, value] of Object.entries(newer) as Array<[keyof LedgerUpdate, unknown]>) {
    if (value !== undefined) (merged as unknown as Record<string, unknown>)[key] = value;
  }
  merged.sentAt = minDefined(older.sentAt, newer.sentAt);
  merged.createdAt = older.createdAt ?? newer.createdAt;
  merged.retryCount = maxDefined(older.retryCount, newer.retryCount);
  if (older.trace || newer.trace) merged.trace = { ...older.trace, ...newer.trace };
  if (older.attempts || newer.attempts)
    merged.attempts = [...(older.attempts ?? []), ...(newer.attempts ?? [])].slice(-MAX_ATTEMPT_FACTS);
  return dropUndefined(merged);
}

/** The record after an update (the LevelDB ledger; PostgreSQL does the same in SQL). */
export function applyUpdate(existing: LedgerRecord | undefined, u: LedgerUpdate): LedgerRecord {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  const base: LedgerRecord = existing ?? {
    id: u.id,
    status: 'pending',
    item_count: 0,
    payload_size: 0,
    destination_url: '',
    http_status: null,
    error_message: null,
    retry_count: 0,
    created_at: iso(u.createdAt ?? createdAtOfId(u.id) ?? Date.now()) as string,
    sent_at: null,
    completed_at: null,
  };
  const sentAt = iso(u.sentAt);
  const trace = mergeTrace(base.trace, u);
  return {
    ...base,
    ...(trace ? { trace } : {}),
    status: u.status ?? base.status,
    item_count: u.itemCount ?? base.item_count,
    payload_size: u.payloadSize ?? base.payload_size,
    destination_url: u.destinationUrl ?? base.destination_url,
    http_status: u.httpStatus ?? base.http_status,
    error_message: u.errorMessage ?? base.error_message,
    retry_count: Math.max(base.retry_count, u.retryCount ?? 0),
    sent_at: base.sent_at ?? sentAt ?? null,
    completed_at: iso(u.completedAt) ?? base.completed_at,
  };
}

/** The stored trace with an update's facts set and its attempts appended (bounded). */
export function mergeTrace(stored: LedgerTrace | undefined, u: LedgerUpdate): LedgerTrace | undefined {
  if (!u.trace && !u.attempts) return stored;
  const merged: LedgerTrace = { ...stored, ...u.trace };
  if (u.attempts) merged.attempts = [...(stored?.attempts ?? []), ...u.attempts].slice(-MAX_ATTEMPT_FACTS);
  return merged;
}

function minDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

function maxDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

function dropUndefined<T extends object>(o: T): T {
  for (const key of Object.keys(o) as Array<keyof T>) if (o[key] === undefined) delete o[key];
  return o;
}

/** The creation time encoded in a UUIDv7 (its first 48 bits, Unix ms), or undefined. */
export function createdAtOfId(id: string): number | undefined {
  const hex = id.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex) || hex[12] !== '7') return undefined;
  return parseInt(hex.slice(0, 12), 16);
}

/** The smallest UUIDv7 of a millisecond: ids below it were created before `ms`. */
export function idFloorOfMs(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0').slice(-12);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-000000000000`;
}

/** Origin + path of a URL: never user, password, query (tokens) or fragment. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

export function truncateMessage(text: string): string {
  return text.length > MAX_ERROR_MESSAGE ? `${text.slice(0, MAX_ERROR_MESSAGE - 3)}...` : text;
}

const RESULT_STATUS: Record<EmitterEventMap['finished']['result'], LedgerStatus> = {
  delivered: 'success',
  split: 'split',
  deadLettered: 'dead_lettered',
  parked: 'parked',
};

/** The attempt as the trace keeps it. */
export function attemptFact(e: EmitterEventMap['attempt'], now: number): AttemptFact {
  const o = e.outcome;
  const startedMs = now - Math.max(0, e.durationMs);
  return dropUndefined({
    n: e.attempt,
    at: new Date(startedMs).toISOString(),
    durationMs: Math.round(e.durationMs),
    kind: o.kind,
    status: o.status,
    reason: o.kind === 'retryable' || o.kind === 'permanent' ? o.reason : undefined,
    breaker: e.breaker,
    nextRetryAt: e.nextDelayMs === undefined ? undefined : new Date(now + e.nextDelayMs).toISOString(),
  });
}

function attemptUpdate(e: EmitterEventMap['attempt'], now: number): LedgerUpdate {
  const o = e.outcome;
  const update: LedgerUpdate = {
    id: e.batchId,
    retryCount: e.attempt,
    // covers a batch whose `sending` was not seen (e.g. the ledger attached late)
    sentAt: now - Math.max(0, e.durationMs),
    attempts: [attemptFact(e, now)],
  };
  switch (o.kind) {
    case 'success':
      // the final status comes with `finished`, after the spool has let the batch go
      return { ...update, httpStatus: o.status };
    case 'retryable':
      return {
        ...update,
        // without nextDelayMs the attempt budget is spent: `finished` (parked) follows
        ...(e.nextDelayMs !== undefined ? { status: 'retrying' as const } : {}),
        ...(o.status !== undefined ? { httpStatus: o.status } : {}),
        errorMessage: truncateMessage(o.reason),
      };
    case 'split':
      return { ...update, httpStatus: o.status, errorMessage: 'payload too large (413): split in two' };
    case 'permanent':
      return {
        ...update,
        httpStatus: o.status,
        errorMessage: truncateMessage(o.bodyExcerpt ? `${o.reason}: ${o.bodyExcerpt}` : o.reason),
      };
  }
}

/**
 * A 413 split: the parent was replaced in the spool by `parts` (new ids). Listened for under the
 * event name 'split' (an additive event for EmitterEventMap); without it the halves' records are
 * created by their first attempt, with payload_size 0 and item_count filled in when they finish.
 */
export interface LedgerSplitEvent {
  parentId: string;
  parts: Array<{ batchId: string; items: number; storedBytes: number }>;
}

/**
 * Turn the emitter's events into ledger updates. Returns the function that detaches it.
 * A listener never throws into the emitter (record() does not throw; this guards the mapping too).
 */
export function attachLedger(events: EmitterEvents, ledger: Ledger, destinationUrl: string): () => void {
  const destination = redactUrl(destinationUrl);
  const guard =
    <T>(fn: (e: T) => LedgerUpdate) =>
    (e: T) => {
      try {
        ledger.record(fn(e));
      } catch {
        // a malformed event must not break delivery; the ledger is only a record
      }
    };
  const onSealed = guard<EmitterEventMap['sealed']>((e) => ({
    id: e.batchId,
    status: 'pending',
    itemCount: e.items,
    payloadSize: e.storedBytes,
    destinationUrl: destination,
    createdAt: createdAtOfId(e.batchId) ?? Date.now(),
    trace: dropUndefined({
      trigger: e.trigger,
      openedAt: e.openedAtMs === undefined ? undefined : new Date(e.openedAtMs).toISOString(),
      seqs: e.seqRanges?.length ? e.seqRanges : undefined,
      subjects: e.subjects,
    }),
  }));
  const onSending = guard<EmitterEventMap['sending']>((e) => ({
    id: e.batchId,
    status: 'sending',
    retryCount: e.attempt,
    sentAt: Date.now(),
    destinationUrl: destination,
  }));
  const onAttempt = guard<EmitterEventMap['attempt']>((e) => attemptUpdate(e, Date.now()));
  const onFinished = guard<EmitterEventMap['finished']>((e) => {
    const status = RESULT_STATUS[e.result];
    return {
      id: e.batchId,
      status,
      itemCount: e.items,
      retryCount: e.attempts,
      destinationUrl: destination,
      ...(FINAL_STATUSES.has(status) ? { completedAt: Date.now() } : {}),
    };
  });
  const onSplit = (e: LedgerSplitEvent) => {
    try {
      const now = Date.now();
      const ids = e.parts.map((p) => p.batchId);
      ledger.record({
        id: e.parentId,
        status: 'split',
        httpStatus: 413,
        errorMessage: truncateMessage(`payload too large (413): split into ${ids.join(', ')}`),
        completedAt: now,
        trace: { parts: ids },
      });
      for (const part of e.parts) {
        ledger.record({
          id: part.batchId,
          status: 'pending',
          itemCount: part.items,
          payloadSize: part.storedBytes,
          destinationUrl: destination,
          createdAt: createdAtOfId(part.batchId) ?? now,
          trace: { parentId: e.parentId },
        });
      }
    } catch {
      // see guard above
    }
  };
  events.on('sealed', onSealed);
  events.on('sending', onSending);
  events.on('attempt', onAttempt);
  events.on('finished', onFinished);
  (events as EventEmitter).on('split', onSplit);
  return () => {
    events.off('sealed', onSealed);
    events.off('sending', onSending);
    events.off('attempt', onAttempt);
    events.off('finished', onFinished);
    (events as EventEmitter).off('split', onSplit);
  };
}
