/** Part 4: a sink outage (503) under a fixed offered rate, then recovery. */
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { fmt, progress, sleep, tempDir } from './context.js';
import type { Env } from './e2e.js';
import { startEmitter } from './emitter.js';
import { ensureStream, pacedPublisher, streamCount } from './nats-load.js';
import { dirBytes, memoryMB } from './proc.js';
import { sampler, type Sample } from './sampler.js';
import { S } from './settings.js';

export interface OutageResult {
  offeredRate: number;
  heapAtOutageStartMB?: number;
  heapMaxMB?: number;
  /** mean RSS of the last third of the outage over the first third */
  rssLateOverEarly: number;
  outageS: number;
  retryEnv: Record<string, string>;
  rssAtOutageStartMB: number;
  rssMinMB: number;
  rssMaxMB: number;
  rssAtOutageEndMB: number;
  rssGrowthPct: number;
  spoolAtOutageStartMB: number;
  spoolAtOutageEndMB: number;
  spoolGrowthMBperMin: number;
  backlogAtRecovery: number;
  firstDeliveryAfterRecoveryS: number;
  catchUpS: number;
  drainRate: number;
  peakRssMB: number;
  published: number;
  duplicates: number;
  samples: Sample[];
  outageFromS: number;
  outageToS: number;
}

// fast retries and a short breaker reset, so that recovery is noticed within ~2 s
const RETRY_ENV = {
  TRANSMITTER_RETRY_INITIAL_DELAY_S: '0.5',
  TRANSMITTER_RETRY_MAX_DELAY_S: '2',
  TRANSMITTER_RETRY_MAX_ATTEMPTS: '1000',
  TRANSMITTER_CIRCUIT_RESET_TIMEOUT_S: '2',
};

/** (sink time, delivered, published) at each sink stats message */
type Trace = Array<{ atMs: number; delivered: number; published: number }>;

/** What happened when, in the emitter's run: the raw material of the figures. */
interface Timeline {
  readyAtMs: number;
  outFrom: number;
  recAt: number;
  publishedAtRec: number;
  deliveredAtRec: number;
  caughtAt?: number;
  trace: Trace;
  samples: Sample[];
  published: number;
  duplicates: number;
  peakRssMB: number;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** The first trace point after recovery where the lag is back under two batches. */
async function caughtUp(
  trace: Trace,
  recAt: number,
  show: (done: number) => void,
): Promise<number | undefined> {
  const recDeadline = recAt + S.outageRecoveryMaxS * 1000;
  while (Date.now() < recDeadline) {
    const last = trace[trace.length - 1];
    if (last && last.atMs > recAt && last.published - last.delivered <= 2 * S.batchSize) return last.atMs;
    show((Date.now() - recAt) / 1000);
    await sleep(50);
  }
  return undefined;
}

async function runOutage(env: Env, nc: NatsConnection, spoolParent: string): Promise<Timeline> {
  const { sink } = env;
  await ensureStream(nc, 'OUTAGE', ['out.>']);
  await sink.reset();
  const spoolDir = join(tempDir(spoolParent, 'bench-spool-outage-'), 'spool');
  const em = await startEmitter({
    label: 'outage',
    nats: env.nats.url,
    sinkUrl: sink.url,
    stream: 'OUTAGE',
    subjects: 'out.>',
    durable: 'outage',
    spoolDir,
    logDir: env.logDir,
    env: RETRY_ENV,
  });
  const ready = await em.waitReady();
  const sampling = sampler(em.pid, spoolDir, sink, ready.atMs, em.port);
  const pub = pacedPublisher(nc, 'out.bench', S.outageRate);
  const trace: Trace = [];
  const off = sink.onStats((s) =>
    trace.push({ atMs: s.atMs, delivered: s.distinct, published: pub.state.sent }),
  );
  const show = (label: string, done: number, total: number) =>
    progress.set({
      label,
      done,
      total,
      unit: 's',
      detail: `published ${fmt(pub.state.sent)} delivered ${fmt(sink.latest.distinct)}  RSS ${fmt(memoryMB(em.pid)?.rss ?? NaN)} MB  spool ${fmt(dirBytes(spoolDir) / 1e6, 1)} MB`,
    });
  const phase = async (name: string, seconds: number) => {
    const from = Date.now();
    while (Date.now() - from < seconds * 1000) {
      show(name, (Date.now() - from) / 1000, seconds);
      await sleep(200);
    }
  };
  await phase('outage: warm', S.outageWarmS);
  await sink.mode('503');
  const outFrom = Date.now();
  await phase('outage: 503', S.outageS);
  await sink.mode('ok');
  const recAt = Date.now();
  const publishedAtRec = pub.state.sent;
  const deliveredAtRec = sink.latest.distinct;
  const caughtAt = await caughtUp(trace, recAt, (done) => show('outage: drain', done, S.outageRecoveryMaxS));
  await phase('outage: after', 3);
  const published = await pub.stop();
  const inStream = await streamCount(nc, 'OUTAGE');
  await sink.until(Math.min(published, inStream), 60);
  off();
  const mem = memoryMB(em.pid);
  const samples = sampling.stop();
  const duplicates = sink.latest.events - sink.latest.distinct;
  await em.stop();
  return {
    readyAtMs: ready.atMs,
    outFrom,
    recAt,
    publishedAtRec,
    deliveredAtRec,
    caughtAt,
    trace,
    samples,
    published,
    duplicates,
    peakRssMB: mem?.hwm ?? NaN,
  };
}

function figures(t: Timeline): OutageResult {
  const { samples, trace, recAt, deliveredAtRec } = t;
  const during = samples.filter((s) => s.atMs >= t.outFrom && s.atMs <= recAt);
  const first = during[0] ?? (samples[0] as Sample);
  const lastOut = during[during.length - 1] ?? first;
  const rss = during.map((s) => s.rssMB);
  const firstDelivery = trace.find((p) => p.atMs > recAt && p.delivered > deliveredAtRec);
  const caught = t.caughtAt === undefined ? undefined : trace.find((p) => p.atMs === t.caughtAt);
  const drainSecs = firstDelivery && caught ? (caught.atMs - firstDelivery.atMs) / 1000 : NaN;
  const third = Math.max(1, Math.floor(during.length / 3));
  const heaps = during.flatMap((s) => (s.heapMB === undefined ? [] : [s.heapMB]));
  return {
    offeredRate: S.outageRate,
    heapAtOutageStartMB: heaps[0],
    heapMaxMB: heaps.length > 0 ? Math.max(...heaps) : undefined,
    rssLateOverEarly: mean(rss.slice(-third)) / mean(rss.slice(0, third)),
    outageS: S.outageS,
    retryEnv: RETRY_ENV,
    rssAtOutageStartMB: first.rssMB,
    rssMinMB: Math.min(...rss),
    rssMaxMB: Math.max(...rss),
    rssAtOutageEndMB: lastOut.rssMB,
    rssGrowthPct: ((Math.max(...rss) - first.rssMB) / first.rssMB) * 100,
    spoolAtOutageStartMB: first.spoolMB,
    spoolAtOutageEndMB: lastOut.spoolMB,
    spoolGrowthMBperMin: ((lastOut.spoolMB - first.spoolMB) / Math.max(1, lastOut.t - first.t)) * 60,
    backlogAtRecovery: t.publishedAtRec - deliveredAtRec,
    firstDeliveryAfterRecoveryS: firstDelivery ? (firstDelivery.atMs - recAt) / 1000 : NaN,
    catchUpS: caught ? (caught.atMs - recAt) / 1000 : NaN,
    drainRate:
      firstDelivery && caught && drainSecs > 0 ? (caught.delivered - deliveredAtRec) / drainSecs : NaN,
    peakRssMB: t.peakRssMB,
    published: t.published,
    duplicates: t.duplicates,
    samples,
    outageFromS: (t.outFrom - t.readyAtMs) / 1000,
    outageToS: (recAt - t.readyAtMs) / 1000,
  };
}

export async function outage(env: Env, nc: NatsConnection, spoolParent: string): Promise<OutageResult> {
  return figures(await runOutage(env, nc, spoolParent));
}
