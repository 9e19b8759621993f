/** The files a bench run writes: bench-results/bench.json (whole, or one part merged) and bench.svg. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GZIP_LEVEL } from '../../src/spool/batch-codec.js';
import { fmt, OUT_DIR } from './context.js';
import { costFigures } from './cost-report.js';
import { emitterCommand } from './emitter.js';
import type { FullRun } from './full.js';
import { EVENT_BYTES } from './payload.js';
import type { Row } from './report.js';
import { chartPoints, strip } from './sampler.js';
import { QUICK, S } from './settings.js';
import type { Setup } from './setup.js';
import { renderChart, type ChartPanel } from './svg.js';

/** --only: keep the other parts of an earlier run's bench.json and replace only `part`. */
export function mergePart(part: string, figures: Record<string, unknown>): void {
  const jsonPath = join(OUT_DIR, 'bench.json');
  let previous: Record<string, unknown> = {};
  try {
    previous = JSON.parse(readFileSync(jsonPath, 'utf8')) as Record<string, unknown>;
  } catch {
    // none yet
  }
  const stamped = { ...figures, at: new Date().toISOString(), quick: QUICK, emitter: emitterCommand().what };
  writeFileSync(jsonPath, `${JSON.stringify({ ...previous, [part]: stamped }, null, 2)}\n`);
  process.stdout.write(`wrote "${part}" into ${join('bench-results', 'bench.json')}\n`);
}

function fullResults(b: Setup, r: FullRun, rows: Row[], loadEnd: number[]) {
  const { raw, limit, disk, shm, prof } = r;
  return {
    at: new Date().toISOString(),
    quick: QUICK,
    settings: S,
    eventBytes: EVENT_BYTES,
    gzipLevel: GZIP_LEVEL,
    emitter: emitterCommand().what,
    machine: b.machine,
    loadAverage: { start: b.loadStart, end: loadEnd },
    raw: { ...raw, sinkLimit: limit },
    cost: costFigures(raw, disk, r.plain, prof?.profile),
    profiledRunNote: 'the profiled run is slower (sampling overhead); its figures are not in the table',
    e2eDisk: strip(disk),
    e2eNone: strip(r.plain),
    e2eTmpfs: strip(shm),
    e2eBigAckPending: strip(r.bigAck),
    latency: strip(r.lat),
    latencyLow: strip(r.low),
    outage: strip(r.out),
    scale: r.scale,
    profiledRun: prof ? { ...strip(prof), profile: prof.profile } : undefined,
    ratios: {
      e2eOverBatchAckConsumer: disk.eventsPerS / raw.batch.eventsPerS,
      e2eOverSinkLimit: disk.eventsPerS / limit.eventsPerS,
      diskOverTmpfs: disk.eventsPerS / shm.eventsPerS,
    },
    table: rows,
  };
}

function panels({ raw: bare, disk, shm, lat, low, out }: FullRun): ChartPanel[] {
  const raw = { rate: bare.batch.eventsPerS, label: 'bare consumer, batch acks' };
  const offered = (rate: number) => ({ rate, label: 'offered' });
  return [
    {
      title: `e2e, spool on disk: ${fmt(S.events)} pre-published events`,
      points: chartPoints(disk.samples),
      reference: raw,
    },
    { title: 'e2e, spool on tmpfs', points: chartPoints(shm.samples), reference: raw },
    {
      title: `latency run: ${fmt(lat.offeredRate)} ev/s offered`,
      points: chartPoints(lat.samples),
      reference: offered(lat.offeredRate),
    },
    {
      title: `latency run: ${fmt(low.offeredRate)} ev/s offered`,
      points: chartPoints(low.samples),
      reference: offered(low.offeredRate),
    },
    {
      title: `outage: ${out.outageS} s of 503 at ${fmt(out.offeredRate)} ev/s offered`,
      points: chartPoints(out.samples, true),
      shade: { from: out.outageFromS, to: out.outageToS, label: 'sink 503' },
      reference: offered(out.offeredRate),
    },
  ];
}

/** bench.json and bench.svg of the full run. */
export function writeFullRun(b: Setup, r: FullRun, rows: Row[], loadEnd: number[]): void {
  const results = fullResults(b, r, rows, loadEnd);
  writeFileSync(join(OUT_DIR, 'bench.json'), `${JSON.stringify(results, null, 2)}\n`);
  const m = b.machine;
  const svg = renderChart(
    `batch-emitter bench${QUICK ? ' (--quick)' : ''}: throughput and RSS over time`,
    `${m.nproc} x ${m.model}, Node ${m.node}, nats-server ${b.natsVersion}, load ${b.loadStart[0].toFixed(2)} -> ${(loadEnd[0] as number).toFixed(2)}, ${results.at}`,
    panels(r),
  );
  writeFileSync(join(OUT_DIR, 'bench.svg'), svg);
  const profile = r.prof?.profile ? `, ${join('bench-results', 'emitter-e2e.cpuprofile')}` : '';
  process.stdout.write(
    `\nwrote ${join('bench-results', 'bench.json')}, ${join('bench-results', 'bench.svg')}${profile}\n`,
  );
}
