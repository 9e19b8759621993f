/** The full run's measurements, part after part on one nats-server and one sink, each said as it ends. */
import type { NatsConnection } from '@nats-io/transport-node';
import { fmt, say, tempDir } from './context.js';
import { e2e, type E2EResult, type Env } from './e2e.js';
import { latency, type LatencyResult } from './latency.js';
import { ensureStream, prepublish } from './nats-load.js';
import { outage, type OutageResult } from './outage.js';
import { rawConsumers, type AckMode, type RawResult } from './raw-consume.js';
import { scaleOut, type ScaleResult } from './scale.js';
import { PROFILE, S, SCALE } from './settings.js';
import type { Setup } from './setup.js';
import { sinkLimit, type SinkLimitResult } from './sink-limit.js';

export interface FullRun {
  raw: Record<AckMode, RawResult>;
  limit: SinkLimitResult;
  disk: E2EResult;
  /** the disk run with TRANSMITTER_COMPRESSION=none */
  plain: E2EResult;
  shm: E2EResult;
  bigAck: E2EResult;
  lat: LatencyResult;
  low: LatencyResult;
  out: OutageResult;
  scale?: ScaleResult;
  prof?: E2EResult;
}

async function rawLimits(b: Setup, env: Env, nc: NatsConnection) {
  await ensureStream(nc, 'APPROVED', ['approved.>']);
  const pub = await prepublish(nc, 'approved.bench', S.events);
  say(
    `pre-published ${fmt(S.events)} messages in ${pub.seconds.toFixed(1)} s (${fmt(S.events / pub.seconds)} msg/s, JetStream publish, window 1000)`,
  );
  const raw = await rawConsumers(env.nats.url, 'APPROVED', S.events, env.nats.pid);
  for (const r of Object.values(raw))
    say(
      `raw consume + parse, ack ${r.mode.padEnd(6)}: ${fmt(r.eventsPerS)} msg/s, ${fmt(r.cpuSPerM, 1)} CPU s/1M`,
    );
  const limit = await sinkLimit(b.sink, S.sinkLimitS);
  say(
    `sink limit:                 ${fmt(limit.batchesPerS)} batches/s (${fmt(limit.eventsPerS)} ev/s, ${fmt(limit.batchBytes)} B/batch)`,
  );
  return { raw, limit };
}

async function endToEnd(b: Setup, env: Env) {
  const disk = await e2e(env, 'disk', 'e2e_disk', b.root);
  say(
    `e2e, spool on disk:         ${fmt(disk.eventsPerS)} ev/s, ${fmt(disk.cpuSPerM, 1)} CPU s/1M, peak RSS ${fmt(disk.peakRssMB)} MB`,
  );
  const plain = await e2e(env, 'disk-none', 'e2e_none', b.root, { compression: 'none' });
  say(
    `e2e, compression none:      ${fmt(plain.eventsPerS)} ev/s, ${fmt(plain.cpuSPerM, 1)} CPU s/1M, peak RSS ${fmt(plain.peakRssMB)} MB`,
  );
  const shm = await e2e(env, 'tmpfs', 'e2e_tmpfs', b.shmParent);
  say(
    `e2e, spool on tmpfs:        ${fmt(shm.eventsPerS)} ev/s, ${fmt(shm.cpuSPerM, 1)} CPU s/1M, peak RSS ${fmt(shm.peakRssMB)} MB`,
  );
  const bigAck = await e2e(env, 'disk-ackpending', 'e2e_ackpending', b.root, {
    maxAckPending: S.bigAckPending,
  });
  say(`e2e, max_ack_pending ${fmt(S.bigAckPending)}:  ${fmt(bigAck.eventsPerS)} ev/s`);
  return { disk, plain, shm, bigAck };
}

export const latencyLine = (r: LatencyResult, pad: string): string =>
  `latency at ${fmt(r.offeredRate)}/s:${pad}p50 ${fmt(r.p50)} ms, p99 ${fmt(r.p99)} ms, max ${fmt(r.max)} ms ` +
  `(n=${fmt(r.n)}, delivered ${fmt(r.deliveredRate)}/s)`;

async function latencies(b: Setup, env: Env, nc: NatsConnection) {
  const lat = await latency(env, nc, b.root, S.latencyRate, S.latencyS, 'lat');
  say(latencyLine(lat, '        '));
  const low = await latency(env, nc, b.root, S.lowLatencyRate, S.lowLatencyS, 'low');
  say(latencyLine(low, '         '));
  return { lat, low };
}

async function outageAndRecovery(b: Setup, env: Env, nc: NatsConnection) {
  const out = await outage(env, nc, b.root);
  say(
    `outage ${out.outageS} s at ${fmt(out.offeredRate)}/s:     RSS ${fmt(out.rssAtOutageStartMB)} -> max ${fmt(out.rssMaxMB)} MB, ` +
      `spool ${fmt(out.spoolAtOutageStartMB, 1)} -> ${fmt(out.spoolAtOutageEndMB, 1)} MB, drain ${fmt(out.drainRate)} ev/s`,
  );
  return out;
}

export async function profiledE2e(b: Setup, env: Env): Promise<E2EResult> {
  const profDir = tempDir(b.root, 'cpuprof-');
  const prof = await e2e(env, 'profiled', 'e2e_prof', b.root, { cpuProfDir: profDir });
  say(`e2e under --cpu-prof:       ${fmt(prof.eventsPerS)} ev/s`);
  return prof;
}

export async function measureAll(b: Setup, env: Env, nc: NatsConnection): Promise<FullRun> {
  const raw = await rawLimits(b, env, nc);
  const ends = await endToEnd(b, env);
  const lats = await latencies(b, env, nc);
  const out = await outageAndRecovery(b, env, nc);
  const scale = SCALE ? await scaleOut(b.sink, b.logDir, b.root, b.machine.nproc) : undefined;
  const prof = PROFILE ? await profiledE2e(b, env) : undefined;
  return { ...raw, ...ends, ...lats, out, scale, prof };
}
