/** Part 3: publish -> delivered latency at a fixed offered rate. */
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { fmt, progress, sleep, tempDir } from './context.js';
import type { Env } from './e2e.js';
import { startEmitter } from './emitter.js';
import { ensureStream, pacedPublisher, streamCount } from './nats-load.js';
import { cpuSeconds, memoryMB } from './proc.js';
import { sampler, type Sample } from './sampler.js';
import { S } from './settings.js';
import type { LatencyReport } from './sink.js';

export interface LatencyResult extends LatencyReport {
  offeredRate: number;
  seconds: number;
  published: number;
  /** events/s delivered while publishing: below the offered rate means the emitter could not keep up */
  deliveredRate: number;
  cpuPct: number;
  peakRssMB: number;
  samples: Sample[];
}

export async function latency(
  env: Env,
  nc: NatsConnection,
  spoolParent: string,
  rate: number,
  seconds: number,
  name: string,
): Promise<LatencyResult> {
  const { sink } = env;
  const stream = `LAT_${name.toUpperCase()}`;
  await ensureStream(nc, stream, [`${name}.>`]);
  await sink.reset();
  const spoolDir = join(tempDir(spoolParent, `bench-spool-${name}-`), 'spool');
  const em = await startEmitter({
    label: name,
    nats: env.nats.url,
    sinkUrl: sink.url,
    stream,
    subjects: `${name}.>`,
    durable: name,
    spoolDir,
    logDir: env.logDir,
  });
  const ready = await em.waitReady();
  const sampling = sampler(em.pid, spoolDir, sink, ready.atMs);
  const pub = pacedPublisher(nc, `${name}.bench`, rate);
  const total = rate * seconds;
  let deliveredFrom = 0;
  let recording = false;
  let cpuFrom = NaN;
  let tFrom = 0;
  while (pub.state.sent < total) {
    const secs = (Date.now() - ready.atMs) / 1000;
    if (!recording && secs >= S.latencyWarmS) {
      recording = true;
      tFrom = Date.now();
      cpuFrom = cpuSeconds(em.pid) ?? NaN;
      deliveredFrom = sink.latest.distinct;
      await sink.recordLatencyFrom(tFrom);
    }
    progress.set({
      label: `latency ${fmt(rate / 1000)}k/s`,
      done: pub.state.sent,
      total,
      unit: 'ev',
      detail: `delivered ${fmt(sink.latest.distinct)}  RSS ${fmt(memoryMB(em.pid)?.rss ?? NaN)} MB`,
    });
    await sleep(100);
  }
  const published = await pub.stop();
  const tTo = Date.now();
  const cpuTo = cpuSeconds(em.pid) ?? NaN;
  const deliveredTo = sink.latest.distinct;
  const inStream = await streamCount(nc, stream);
  await sink.until(Math.min(published, inStream), 60);
  const report = await sink.latencyReport();
  const mem = memoryMB(em.pid);
  const samples = sampling.stop();
  await em.stop();
  return {
    ...report,
    offeredRate: rate,
    seconds,
    published,
    deliveredRate: (deliveredTo - deliveredFrom) / ((tTo - tFrom) / 1000),
    cpuPct: ((cpuTo - cpuFrom) / ((tTo - tFrom) / 1000)) * 100,
    peakRssMB: mem?.hwm ?? NaN,
    samples,
  };
}
