/** The scale-out part as a table with details, for the console. */
import { copies, type ReplicaSet } from '../../harness/replicated.js';
import { fmt } from './context.js';
import type { ScaleResult } from './scale.js';

export function scaleTable(r: ScaleResult): string {
  const head = [
    'processes',
    'events/s aggregate',
    'after 20%',
    'x of 1 process',
    'emitters CPU',
    'machine busy',
    'lost',
    'duplicates',
  ];
  const body = r.runs.map((x) => [
    `${x.processes}${x.killed ? ' (1 SIGKILLed at 30%, restarted)' : ''}`,
    fmt(x.eventsPerS),
    fmt(x.steadyEventsPerS),
    `${x.xOfOne.toFixed(2)} x`,
    `${fmt(x.emittersCpuPct)}%`,
    `${fmt(x.machineBusyPct)}%`,
    fmt(x.lost),
    `${fmt(x.duplicates)}${x.duplicateBatches > 0 ? ` (+${fmt(x.duplicateBatches)} batch re-sent)` : ''}`,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(w[i] as number) : c.padStart(w[i] as number))).join(' | ')} |`;
  const lines = [line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...body.map(line)];
  const detail = r.runs.map(
    (x) =>
      `  ${x.processes}${x.killed ? ' (kill)' : ''}: ${fmt(x.seconds, 1)} s, delivered per process ${x.deliveredByProcess.map((d) => fmt(d)).join(' / ')}` +
      `${x.killed ? ' (the killed one: after its restart)' : ''}, start spread ${fmt(x.startSpreadS, 2)} s, ` +
      `peak RSS ${fmt(x.peakRssMB)} MB, consumer drained ${x.consumerDrained ? 'yes' : 'NO'} ` +
      `(R${copies(x.consumer)}, leader ${x.consumer.leader || 'none'}), ` +
      `exit codes ${x.exitCodes.join(',')}` +
      (x.killed
        ? `; killed at ${fmt(x.killedAtDelivered ?? NaN)} delivered (${fmt(x.killedAtS ?? NaN, 1)} s), restart ready at ${fmt(x.restartReadyS ?? NaN, 1)} s`
        : ''),
  );
  const t = r.topology;
  const stream = (x: ReplicaSet | undefined) =>
    x ? `leader ${x.leader || 'none'}, ${x.current} of ${x.replicas.length} followers current` : '?';
  return [
    `scale-out: ${fmt(r.events)} pre-published events, one durable consumer shared by the processes of a run, ` +
      `one spool each; events/s from the first process ready until the sink holds all ${fmt(r.events)}`,
    `topology: ${t.description} (nats-server ${t.natsServer}, servers ${t.servers.join(', ')}); ` +
      `stream at start: ${stream(t.streamAtStart)}; at the end: ${stream(t.streamAtEnd)}`,
    ...lines,
    ...detail,
    '  duplicates: event rows received twice in different batches; "batch re-sent": a batch posted again with ' +
      'an idempotency-key already seen (its rows are not counted again). emitters CPU: % of one core, summed; ' +
      'machine busy: % of all cores.',
    `note: ${r.note}; the killed run includes waiting for ack_wait (${r.ackWaitS} s) before the killed process's unacked messages are redelivered`,
  ].join('\n');
}
