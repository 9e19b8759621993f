import type { Ledger, LedgerRecord, AttemptFact } from '../ledger/ledger.js';
import type { BatchState, DeadLetter, Spool } from '../../spool/spool.js';
import type { TraceQuery } from './query.js';

/**
 * The story of one batch or one message, put together from what the emitter keeps: the sequence
 * index (stream sequence -> batch, until the consumer's ack floor passes it), the spool (live
 * batches with their seal trigger, attempts and backoff), the dead letters, the quarantine and
 * the ledger (one record per batch with its seal facts, stream sequences and every attempt). It
 * only reads. The same story is printed by `batch-emitter trace` and served by `/debug/trace`.
 */

export interface TraceSources {
  spool: Pick<Spool, 'batches' | 'seqIndex' | 'deadLetters' | 'quarantine'>;
  ledger?: Pick<Ledger, 'get' | 'findBySeq'>;
  /** the durable consumer's counts, when NATS can be asked */
  consumer?: () => Promise<ConsumerFacts | undefined>;
}

export interface ConsumerFacts {
  /** messages in the stream not yet delivered to the consumer */
  pending: number;
  /** delivered, not yet acknowledged */
  ackPending: number;
  /** every sequence at or below it is acknowledged */
  ackFloor: number;
}

/** Where a batch ended, or that it has not yet. */
export type BatchEnd =
  | { kind: 'delivered'; at?: string; status?: number }
  | { kind: 'split'; at?: string; parts: string[] }
  | { kind: 'dead_lettered'; at?: string; status?: number; reason: string; kept: boolean }
  | { kind: 'parked'; nextTryAt?: string; lastError?: string }
  | { kind: 'quarantined'; reason: string }
  | { kind: 'spooled'; status: string; nextRetryAt?: string; lastError?: string }
  | { kind: 'unknown'; note: string };

export interface BatchStory {
  id: string;
  /** sent as the `idempotency-key` header of every attempt */
  idempotencyKey: string;
  /** its items arrived between these (the first item, the seal) */
  receivedFrom?: string;
  receivedTo?: string;
  trigger?: string;
  spooledAt?: string;
  items?: number;
  storedBytes?: number;
  subjects?: string[];
  seqs?: Array<[number, number]>;
  parentId?: string;
  attempts: AttemptFact[];
  end: BatchEnd;
  /** a 413 split's halves, each with its own story */
  parts?: BatchStory[];
}

export interface TraceStory {
  query: TraceQuery;
  /** for a sequence query: where the message went */
  event?: {
    seq: number;
    subject?: string;
    /** how its batch was found */
    foundIn?: 'sequence index' | 'ledger' | 'dead letters';
    batchId?: string;
    /** it was refused as invalid input: the dead letter of the message */
    deadLetter?: { id: string; reason: string; at: string };
    /** the subject asked for is not among its batch's subjects */
    subjectMismatch?: boolean;
  };
  batch?: BatchStory;
  /** a message in no batch and no dead letter */
  notSeen?: { note: string; consumer?: ConsumerFacts };
}

/** A split's halves are followed this deep (each 413 halves a batch; 8 levels is 1/256 of it). */
const MAX_SPLIT_DEPTH = 8;

export async function traceStory(sources: TraceSources, query: TraceQuery): Promise<TraceStory> {
  if ('batch' in query) return { query, batch: await batchStory(sources, query.batch, 0) };
  return seqStory(sources, query);
}

async function seqStory(
  sources: TraceSources,
  query: { seq: number; subject?: string },
): Promise<TraceStory> {
  const { seq, subject } = query;
  const event: NonNullable<TraceStory['event']> = { seq, ...(subject === undefined ? {} : { subject }) };
  const indexed = await sources.spool.seqIndex.batchOf(seq);
  const inLedger = indexed === undefined ? await sources.ledger?.findBySeq(seq) : undefined;
  const batchId = indexed ?? inLedger?.id;
  if (batchId !== undefined) {
    event.foundIn = indexed !== undefined ? 'sequence index' : 'ledger';
    event.batchId = batchId;
    const batch = await batchStory(sources, batchId, 0);
    if (subject !== undefined && batch.subjects && !batch.subjects.includes(subject))
      event.subjectMismatch = true;
    return { query, event, batch };
  }
  const refused = await messageDeadLetter(sources, seq, subject);
  if (refused) {
    event.foundIn = 'dead letters';
    event.deadLetter = { id: refused.id, reason: refused.reason, at: refused.at };
    return { query, event };
  }
  const consumer = await sources.consumer?.().catch(() => undefined);
  return { query, event, notSeen: { note: notSeenNote(seq, consumer), ...(consumer ? { consumer } : {}) } };
}

function notSeenNote(seq: number, consumer: ConsumerFacts | undefined): string {
  if (!consumer)
    return 'not seen: in no batch, dead letter or ledger record; the consumer could not be asked';
  if (seq > consumer.ackFloor) return 'not seen: still in the stream (not yet taken into a durable batch)';
  return (
    'not seen: the consumer acknowledged it, but no batch, dead letter or ledger record holds it ' +
    '(the ledger pruned it, or another emitter on the same consumer took it)'
  );
}

async function messageDeadLetter(
  sources: TraceSources,
  seq: number,
  subject: string | undefined,
): Promise<DeadLetter | undefined> {
  const letters = await sources.spool.deadLetters.list();
  return letters.find(
    (l) =>
      l.kind === 'message' &&
      l.message?.seq === seq &&
      (subject === undefined || l.message.subject === subject),
  );
}

async function batchStory(sources: TraceSources, id: string, depth: number): Promise<BatchStory> {
  const [state, record, letter, quarantined] = await Promise.all([
    sources.spool.batches.getState(id),
    sources.ledger?.get(id).catch(() => undefined),
    sources.spool.deadLetters.get(id).then((stored) => stored?.letter),
    sources.spool.quarantine.list().then((all) => all.find((q) => q.id === id)),
  ]);
  const kept = state ?? letter?.batch;
  const story: BatchStory = {
    ...factsOf(id, kept, record),
    attempts: record?.trace?.attempts ?? attemptsOfHistory(letter?.history),
    end: endOf({ state, record, letter, quarantinedReason: quarantined?.reason }),
  };
  if (story.end.kind === 'split' && depth < MAX_SPLIT_DEPTH) {
    const parts = await Promise.all(story.end.parts.map((part) => batchStory(sources, part, depth + 1)));
    story.parts = parts.map((part) => receivedAsParent(part, story));
  }
  return story;
}

/** A split's half holds items received with its parent: it was not sealed, the parent was. */
function receivedAsParent(part: BatchStory, parent: BatchStory): BatchStory {
  if (part.trigger !== undefined) return part;
  const { receivedFrom, receivedTo, ...rest } = part;
  const from = parent.receivedFrom ?? receivedFrom;
  const to = parent.receivedTo ?? receivedTo;
  return {
    ...(from === undefined ? {} : { receivedFrom: from }),
    ...(to === undefined ? {} : { receivedTo: to }),
    ...rest,
  };
}

/** What is known of a batch from its spool record (live or dead-lettered) and its ledger record. */
function factsOf(id: string, state: BatchState | undefined, record: LedgerRecord | undefined) {
  const trace = record?.trace;
  const facts: Omit<BatchStory, 'attempts' | 'end'> = { id, idempotencyKey: id };
  const set = <K extends keyof typeof facts>(key: K, value: (typeof facts)[K] | undefined) => {
    if (value !== undefined) facts[key] = value;
  };
  set('receivedFrom', state?.openedAt ?? trace?.openedAt);
  set('receivedTo', state?.createdAt ?? record?.created_at);
  set('trigger', state?.trigger ?? trace?.trigger);
  set('spooledAt', state?.createdAt ?? record?.created_at);
  set('items', state?.itemCount ?? record?.item_count);
  set('storedBytes', state?.storedBytes ?? record?.payload_size);
  set('subjects', state?.subjects ?? trace?.subjects);
  set('seqs', trace?.seqs);
  set('parentId', state?.parentId ?? trace?.parentId);
  return facts;
}

/** A dead letter's attempt history (kept by the delivery machine) when the ledger has none. */
function attemptsOfHistory(history: unknown[] | undefined): AttemptFact[] {
  if (!Array.isArray(history)) return [];
  return history.flatMap((entry) => {
    const h = entry as {
      attempt?: number;
      outcome?: { kind?: string; status?: number; reason?: string; durationMs?: number };
    };
    if (typeof h.attempt !== 'number' || !h.outcome?.kind) return [];
    const fact: AttemptFact = {
      n: h.attempt,
      at: '',
      durationMs: Math.round(h.outcome.durationMs ?? 0),
      kind: h.outcome.kind,
    };
    if (h.outcome.status !== undefined) fact.status = h.outcome.status;
    if (h.outcome.reason !== undefined) fact.reason = h.outcome.reason;
    return [fact];
  });
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

function endOf(found: {
  state?: BatchState;
  record?: LedgerRecord;
  letter?: DeadLetter;
  quarantinedReason?: string;
}): BatchEnd {
  const { state, record, letter, quarantinedReason } = found;
  if (quarantinedReason !== undefined) return { kind: 'quarantined', reason: quarantinedReason };
  if (letter)
    return {
      kind: 'dead_lettered',
      at: letter.at,
      reason: letter.reason,
      kept: true,
      ...(letter.status === undefined ? {} : { status: letter.status }),
    };
  if (state) {
    const lastError = state.lastError === undefined ? {} : { lastError: state.lastError };
    if (state.parked) return { kind: 'parked', ...lastError, ...optional('nextTryAt', iso(state.notBefore)) };
    const status = record?.status === 'retrying' || record?.status === 'sending' ? record.status : 'pending';
    return { kind: 'spooled', status, ...lastError, ...optional('nextRetryAt', iso(state.notBefore)) };
  }
  return endOfRecord(record);
}

/** A batch gone from the spool: what its ledger record says. */
function endOfRecord(record: LedgerRecord | undefined): BatchEnd {
  if (!record)
    return { kind: 'unknown', note: 'no spool, dead-letter, quarantine or ledger record of this batch' };
  const at = optional('at', record.completed_at ?? undefined);
  switch (record.status) {
    case 'success':
      return { kind: 'delivered', ...at, ...optional('status', record.http_status ?? undefined) };
    case 'split':
      return { kind: 'split', ...at, parts: record.trace?.parts ?? partsOfMessage(record.error_message) };
    case 'dead_lettered':
      return {
        kind: 'dead_lettered',
        ...at,
        reason: record.error_message ?? 'permanent failure',
        kept: false,
        ...optional('status', record.http_status ?? undefined),
      };
    default:
      return {
        kind: 'unknown',
        note: `the ledger says ${record.status}, but the batch is in neither the spool nor the dead letters`,
      };
  }
}

/** Records written before the trace facts existed name the halves in their error message. */
function partsOfMessage(message: string | null): string[] {
  return message?.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi) ?? [];
}

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}
