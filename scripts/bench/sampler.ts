/** Samples of a running emitter (delivered, RSS, CPU, spool size, heap) and what is derived from them. */
import type { Sink } from './sink-client.js';
import { cpuSeconds, dirBytes, memoryMB } from './proc.js';
import type { ChartPoint } from './svg.js';

export interface Sample {
  t: number;
  atMs: number;
  delivered: number;
  rssMB: number;
  cpuS: number;
  spoolMB: number;
  /** V8 heap used (from the emitter's /metrics, when asked for) */
  heapMB?: number;
}

export async function heapUsedMB(port: number): Promise<number | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = /^nodejs_heap_size_used_bytes\s+(\S+)/m.exec(text);
    return m ? Number(m[1]) / 1e6 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every 250 ms: sink count, emitter RSS and CPU, spool size; with `metricsPort`, also the V8 heap
 * once a second (reading /metrics costs the emitter some CPU, so only where memory is the question).
 */
export function sampler(pid: number, spoolDir: string, sink: Sink, t0: number, metricsPort?: number) {
  const samples: Sample[] = [];
  let lastHeap: number | undefined;
  const heapTimer =
    metricsPort === undefined
      ? undefined
      : setInterval(() => void heapUsedMB(metricsPort).then((h) => (lastHeap = h ?? lastHeap)), 1000);
  const take = () => {
    const mem = memoryMB(pid);
    const cpu = cpuSeconds(pid);
    if (!mem || cpu === undefined) return;
    const now = Date.now();
    samples.push({
      t: (now - t0) / 1000,
      atMs: now,
      delivered: sink.latest.distinct,
      rssMB: mem.rss,
      cpuS: cpu,
      spoolMB: dirBytes(spoolDir) / 1e6,
      ...(lastHeap !== undefined ? { heapMB: lastHeap } : {}),
    });
  };
  take();
  const timer = setInterval(take, 250);
  return {
    samples,
    stop() {
      clearInterval(timer);
      if (heapTimer) clearInterval(heapTimer);
      take();
      return samples;
    },
  };
}

/** Events/s from the first sample with 20 % delivered to the moment everything was delivered. */
export function steadyRate(samples: Sample[], total: number, doneAtMs: number): number {
  const from = samples.find((s) => s.delivered >= 0.2 * total);
  if (!from || doneAtMs <= from.atMs) return NaN;
  return (total - from.delivered) / ((doneAtMs - from.atMs) / 1000);
}

/** Delivered events/s over a sliding 1 s window, for the chart. */
export function chartPoints(samples: Sample[], withSpool = false): ChartPoint[] {
  return samples.map((s, i) => {
    let j = i;
    while (j > 0 && s.t - (samples[j - 1] as Sample).t <= 1.0001) j--;
    const a = samples[j] as Sample;
    const rate = s.t > a.t ? (s.delivered - a.delivered) / (s.t - a.t) : 0;
    return {
      t: s.t,
      rate,
      rssMB: s.rssMB,
      ...(withSpool ? { spoolMB: s.spoolMB } : {}),
      ...(s.heapMB !== undefined ? { heapMB: s.heapMB } : {}),
    };
  });
}

/** a run's figures for bench.json: samples without their wall-clock times */
export function strip<T extends { samples: Sample[] }>(r: T) {
  return { ...r, samples: r.samples.map(({ atMs: _a, ...s }) => s) };
}
