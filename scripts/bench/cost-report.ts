/**
 * The emitter's CPU per event beside the bare consumers (issue "the emitter's own cost per event"):
 * client and nats-server CPU per event, rates, the ratios against the batch-ack consumer, peak RSS,
 * what AckAll would save, and the emitter's CPU by stage.
 */
import { GZIP_LEVEL } from '../../src/spool/batch-codec.js';
import { fmt } from './context.js';
import type { ProfileSummary } from './cpuprofile.js';
import type { E2EResult } from './e2e.js';
import { gzipCosts, type GzipCost } from './gzip-cost.js';
import { ACK_MODE_LABEL, type AckMode, type RawResult } from './raw-consume.js';
import { S } from './settings.js';

const us = (sPerM: number) => `${fmt(sPerM, 1)} us`;

function line(label: string, client: string, server: number, rate: number): string {
  return `  ${label.padEnd(52)} ${client.padStart(20)} ${us(server).padStart(10)} ${fmt(rate).padStart(10)}`;
}

export interface CostFigures {
  emitterOverBatchAck: { gzip: number; none: number };
  rateOverBatchAck: number;
  ackAllSavesUs: { client: number; server: number };
  /** gzip alone, in this process, at the emitter's default level and at 6 */
  gzip: GzipCost[];
  /** us per event by stage: the profile's shares of the gzip run's main-thread CPU, plus the other threads */
  stagesUs?: Record<string, number>;
}

/**
 * The threads besides the main one, by Node 20's start order: a delayed-task thread and V8's four
 * platform workers (GC helpers, background compiles) start with the process; libuv's pool (gzip,
 * LevelDB's calls, fs) and LevelDB's compaction thread start later, when first used.
 */
function offMainThread(threads: number[]): { v8Workers: number; pool: number } {
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return { v8Workers: sum(threads.slice(1, 6)), pool: sum(threads.slice(6)) };
}

export function costFigures(
  raw: Record<AckMode, RawResult>,
  disk: E2EResult,
  plain: E2EResult,
  profile?: ProfileSummary,
): CostFigures {
  const base = raw.batch;
  const { v8Workers, pool } = offMainThread(disk.threadsCpuSPerM);
  const stagesUs = profile
    ? Object.fromEntries([
        ...profile.stages.map((s) => [s.stage, (disk.mainThreadCpuSPerM * s.pct) / 100]),
        ['V8 helper threads (GC)', v8Workers],
        ['libuv pool + LevelDB thread (gzip, spool writes)', pool],
      ])
    : undefined;
  return {
    emitterOverBatchAck: { gzip: disk.cpuSPerM / base.cpuSPerM, none: plain.cpuSPerM / base.cpuSPerM },
    rateOverBatchAck: disk.eventsPerS / base.eventsPerS,
    ackAllSavesUs: {
      client: base.cpuSPerM - raw.ackall.cpuSPerM,
      server: base.serverCpuSPerM - raw.ackall.serverCpuSPerM,
    },
    gzip: gzipCosts([...new Set<number>([GZIP_LEVEL, 6])]),
    stagesUs,
  };
}

export function costTable(
  raw: Record<AckMode, RawResult>,
  disk: E2EResult,
  plain: E2EResult,
  profile?: ProfileSummary,
): { text: string; figures: CostFigures } {
  const f = costFigures(raw, disk, plain, profile);
  const emitter = (r: E2EResult) => `${us(r.cpuSPerM)} (main ${fmt(r.mainThreadCpuSPerM, 1)})`;
  const out = [
    `CPU per event over ${fmt(S.events)} events of ~300 B (client: all its threads; each consumer parses every message):`,
    `  ${'consumer'.padEnd(52)} ${'client CPU/event'.padStart(20)} ${'server'.padStart(10)} ${'ev/s'.padStart(10)}`,
    ...(['each', 'batch', 'ackall'] as const).map((m) =>
      line(`bare: ${ACK_MODE_LABEL[m]}`, us(raw[m].cpuSPerM), raw[m].serverCpuSPerM, raw[m].eventsPerS),
    ),
    line(`emitter, gzip level ${GZIP_LEVEL}`, emitter(disk), disk.serverCpuSPerM, disk.eventsPerS),
    line('emitter, TRANSMITTER_COMPRESSION=none', emitter(plain), plain.serverCpuSPerM, plain.eventsPerS),
    `emitter threads, us/event (in start order, main first): gzip ${disk.threadsCpuSPerM.join(' ')}; ` +
      `none ${plain.threadsCpuSPerM.join(' ')}`,
    `emitter CPU / batch-ack consumer's: gzip ${f.emitterOverBatchAck.gzip.toFixed(2)} x, none ` +
      `${f.emitterOverBatchAck.none.toFixed(2)} x (target <= 2 x, aim 1.5 x)`,
    `e2e rate / batch-ack consumer's: ${f.rateOverBatchAck.toFixed(2)} (target >= 0.5)`,
    `peak RSS: gzip ${fmt(disk.peakRssMB)} MB, none ${fmt(plain.peakRssMB)} MB (target < 150 MB)`,
    `AckAll instead of explicit acks of ${fmt(S.batchSize)}: saves ${us(f.ackAllSavesUs.client)} of client and ` +
      `${us(f.ackAllSavesUs.server)} of server CPU per event`,
    `gzip alone (batches of ${fmt(S.batchSize)}, this process), per event; compressed size / raw:`,
    ...f.gzip.map(
      (g) =>
        `  level ${g.level}${g.level === GZIP_LEVEL ? ' (the default)' : ''}: the bench's events ${us(g.benchUs)}, ` +
        `${(g.benchRatio * 100).toFixed(1)}%; varied events ${us(g.variedUs)}, ${(g.variedRatio * 100).toFixed(1)}%`,
    ),
  ];
  if (f.stagesUs) {
    out.push("emitter CPU per event by stage (gzip run; main thread split by the profiled run's shares):");
    for (const [stage, v] of Object.entries(f.stagesUs))
      out.push(`  ${stage.padEnd(14)} ${us(v).padStart(9)}`);
  }
  return { text: out.join('\n'), figures: f };
}
