/** `--only <part>`: one part on its own, its figures merged into an existing bench.json. */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { fmt } from './context.js';
import { formatProfile } from './cpuprofile.js';
import { e2e, type Env } from './e2e.js';
import { latency, type LatencyResult } from './latency.js';
import { ensureStream, prepublish } from './nats-load.js';
import { rawConsumers } from './raw-consume.js';
import { costTable } from './cost-report.js';
import { profiledE2e } from './full.js';
import { mergePart } from './results.js';
import { strip } from './sampler.js';
import { scaleOut } from './scale.js';
import { scaleTable } from './scale-report.js';
import { PROFILE, S, type Part } from './settings.js';
import { loads, tearDown, type Setup } from './setup.js';

async function onlyScale(b: Setup): Promise<void> {
  const scale = await scaleOut(b.sink, b.logDir, b.root, b.machine.nproc);
  const loadEnd = await tearDown(b);
  process.stdout.write(`\n${scaleTable(scale)}\n`);
  process.stdout.write(
    `load average: start ${loads(b.loadStart)}, end ${loads(loadEnd)} ` +
      `(${b.machine.nproc} cores; other work on the machine skews every figure)\n`,
  );
  mergePart('scale', { ...scale, machine: b.machine, loadAverage: { start: b.loadStart, end: loadEnd } });
}

async function onlyE2e(b: Setup, env: Env, nc: NatsConnection): Promise<void> {
  await ensureStream(nc, 'APPROVED', ['approved.>']);
  await prepublish(nc, 'approved.bench', S.events);
  const raw = await rawConsumers(env.nats.url, 'APPROVED', S.events, env.nats.pid);
  const disk = await e2e(env, 'disk', 'e2e_disk', b.root);
  const plain = await e2e(env, 'disk-none', 'e2e_none', b.root, { compression: 'none' });
  const prof = PROFILE ? await profiledE2e(b, env) : undefined;
  const loadEnd = await tearDown(b, nc);
  const cost = costTable(raw, disk, plain, prof?.profile);
  if (prof?.profile) process.stdout.write(`\n${formatProfile(prof.profile)}\n`);
  process.stdout.write(
    `\n${cost.text}\n` + `load average: start ${loads(b.loadStart)}, end ${loads(loadEnd)}\n`,
  );
  const loadAverage = { start: b.loadStart, end: loadEnd };
  mergePart('e2eDisk', {
    ...strip(disk),
    none: strip(plain),
    raw,
    cost: cost.figures,
    profile: prof?.profile,
    machine: b.machine,
    loadAverage,
  });
}

const latencyLine = (r: LatencyResult) =>
  `latency at ${fmt(r.offeredRate)}/s, flush interval ${S.intervalS} s: p50 ${fmt(r.p50)} ms, p99 ${fmt(r.p99)} ms, ` +
  `max ${fmt(r.max)} ms (n=${fmt(r.n)}, delivered ${fmt(r.deliveredRate)}/s, emitter CPU ${fmt(r.cpuPct)}%)\n`;

async function onlyLatency(b: Setup, env: Env, nc: NatsConnection): Promise<void> {
  const lat = await latency(env, nc, b.root, S.latencyRate, S.latencyS, 'lat');
  const low = await latency(env, nc, b.root, S.lowLatencyRate, S.lowLatencyS, 'low');
  const loadEnd = await tearDown(b, nc);
  for (const r of [lat, low]) process.stdout.write(latencyLine(r));
  process.stdout.write(`load average: start ${loads(b.loadStart)}, end ${loads(loadEnd)}\n`);
  const loadAverage = { start: b.loadStart, end: loadEnd };
  mergePart('latency', { ...strip(lat), machine: b.machine, loadAverage });
  mergePart('latencyLow', { ...strip(low), machine: b.machine, loadAverage });
}

export async function runOnly(part: Part, b: Setup): Promise<void> {
  if (part === 'scale' || !b.nats) return onlyScale(b);
  const env: Env = { nats: b.nats, sink: b.sink, logDir: b.logDir };
  const nc = await connect({ servers: b.nats.url, name: 'bench-publisher', noAsyncTraces: true });
  return part === 'e2e' ? onlyE2e(b, env, nc) : onlyLatency(b, env, nc);
}
