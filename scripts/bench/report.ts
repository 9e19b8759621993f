/** The console table of the full run (measure | value | target | ok), one group of rows per part. */
import { fmt } from './context.js';
import type { FullRun } from './full.js';
import { ACK_MODE_LABEL } from './raw-consume.js';
import { S } from './settings.js';

export interface Row {
  measure: string;
  value: string;
  target?: string;
  ok?: boolean;
}

function rawRows({ raw, limit }: FullRun): Row[] {
  return [
    ...Object.values(raw).map((r) => ({
      measure: `bare consumer (parse), ${ACK_MODE_LABEL[r.mode]}`,
      value: `${fmt(r.eventsPerS)} ev/s; ${fmt(r.cpuSPerM, 1)} us/ev (server ${fmt(r.serverCpuSPerM, 1)})`,
    })),
    {
      measure: `sink limit: gzip batches of ${S.batchSize}, undici pool 4`,
      value: `${fmt(limit.batchesPerS)} b/s = ${fmt(limit.eventsPerS)} ev/s`,
    },
  ];
}

function e2eRows({ raw, limit, disk, plain, shm, bigAck }: FullRun): Row[] {
  const base = raw.batch;
  const e2eOverRaw = disk.eventsPerS / base.eventsPerS;
  const e2eOverSink = disk.eventsPerS / limit.eventsPerS;
  return [
    { measure: 'e2e, spool on disk: throughput', value: `${fmt(disk.eventsPerS)} ev/s` },
    {
      measure: 'e2e, spool on disk: throughput after 20% delivered',
      value: `${fmt(disk.steadyEventsPerS)} ev/s`,
    },
    {
      measure: 'e2e, spool on disk: MB/s (JSON in / gzip wire)',
      value: `${fmt(disk.inputMBps, 1)} / ${fmt(disk.wireMBps, 2)} MB/s`,
    },
    {
      measure: 'e2e, spool on disk: CPU s per 1M events (CPU %)',
      value: `${fmt(disk.cpuSPerM, 1)} s (${fmt(disk.cpuPct)}%)`,
    },
    {
      measure: 'e2e CPU per event / batch-ack consumer: gzip, none',
      value: `${(disk.cpuSPerM / base.cpuSPerM).toFixed(2)} x, ${(plain.cpuSPerM / base.cpuSPerM).toFixed(2)} x`,
      target: '<= 2 x',
      ok: disk.cpuSPerM / base.cpuSPerM <= 2,
    },
    {
      measure: 'e2e: CPU s per 1M events of the loopback sink (same cores)',
      value: `${fmt(disk.sinkCpuSPerM, 1)} s`,
    },
    {
      measure: 'e2e, spool on disk: peak RSS (VmHWM)',
      value: `${fmt(disk.peakRssMB)} MB`,
      target: '< 150 MB',
      ok: disk.peakRssMB < 150,
    },
    {
      measure: 'e2e / batch-ack consumer',
      value: `${e2eOverRaw.toFixed(2)} x`,
      target: '>= 0.5 x',
      ok: e2eOverRaw >= 0.5,
    },
    {
      measure: 'e2e after 20% / batch-ack consumer',
      value: `${(disk.steadyEventsPerS / base.eventsPerS).toFixed(2)} x`,
    },
    { measure: 'e2e / sink limit', value: `${e2eOverSink.toFixed(2)} x` },
    { measure: 'e2e, spool on tmpfs ("in memory"): throughput', value: `${fmt(shm.eventsPerS)} ev/s` },
    {
      measure: 'e2e, spool on tmpfs: throughput after 20% delivered',
      value: `${fmt(shm.steadyEventsPerS)} ev/s`,
    },
    { measure: 'e2e, spool on tmpfs: CPU s per 1M events', value: `${fmt(shm.cpuSPerM, 1)} s` },
    {
      measure: 'e2e, spool on tmpfs: peak RSS',
      value: `${fmt(shm.peakRssMB)} MB`,
      target: '< 150 MB',
      ok: shm.peakRssMB < 150,
    },
    {
      measure: 'durability cost: disk / tmpfs throughput',
      value: `${(disk.eventsPerS / shm.eventsPerS).toFixed(2)} x`,
    },
    {
      measure: `experiment: e2e disk, consumer max_ack_pending ${fmt(S.bigAckPending)}`,
      value: `${fmt(bigAck.eventsPerS)} ev/s (${(bigAck.eventsPerS / disk.eventsPerS).toFixed(2)} x)`,
    },
  ];
}

function latencyRows({ lat, low }: FullRun): Row[] {
  const p99Target = S.intervalS * 1000 + 100;
  return [
    {
      measure: `latency publish->delivered p50 at ${fmt(lat.offeredRate)}/s`,
      value: `${fmt(lat.p50)} ms`,
    },
    {
      measure: `latency p99 (flush interval ${S.intervalS} s)`,
      value: `${fmt(lat.p99)} ms`,
      target: `<= ${p99Target} ms`,
      ok: lat.p99 <= p99Target,
    },
    { measure: 'latency max', value: `${fmt(lat.max)} ms` },
    {
      measure: `delivered rate while offering ${fmt(lat.offeredRate)}/s`,
      value: `${fmt(lat.deliveredRate)} ev/s`,
      target: '= offered',
      ok: lat.deliveredRate >= 0.95 * lat.offeredRate,
    },
    { measure: `emitter CPU at ${fmt(lat.offeredRate)}/s offered`, value: `${fmt(lat.cpuPct)}% of a core` },
    {
      measure: `supplementary: latency p50 / p99 / max at ${fmt(low.offeredRate)}/s`,
      value: `${fmt(low.p50)} / ${fmt(low.p99)} / ${fmt(low.max)} ms`,
      target: `p99 <= ${p99Target} ms`,
      ok: low.p99 <= p99Target,
    },
    { measure: `emitter CPU at ${fmt(low.offeredRate)}/s offered`, value: `${fmt(low.cpuPct)}% of a core` },
  ];
}

function outageRows({ out }: FullRun): Row[] {
  return [
    {
      measure: `outage ${out.outageS} s (503) at ${fmt(out.offeredRate)}/s: RSS start -> max`,
      value: `${fmt(out.rssAtOutageStartMB)} -> ${fmt(out.rssMaxMB)} MB`,
    },
    {
      measure: 'outage: RSS growth during outage (max / start)',
      value: `${fmt(out.rssGrowthPct, 1)}%`,
      target: 'within 20%',
      ok: out.rssGrowthPct <= 20,
    },
    { measure: 'outage: RSS last third / first third', value: `${out.rssLateOverEarly.toFixed(2)} x` },
    {
      measure: 'outage: V8 heap used start -> max',
      value: `${fmt(out.heapAtOutageStartMB ?? NaN)} -> ${fmt(out.heapMaxMB ?? NaN)} MB`,
    },
    {
      measure: 'outage: spool growth',
      value: `${fmt(out.spoolAtOutageStartMB, 1)} -> ${fmt(out.spoolAtOutageEndMB, 1)} MB (${fmt(out.spoolGrowthMBperMin, 1)} MB/min)`,
    },
    { measure: 'outage: backlog at recovery', value: `${fmt(out.backlogAtRecovery)} ev` },
    {
      measure: 'outage: first delivery after recovery',
      value: `${fmt(out.firstDeliveryAfterRecoveryS, 2)} s`,
    },
    { measure: 'outage: caught up after', value: `${fmt(out.catchUpS, 2)} s` },
    {
      measure: 'outage: drain rate after recovery',
      value: `${fmt(out.drainRate)} ev/s (${(out.drainRate / out.offeredRate).toFixed(1)} x offered)`,
      target: `>= 3 x offered`,
      ok: out.drainRate >= 3 * out.offeredRate,
    },
  ];
}

export function peakRss(r: FullRun): number {
  return Math.max(...[r.disk, r.shm, r.bigAck, r.lat, r.low, r.out].map((x) => x.peakRssMB));
}

export function fullRunRows(r: FullRun): Row[] {
  const peak = peakRss(r);
  return [
    ...rawRows(r),
    ...e2eRows(r),
    ...latencyRows(r),
    ...outageRows(r),
    { measure: 'peak RSS over all runs', value: `${fmt(peak)} MB`, target: '< 150 MB', ok: peak < 150 },
  ];
}

export function table(rows: Row[]): string {
  const w0 = Math.max(...rows.map((r) => r.measure.length), 7);
  const w1 = Math.max(...rows.map((r) => r.value.length), 5);
  const w2 = Math.max(...rows.map((r) => (r.target ?? '').length), 6);
  const line = (a: string, b: string, c: string, d: string) =>
    `| ${a.padEnd(w0)} | ${b.padStart(w1)} | ${c.padEnd(w2)} | ${d.padEnd(4)} |`;
  return [
    line('measure', 'value', 'target', 'ok'),
    `|${'-'.repeat(w0 + 2)}|${'-'.repeat(w1 + 2)}|${'-'.repeat(w2 + 2)}|------|`,
    ...rows.map((r) =>
      line(r.measure, r.value, r.target ?? '', r.ok === undefined ? '' : r.ok ? 'yes' : 'NO'),
    ),
  ].join('\n');
}
