/** Part 7, one run of the scale-out: k emitter processes sharing one durable, optionally one killed. */
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { NatsClusterHandle } from '../../harness/nats.js';
import { replicaSet, type ReplicaSet } from '../../harness/replicated.js';
import { fmt, progress, say, sleep, tempDir } from './context.js';
import { startEmitter, type EmitterRun } from './emitter.js';
import { cpuSeconds, machineBusyPct, machineCpuTimes, memoryMB } from './proc.js';
import { S } from './settings.js';
import type { Sink } from './sink-client.js';

export interface ScaleEnv {
  sink: Sink;
  logDir: string;
  cluster: NatsClusterHandle;
  /** connected to every node of the cluster */
  nc: NatsConnection;
}

export interface ScaleRun {
  processes: number;
  /** this run SIGKILLed one process and restarted it on the same spool */
  killed: boolean;
  durable: string;
  events: number;
  /** from the first process ready to the sink holding every event */
  seconds: number;
  eventsPerS: number;
  /** from 20 % delivered to the end: without the start-up of the processes */
  steadyEventsPerS: number;
  /** eventsPerS over the 1-process run's */
  xOfOne: number;
  /** events of the stream the sink never received */
  lost: number;
  /** event rows delivered more than once (new batches of redelivered messages) */
  duplicates: number;
  /** batches posted again with an idempotency-key already seen */
  duplicateBatches: number;
  /** batch_emitter_items_delivered_total of each process at the end (the killed one: its restart) */
  deliveredByProcess: number[];
  /** CPU of all emitter processes over the run, in % of one core */
  emittersCpuPct: number;
  /** all of the machine's CPUs over the run (emitters, nats-server, sink, anything else), in % */
  machineBusyPct: number;
  peakRssMB: number;
  /** seconds from the first process ready until the last one was */
  startSpreadS: number;
  killedAtDelivered?: number;
  killedAtS?: number;
  restartReadyS?: number;
  /** the consumer had nothing pending or unacknowledged at the end */
  consumerDrained: boolean;
  /** the durable's RAFT group at the end of the run (it inherits the stream's replicas) */
  consumer: ReplicaSet;
  exitCodes: Array<number | null>;
}

export async function itemsDelivered(port: number): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = /^batch_emitter_items_delivered_total\s+(\S+)/m.exec(text);
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

export async function scaleRun(
  env: ScaleEnv,
  spoolParent: string,
  k: number,
  kill: boolean,
  oneProcessRate: number,
): Promise<ScaleRun> {
  const { sink, nc } = env;
  const n = S.scaleEvents;
  const durable = `scale_${k}${kill ? '_kill' : ''}`;
  const label = `${k} proc${kill ? ' kill' : ''}`;
  await sink.reset();
  const trace: Array<{ atMs: number; delivered: number }> = [];
  const offTrace = sink.onStats((s) => trace.push({ atMs: s.atMs, delivered: s.distinct }));
  const spools = Array.from({ length: k }, (_, i) =>
    join(tempDir(spoolParent, `bench-spool-${durable}-${i}-`), 'spool'),
  );
  const launch = (i: number, suffix = '') =>
    startEmitter({
      label: `${durable}-${i}${suffix}`,
      // every node: the emitter's nats.js client picks one and fails over to the others
      nats: env.cluster.urls,
      sinkUrl: sink.url,
      stream: 'SCALE',
      subjects: 'scale.>',
      durable,
      spoolDir: spools[i] as string,
      logDir: env.logDir,
      env: { TRANSMITTER_NATS_ACK_WAIT_S: String(S.scaleAckWaitS) },
    });
  const ems = await Promise.all(spools.map((_, i) => launch(i)));
  const readies = await Promise.all(ems.map((em) => em.waitReady()));
  const t0 = Math.min(...readies.map((r) => r.atMs));
  const machineFrom = machineCpuTimes();
  const startSpreadS = (Math.max(...readies.map((r) => r.atMs)) - t0) / 1000;
  // CPU seconds used by emitters that are gone (the killed one), and the start figure of the live ones
  let cpuGone = 0;
  const cpuFrom = readies.map((r) => r.cpuS);
  const peakRss: number[] = [];
  const rssNow = () => ems.map((em) => memoryMB(em.pid)?.rss ?? 0).reduce((a, b) => a + b, 0);

  let killedAtDelivered: number | undefined;
  let killedAtS: number | undefined;
  let restartReadyS: number | undefined;
  const victim = k - 1;
  const killer = kill
    ? (async () => {
        await sink.until(Math.ceil(S.scaleKillAt * n), S.e2eTimeoutS);
        const em = ems[victim] as EmitterRun;
        const cpu = cpuSeconds(em.pid) ?? NaN;
        const mem = memoryMB(em.pid);
        await em.kill();
        killedAtDelivered = sink.latest.distinct;
        killedAtS = (Date.now() - t0) / 1000;
        cpuGone += cpu - (cpuFrom[victim] as number);
        if (mem) peakRss.push(mem.hwm);
        say(
          `scale, ${k} processes: SIGKILLed process ${victim + 1} at ${fmt(killedAtDelivered)} of ${fmt(n)} delivered (${fmt(killedAtS, 1)} s); restarting it on its spool`,
        );
        const again = await launch(victim, '-restart');
        ems[victim] = again;
        const r = await again.waitReady();
        cpuFrom[victim] = r.cpuS;
        restartReadyS = (r.atMs - t0) / 1000;
      })()
    : Promise.resolve();

  let lost = 0;
  let doneAt: number;
  try {
    doneAt = await sink.until(n, S.e2eTimeoutS, (s) => {
      const secs = (Date.now() - t0) / 1000;
      progress.set({
        label: `scale ${label}`,
        done: s.distinct,
        total: n,
        unit: 'ev',
        detail: `${fmt(s.distinct / Math.max(0.001, secs))} ev/s  RSS sum ${fmt(rssNow())} MB`,
      });
    });
  } catch (error) {
    say(`scale, ${k} processes: ${(error as Error).message}`);
    doneAt = sink.latest.atMs;
    lost = n - sink.latest.distinct;
  }
  await killer;
  const cpuAtDone = ems.map((em) => cpuSeconds(em.pid) ?? NaN);
  const machineTo = machineCpuTimes();

  // settle: the consumer has nothing left to deliver or to be acked, and the sink has been quiet for
  // 1.5 s, so that late duplicates (redelivered messages a dead process had spooled) are counted
  const jsm = await jetstreamManager(nc);
  let consumerDrained = false;
  let consumer = replicaSet(undefined);
  const settleUntil = Date.now() + (S.scaleAckWaitS + 20) * 1000;
  let lastEvents = -1;
  let quietSince = Date.now();
  while (Date.now() < settleUntil) {
    const info = await jsm.consumers.info('SCALE', durable);
    consumerDrained = info.num_pending === 0 && info.num_ack_pending === 0;
    consumer = replicaSet(info.cluster);
    if (sink.latest.events !== lastEvents) {
      lastEvents = sink.latest.events;
      quietSince = Date.now();
    }
    if (consumerDrained && Date.now() - quietSince >= 1500) break;
    progress.set({
      label: `scale ${label}`,
      done: n - lost,
      total: n,
      unit: 'ev',
      detail: `settling: ack pending ${fmt(info.num_ack_pending)}, duplicates ${fmt(sink.latest.events - sink.latest.distinct)}`,
    });
    await sleep(250);
  }
  offTrace();
  const stats = sink.latest;
  lost = n - stats.distinct;
  const deliveredByProcess = await Promise.all(ems.map((em) => itemsDelivered(em.port)));
  for (const em of ems) {
    const mem = memoryMB(em.pid);
    if (mem) peakRss.push(mem.hwm);
  }
  const exitCodes = (await Promise.all(ems.map((em) => em.stop()))).map((s) => s.code);

  const seconds = (doneAt - t0) / 1000;
  const cpuS = cpuGone + cpuAtDone.reduce((a, c, i) => a + (c - (cpuFrom[i] as number)), 0);
  const from = trace.find((p) => p.delivered >= 0.2 * n);
  const eventsPerS = (n - lost) / seconds;
  return {
    processes: k,
    killed: kill,
    durable,
    events: n,
    seconds,
    eventsPerS,
    steadyEventsPerS:
      from && doneAt > from.atMs ? (n - lost - from.delivered) / ((doneAt - from.atMs) / 1000) : NaN,
    xOfOne: eventsPerS / (oneProcessRate || eventsPerS),
    lost,
    duplicates: stats.events - stats.distinct,
    duplicateBatches: stats.duplicateBatches,
    deliveredByProcess,
    emittersCpuPct: (cpuS / seconds) * 100,
    machineBusyPct: machineBusyPct(machineFrom, machineTo),
    peakRssMB: Math.max(...peakRss),
    startSpreadS,
    killedAtDelivered,
    killedAtS,
    restartReadyS,
    consumerDrained,
    consumer,
    exitCodes,
  };
}
