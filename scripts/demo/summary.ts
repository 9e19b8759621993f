/** The demo's closing summary (stdout) and its verdict: what went wrong, if anything. */
import type { Sample } from './traffic.js';
import { SECTIONS, type DemoSink, type Section } from './sink.js';

export interface DemoOutcome {
  samples: Sample[];
  expected: Record<Section, Set<string>>;
  prefix: string;
  durable: string;
  spoolDir: string;
  publishS: number;
  elapsedS: number;
  sealed: number;
  deadLetters: number;
  rejected: number;
  spool: { batches: number; bytes: number };
  consumer: { num_pending: number; num_ack_pending: number };
  warnings: number;
  sink: DemoSink;
  sinkFailures: number;
  deliveryTimeoutS: number;
}

const fmt = (n: number) => n.toLocaleString('en-US');
const say = (line = '') => process.stdout.write(`${line}\n`);
const row = (k: string, v: string) => say(`  ${k.padEnd(19)} ${v}`);

const expectedTotal = (o: DemoOutcome) => SECTIONS.reduce((n, s) => n + o.expected[s].size, 0);

function missing(o: DemoOutcome): { section: Section; n: number }[] {
  return SECTIONS.map((s) => ({
    section: s,
    n: [...o.expected[s]].filter((k) => !o.sink.distinct[s].has(k)).length,
  })).filter((m) => m.n > 0);
}

function dedupLine(o: DemoOutcome): string {
  const { sink, samples } = o;
  const rows = SECTIONS.reduce((n, s) => n + sink.rows[s], 0);
  const crossed = rows - sink.distinctTotal(); // duplicates that landed in a later batch than their original
  const merged = samples.filter((s) => s.section !== 'events').length - (rows - sink.rows.events);
  const duplicates = samples.filter((s) => s.duplicate).length;
  return (
    `${fmt(duplicates)} duplicates published; ${fmt(merged)} merged into their original inside a batch` +
    (crossed > 0 ? `, ${fmt(crossed)} fell into the next batch and arrived twice (same key)` : '')
  );
}

export function printSummary(o: DemoOutcome): void {
  const { sink, samples } = o;
  say();
  say(missing(o).length === 0 ? 'result: every item arrived' : 'result: ITEMS MISSING');
  say();
  row(
    'events published',
    `${fmt(samples.length)} in ${o.publishS.toFixed(1)} s (${fmt(Math.round(samples.length / o.publishS))}/s) ` +
      `on ${o.prefix}.{domain,ip,cert,edge,finding}`,
  );
  row('distinct delivered', `${fmt(sink.distinctTotal())} of ${fmt(expectedTotal(o))} expected`);
  for (const s of SECTIONS) row(`  ${s}`, fmt(sink.distinct[s].size).padStart(6));
  row('dedup', dedupLine(o));
  row(
    'batches received',
    `${fmt(sink.stats.accepted)} accepted (200) in ${fmt(sink.stats.requests)} HTTP requests; ${fmt(o.sealed)} batches sealed`,
  );
  row(
    'retried requests',
    `${fmt(sink.stats.injected503)} answered 503 by the sink on purpose (${fmt(sink.stats.refusedBatches)} batches); ` +
      `${fmt(sink.stats.retriedAccepted)} of them retried and accepted under the same idempotency-key`,
  );
  if (sink.stats.duplicateBatches > 0)
    row('repeated batches', `${fmt(sink.stats.duplicateBatches)} (dropped by idempotency-key)`);
  row(
    'elapsed',
    `${o.elapsedS.toFixed(1)} s from first publish to last item delivered: ` +
      `${fmt(Math.round(samples.length / o.elapsedS))} events/s end to end`,
  );
  row(
    'dead letters',
    `${fmt(o.deadLetters)}${o.rejected > 0 ? ` (${fmt(o.rejected)} messages rejected)` : ''}`,
  );
  row(
    'JetStream',
    `consumer ${o.durable}: ${fmt(o.consumer.num_pending)} pending, ${fmt(o.consumer.num_ack_pending)} awaiting ack`,
  );
  row(
    'spool',
    `${o.spoolDir}: ${o.spool.batches === 0 ? 'empty' : `${fmt(o.spool.batches)} batches LEFT`} ` +
      `(${fmt(o.spool.batches)} batches, ${fmt(o.spool.bytes)} bytes); removed with the temp dir`,
  );
  if (o.warnings > 0) row('emitter warnings', `${fmt(o.warnings)} (printed above as [emitter])`);
  say();
}

/** Everything that makes the demo fail; empty when it passed. */
export function problems(o: DemoOutcome): string[] {
  const { sink } = o;
  const out: string[] = [];
  const gone = missing(o);
  if (gone.length > 0)
    out.push(
      `${fmt(expectedTotal(o) - sink.distinctTotal())} items did not arrive within ${o.deliveryTimeoutS} s (` +
        gone.map((m) => `${m.section} ${fmt(m.n)}`).join(', ') +
        ')',
    );
  const unexpected = SECTIONS.reduce(
    (n, s) => n + [...sink.distinct[s]].filter((k) => !o.expected[s].has(k)).length,
    0,
  );
  if (unexpected > 0) out.push(`${fmt(unexpected)} items arrived that were never published`);
  if (sink.stats.badBodies > 0) out.push(`the sink could not read a body: ${sink.stats.lastBadBody}`);
  if (o.deadLetters > 0) out.push(`${fmt(o.deadLetters)} dead letters`);
  if (o.spool.batches > 0) out.push(`${fmt(o.spool.batches)} batches still in the spool`);
  if (o.consumer.num_pending > 0 || o.consumer.num_ack_pending > 0)
    out.push('JetStream messages left unacknowledged');
  if (sink.stats.injected503 < o.sinkFailures || sink.stats.retriedAccepted < sink.stats.refusedBatches)
    out.push('a batch answered 503 was not retried and accepted');
  return out;
}
