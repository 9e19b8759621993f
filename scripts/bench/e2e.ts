/** Parts 2, 5 and 6: the emitter end to end on pre-published messages (disk, tmpfs, profiled). */
import { copyFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AckPolicy, DeliverPolicy, jetstreamManager } from '@nats-io/jetstream';
import { connect, nanos } from '@nats-io/transport-node';
import type { NatsServerHandle } from '../../harness/nats.js';
import { consumerSettings } from '../../src/ingress/jetstream-resources.js';
import { fmt, OUT_DIR, progress, tempDir } from './context.js';
import { summariseProfile, type ProfileSummary } from './cpuprofile.js';
import { startEmitter } from './emitter.js';
import { EVENT_BYTES } from './payload.js';
import { cpuSeconds, memoryMB, threadCpuSeconds, threadsCpuSeconds } from './proc.js';
import { sampler, steadyRate, type Sample } from './sampler.js';
import { S } from './settings.js';
import type { Sink } from './sink-client.js';

export interface E2EResult {
  label: string;
  spool: string;
  events: number;
  seconds: number;
  eventsPerS: number;
  /** from 20 % delivered to the end: without the start-up (cold JIT, first pull, first seal) */
  steadyEventsPerS: number;
  inputMBps: number;
  wireMBps: number;
  cpuSPerM: number;
  /** the emitter's main thread alone (the rest: gzip and LevelDB on libuv's pool, V8's GC helpers) */
  mainThreadCpuSPerM: number;
  cpuPct: number;
  /** the nats-server's CPU over the same span */
  serverCpuSPerM: number;
  /** CPU s per 1M events of each thread, in the order they were started (the main thread first) */
  threadsCpuSPerM: number[];
  /** TRANSMITTER_COMPRESSION of the run */
  compression: 'gzip' | 'none';
  /** the loopback sink's CPU (gunzip, JSON.parse, counting) over the same run: it shares the cores */
  sinkCpuSPerM: number;
  peakRssMB: number;
  duplicates: number;
  exitCode: number | null;
  samples: Sample[];
  profile?: ProfileSummary;
}

export interface Env {
  nats: NatsServerHandle;
  sink: Sink;
  logDir: string;
}

/** A consumer allowing more unacknowledged messages: the emitter keeps one whose ack_wait matches. */
async function presetConsumer(natsUrl: string, durable: string, maxAckPending: number): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  const { ackWaitMs } = consumerSettings(S.batchSize, S.intervalS * 1000);
  await (
    await jetstreamManager(nc)
  ).consumers.add('APPROVED', {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(ackWaitMs),
    max_ack_pending: maxAckPending,
  });
  await nc.close();
}

/**
 * The largest profile in `dir` (the emitter's main thread), kept as bench-results/emitter-e2e.cpuprofile
 * and summarised over `window` (only the samples between "ready" and "sink has everything", counted
 * back from the exit).
 */
function keptProfile(
  dir: string,
  window: { fromEndMs: number; toEndMs: number },
): ProfileSummary | undefined {
  const main = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => ({ f, size: statSync(join(dir, f)).size }))
    .sort((a, b) => b.size - a.size)[0];
  if (!main) return undefined;
  const kept = join(OUT_DIR, 'emitter-e2e.cpuprofile');
  copyFileSync(join(dir, main.f), kept);
  return summariseProfile(kept, 25, window);
}

export async function e2e(
  env: Env,
  label: string,
  durable: string,
  spoolParent: string,
  opts: { cpuProfDir?: string; maxAckPending?: number; compression?: 'gzip' | 'none' } = {},
): Promise<E2EResult> {
  const { sink } = env;
  const { cpuProfDir } = opts;
  const compression = opts.compression ?? 'gzip';
  await sink.reset();
  if (opts.maxAckPending) await presetConsumer(env.nats.url, durable, opts.maxAckPending);
  const spoolDir = join(tempDir(spoolParent, `bench-spool-${label}-`), 'spool');
  const em = await startEmitter({
    label,
    nats: env.nats.url,
    sinkUrl: sink.url,
    stream: 'APPROVED',
    subjects: 'approved.>',
    durable,
    spoolDir,
    logDir: env.logDir,
    cpuProfDir,
    env: { TRANSMITTER_COMPRESSION: compression },
  });
  const ready = await em.waitReady();
  const threadsFrom = threadsCpuSeconds(em.pid);
  const mainFrom = threadCpuSeconds(em.pid, em.pid) ?? NaN;
  const sinkCpuFrom = sink.pid === undefined ? NaN : (cpuSeconds(sink.pid) ?? NaN);
  const serverPid = env.nats.pid;
  const serverCpuFrom = serverPid === undefined ? NaN : (cpuSeconds(serverPid) ?? NaN);
  const sampling = sampler(em.pid, spoolDir, sink, ready.atMs);
  const doneAt = await sink.until(S.events, S.e2eTimeoutS, (s) => {
    const secs = (Date.now() - ready.atMs) / 1000;
    const mem = memoryMB(em.pid);
    progress.set({
      label: `e2e ${label}`,
      done: s.distinct,
      total: S.events,
      unit: 'ev',
      detail: `${fmt(s.distinct / Math.max(0.001, secs))} ev/s  RSS ${fmt(mem?.rss ?? NaN)} MB`,
    });
  });
  const cpuDone = cpuSeconds(em.pid) ?? NaN;
  const mainDone = threadCpuSeconds(em.pid, em.pid) ?? NaN;
  const threads = [...threadsCpuSeconds(em.pid)].map(
    ([tid, s]) => Math.round(((s - (threadsFrom.get(tid) ?? 0)) / S.events) * 1e6 * 10) / 10,
  );
  const serverCpuDone = serverPid === undefined ? NaN : (cpuSeconds(serverPid) ?? NaN);
  const sinkCpuDone = sink.pid === undefined ? NaN : (cpuSeconds(sink.pid) ?? NaN);
  const mem = memoryMB(em.pid);
  const stats = sink.latest;
  const samples = sampling.stop();
  const stopped = await em.stop();
  const seconds = (doneAt - ready.atMs) / 1000;
  const profile = cpuProfDir
    ? keptProfile(cpuProfDir, { fromEndMs: stopped.atMs - ready.atMs, toEndMs: stopped.atMs - doneAt })
    : undefined;
  return {
    label,
    spool: spoolParent,
    events: S.events,
    seconds,
    eventsPerS: S.events / seconds,
    steadyEventsPerS: steadyRate(samples, S.events, doneAt),
    inputMBps: (S.events * EVENT_BYTES) / 1e6 / seconds,
    wireMBps: stats.wireBytes / 1e6 / seconds,
    cpuSPerM: ((cpuDone - ready.cpuS) / S.events) * 1e6,
    mainThreadCpuSPerM: ((mainDone - mainFrom) / S.events) * 1e6,
    cpuPct: ((cpuDone - ready.cpuS) / seconds) * 100,
    serverCpuSPerM: ((serverCpuDone - serverCpuFrom) / S.events) * 1e6,
    compression,
    threadsCpuSPerM: threads,
    sinkCpuSPerM: ((sinkCpuDone - sinkCpuFrom) / S.events) * 1e6,
    peakRssMB: mem?.hwm ?? NaN,
    duplicates: stats.events - stats.distinct,
    exitCode: stopped.code,
    samples,
    profile,
  };
}
