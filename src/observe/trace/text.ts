import type { AttemptFact } from '../ledger/ledger.js';
import type { BatchEnd, BatchStory, TraceStory } from './story.js';

/** A trace story as an operator reads it: one line per fact, a split's halves indented below. */

export function traceText(story: TraceStory): string {
  const lines: string[] = [];
  if (story.event) lines.push(...eventLines(story));
  if (story.batch) lines.push(...batchLines(story.batch, story.event ? '  ' : ''));
  return lines.join('\n');
}

function eventLines(story: TraceStory): string[] {
  const e = story.event as NonNullable<TraceStory['event']>;
  const on = e.subject === undefined ? '' : ` on ${e.subject}`;
  const head = `event: stream sequence ${e.seq}${on}`;
  if (e.deadLetter)
    return [
      head,
      `  refused as input at ${e.deadLetter.at}: dead letter ${e.deadLetter.id}: ${e.deadLetter.reason}`,
    ];
  if (story.notSeen) {
    const c = story.notSeen.consumer;
    const counts = c
      ? ` (consumer: ${c.pending} pending, ${c.ackPending} awaiting ack, ack floor ${c.ackFloor})`
      : '';
    return [head, `  ${story.notSeen.note}${counts}`];
  }
  const lines = [`${head}: in batch ${e.batchId ?? '?'} (found in the ${e.foundIn ?? '?'})`];
  if (e.subjectMismatch) lines.push(`  note: that batch holds no message on ${e.subject ?? ''}`);
  return lines;
}

function batchLines(b: BatchStory, indent: string): string[] {
  const lines = [`${indent}batch ${b.id}${b.parentId ? ` (a half of ${b.parentId})` : ''}`];
  const add = (label: string, text: string) => lines.push(`${indent}  ${label.padEnd(10)} ${text}`);
  const size = [
    b.items === undefined ? undefined : `${b.items} items`,
    b.storedBytes === undefined ? undefined : `${b.storedBytes} bytes stored`,
    b.subjects?.length ? `subjects ${b.subjects.join(', ')}` : undefined,
    b.seqs?.length
      ? `stream sequences ${b.seqs.map(([f, l]) => (f === l ? `${f}` : `${f}-${l}`)).join(', ')}`
      : undefined,
  ].filter((s) => s !== undefined);
  if (b.receivedTo !== undefined)
    add('received', b.receivedFrom ? `${b.receivedFrom} .. ${b.receivedTo}` : `by ${b.receivedTo}`);
  if (size.length > 0) add('holds', size.join('; '));
  const sealed = b.trigger
    ? `by ${b.trigger}`
    : b.parentId
      ? 'as a half of its parent, split after a 413'
      : 'trigger not recorded';
  if (b.trigger !== undefined || b.spooledAt !== undefined)
    add('sealed', `${sealed}; spooled at ${b.spooledAt ?? '?'}`);
  add('key', `idempotency-key ${b.idempotencyKey}`);
  if (b.attempts.length === 0) add('attempts', 'none recorded');
  // a parked batch is tried once per sweep under the same attempt number: say so
  b.attempts.forEach((a, i) =>
    add(i > 0 && a.n <= (b.attempts[i - 1]?.n ?? 0) ? 'swept' : `attempt ${a.n}`, attemptText(a)),
  );
  add('end', endText(b.end));
  for (const part of b.parts ?? []) lines.push(...batchLines(part, `${indent}    `));
  return lines;
}

function attemptText(a: AttemptFact): string {
  const result =
    a.kind === 'success'
      ? `HTTP ${a.status ?? '?'} accepted`
      : a.kind === 'split'
        ? `HTTP ${a.status ?? 413} too large: split`
        : `${a.status === undefined ? '' : `HTTP ${a.status} `}${a.kind} (${a.reason ?? '?'})`;
  const parts = [a.at || 'time not recorded', result, `${a.durationMs} ms`];
  if (a.breaker)
    parts.push(
      `breaker ${a.breaker.atStart}${a.breaker.after !== a.breaker.atStart ? ` -> ${a.breaker.after}` : ''}`,
    );
  if (a.nextRetryAt) parts.push(`next retry ${a.nextRetryAt}`);
  return parts.join('  ');
}

function endText(end: BatchEnd): string {
  switch (end.kind) {
    case 'delivered':
      return `delivered${end.status === undefined ? '' : ` (HTTP ${end.status})`}${end.at ? ` at ${end.at}` : ''}`;
    case 'split':
      return `split (413) into ${end.parts.join(', ')}${end.at ? ` at ${end.at}` : ''}`;
    case 'dead_lettered':
      return (
        `dead-lettered${end.at ? ` at ${end.at}` : ''}: ${end.reason}` +
        (end.kept ? ' (in the dead letters: `batch-emitter dlq show`)' : ' (no longer in the dead letters)')
      );
    case 'parked':
      return `parked in the spool (attempts spent)${end.lastError ? `, last error ${end.lastError}` : ''}${end.nextTryAt ? `; tried again from ${end.nextTryAt}` : ''}`;
    case 'quarantined':
      return `quarantined as unreadable: ${end.reason} (never sent)`;
    case 'spooled':
      return `not yet: in the spool, ${end.status}${end.lastError ? `, last error ${end.lastError}` : ''}${end.nextRetryAt ? `; next retry ${end.nextRetryAt}` : ''}`;
    case 'unknown':
      return end.note;
  }
}
