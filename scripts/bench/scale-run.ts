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

interface Kill {
  killedAtDelivered: number;
  killedAtS: number;
  restartReadyS: number;
}

/** The k emitter processes of one run, with the CPU and memory figures that outlive a killed one. */
class Fleet {
  readonly ems: EmitterRun[] = [];
  /** CPU seconds of each live process at its ready time */
  cpuFrom: number[] = [];
  /** CPU seconds used by processes that are gone (the killed one) */
  cpuGone = 0;
  readonly peakRss: number[] = [];
  t0 = 0;
  startSpreadS = 0;
  private readonly spools: string[];

  constructor(
    readonly env: ScaleEnv,
    spoolParent: string,
    readonly k: number,
    readonly durable: string,
  ) {
    this.spools = Array.from({ length: k }, (_, i) =>
      join(tempDir(spoolParent, `bench-spool-${durable}-${i}-`), 'spool'),
    );
  }

  private launch(i: number, suffix = ''): Promise<EmitterRun> {
    return startEmitter({
      label: `${this.durable}-${i}${suffix}`,
      // every node: the emitter's nats.js client picks one and fails over to the others
      nats: this.env.cluster.urls,
      sinkUrl: this.env.sink.url,
      stream: 'SCALE',
      subjects: 'scale.>',
      durable: this.durable,
      spoolDir: this.spools[i] as string,
      logDir: this.env.logDir,
      env: { TRANSMITTER_NATS_ACK_WAIT_S: String(S.scaleAckWaitS) },
    });
  }

  async start(): Promise<void> {
    this.ems.push(...(await Promise.all(this.spools.map((_, i) => this.launch(i)))));
    const readies = await Promise.all(this.ems.map((em) => em.waitReady()));
    this.t0 = Math.min(...readies.map((r) => r.atMs));
    this.startSpreadS = (Math.max(...readies.map((r) => r.atMs)) - this.t0) / 1000;
    this.cpuFrom = readies.map((r) => r.cpuS);
  }

  rssSum(): number {
    return this.ems.map((em) => memoryMB(em.pid)?.rss ?? 0).reduce((a, b) => a + b, 0);
  }

  private notePeak(em: EmitterRun): void {
    const mem = memoryMB(em.pid);
    if (mem) this.peakRss.push(mem.hwm);
  }

  /** SIGKILL the last process once S.scaleKillAt of the events are delivered; restart it on its spool. */
  async killAndRestart(): Promise<Kill> {
    const { sink } = this.env;
    const n = S.scaleEvents;
    const victim = this.k - 1;
    await sink.until(Math.ceil(S.scaleKillAt * n), S.e2eTimeoutS);
    const em = this.ems[victim] as EmitterRun;
    const cpu = cpuSeconds(em.pid) ?? NaN;
    this.notePeak(em);
    await em.kill();
    const killedAtDelivered = sink.latest.distinct;
    const killedAtS = (Date.now() - this.t0) / 1000;
    this.cpuGone += cpu - (this.cpuFrom[victim] as number);
    say(
      `scale, ${this.k} processes: SIGKILLed process ${victim + 1} at ${fmt(killedAtDelivered)} of ${fmt(n)} delivered (${fmt(killedAtS, 1)} s); restarting it on its spool`,
    );
    const again = await this.launch(victim, '-restart');
    this.ems[victim] = again;
    const r = await again.waitReady();
    this.cpuFrom[victim] = r.cpuS;
    return { killedAtDelivered, killedAtS, restartReadyS: (r.atMs - this.t0) / 1000 };
  }

  /** CPU seconds of all processes since ready, counting the killed one up to its death. */
  cpuSince(cpuNow: number[]): number {
    return this.cpuGone + cpuNow.reduce((a, c, i) => a + (c - (this.cpuFrom[i] as number)), 0);
  }

  async stop(): Promise<{ deliveredByProcess: number[]; exitCodes: Array<number | null> }> {
    const deliveredByProcess = await Promise.all(this.ems.map((em) => itemsDelivered(em.port)));
    for (const em of this.ems) this.notePeak(em);
    const exitCodes = (await Promise.all(this.ems.map((em) => em.stop()))).map((s) => s.code);
    return { deliveredByProcess, exitCodes };
  }
}

/** Resolves with the sink time when every event is there; on a timeout, with the time then and the events lost. */
async function untilDelivered(fleet: Fleet, label: string): Promise<{ doneAt: number; lost: number }> {
  const { sink } = fleet.env;
  const n = S.scaleEvents;
  try {
    const doneAt = await sink.until(n, S.e2eTimeoutS, (s) => {
      const secs = (Date.now() - fleet.t0) / 1000;
      progress.set({
        label: `scale ${label}`,
        done: s.distinct,
        total: n,
        unit: 'ev',
        detail: `${fmt(s.distinct / Math.max(0.001, secs))} ev/s  RSS sum ${fmt(fleet.rssSum())} MB`,
      });
    });
    return { doneAt, lost: 0 };
  } catch (error) {
    say(`scale, ${fleet.k} processes: ${(error as Error).message}`);
    return { doneAt: sink.latest.atMs, lost: n - sink.latest.distinct };
  }
}

/**
 * Settle: the consumer has nothing left to deliver or to be acked, and the sink has been quiet for
 * 1.5 s, so that late duplicates (redelivered messages a dead process had spooled) are counted.
 */
async function settle(
  env: ScaleEnv,
  durable: string,
  show: (ackPending: number) => void,
): Promise<{ consumerDrained: boolean; consumer: ReplicaSet }> {
  const { sink } = env;
  const jsm = await jetstreamManager(env.nc);
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
    show(info.num_ack_pending);
    await sleep(250);
  }
  return { consumerDrained, consumer };
}

export async function scaleRun(
  env: ScaleEnv,
  spoolParent: string,
  k: number,
  kill: boolean,
  oneProcessRate: number,
): Promise<ScaleRun> {
  const { sink } = env;
  const n = S.scaleEvents;
  const durable = `scale_${k}${kill ? '_kill' : ''}`;
  const label = `${k} proc${kill ? ' kill' : ''}`;
  await sink.reset();
  const trace: Array<{ atMs: number; delivered: number }> = [];
  const offTrace = sink.onStats((s) => trace.push({ atMs: s.atMs, delivered: s.distinct }));
  const fleet = new Fleet(env, spoolParent, k, durable);
  await fleet.start();
  const machineFrom = machineCpuTimes();
  const killer = kill ? fleet.killAndRestart() : Promise.resolve(undefined);
  const { doneAt, lost: lostAtDone } = await untilDelivered(fleet, label);
  const killed = await killer;
  const cpuS = fleet.cpuSince(fleet.ems.map((em) => cpuSeconds(em.pid) ?? NaN));
  const machineTo = machineCpuTimes();
  const settled = await settle(env, durable, (ackPending) =>
    progress.set({
      label: `scale ${label}`,
      done: n - lostAtDone,
      total: n,
      unit: 'ev',
      detail: `settling: ack pending ${fmt(ackPending)}, duplicates ${fmt(sink.latest.events - sink.latest.distinct)}`,
    }),
  );
  offTrace();
  const stats = sink.latest;
  const lost = n - stats.distinct;
  const stopped = await fleet.stop();
  const seconds = (doneAt - fleet.t0) / 1000;
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
    deliveredByProcess: stopped.deliveredByProcess,
    emittersCpuPct: (cpuS / seconds) * 100,
    machineBusyPct: machineBusyPct(machineFrom, machineTo),
    peakRssMB: Math.max(...fleet.peakRss),
    startSpreadS: fleet.startSpreadS,
    ...killed,
    ...settled,
    exitCodes: stopped.exitCodes,
  };
}
