/**
 * `npm run bench [-- --quick] [--no-profile] [--scale] [--only scale]`: a benchmark, not a test. One run on this machine,
 * same data everywhere (~300-byte JSON events, batch 1000, gzip, synced LevelDB spool, loopback sink):
 *
 *   1. raw limits: JetStream consume + explicit ack of every message in one Node process (and the
 *      same with JSON.parse); the sink's acceptance rate for pre-built gzip batches (undici pool of 4)
 *   2. the emitter end to end (publish -> JetStream -> batch -> spool -> ack -> POST -> delete) as a
 *      child process on N pre-published messages: events/s, MB/s, CPU s per 1M events, peak RSS
 *   3. publish -> delivered latency at 10,000 events/s offered, 1 s flush interval
 *   4. a sink outage (503) at 5,000 events/s offered, then recovery: RSS, spool growth, drain rate
 *   5. durability cost: the e2e run with the spool on tmpfs (/dev/shm) vs on disk
 *   6. a CPU profile of the emitter under the e2e load (node --cpu-prof), summarised
 *   7. scale-out (full run, `--scale`, or `--only scale`): on its own 3-node nats-server cluster on
 *      loopback, N events pre-published into a stream with 3 replicas, shared by 1, 2 and 3 emitter
 *      processes (given all three server URLs) on one durable consumer (a fresh one per run, R3 like
 *      the stream; one spool per process): aggregate events/s; then 3 again with one SIGKILLed at
 *      30 % and restarted: lost, duplicates
 *
 * Prints a table against the targets, writes bench-results/bench.json and bench-results/bench.svg.
 * Everything it starts (its own nats-server and cluster, the sink, emitters, temp dirs) is removed at the end.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AckPolicy, DeliverPolicy, StorageType, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { Pool } from 'undici';
import { GZIP_LEVEL } from '../src/spool/batch-codec.js';
import { consumerSettings } from '../src/ingress/jetstream-source.js';
import { atProcessEnd } from '../harness/cleanup.js';
import { copies, ensureReplicatedStream, replicaSet, type ReplicaSet } from '../harness/replicated.js';
import {
  freePort,
  startNats,
  startNatsCluster,
  type NatsClusterHandle,
  type NatsServerHandle,
} from '../harness/nats.js';
import { buildEmitter } from './bench/build.js';
import { formatProfile, summariseProfile, type ProfileSummary } from './bench/cpuprofile.js';
import { renderChart, type ChartPanel, type ChartPoint } from './bench/svg.js';
import {
  cpuSeconds,
  dirBytes,
  loadAverage,
  machineBusyPct,
  machineCpuTimes,
  machineInfo,
  memoryMB,
} from './bench/proc.js';
import { Progress } from './bench/progress.js';
import { EVENT_BYTES, eventBytes, gzipBatch } from './bench/payload.js';
import type { LatencyReport, SinkCommand, SinkMode, SinkReply, SinkStats } from './bench/sink.js';

// ---------------------------------------------------------------------------------------------
// settings

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const PROFILE = !argv.includes('--no-profile');
/** `--emitter <bin.js>`: run another build of the emitter (e.g. a patched copy, for a what-if) */
const EMITTER_ARG = argv.includes('--emitter') ? argv[argv.indexOf('--emitter') + 1] : undefined;
/** `--only <part>`: run just that part (and merge its figures into an existing bench.json) */
const PARTS = ['scale', 'latency', 'e2e'] as const;
const ONLY = argv.includes('--only') ? (argv[argv.indexOf('--only') + 1] ?? '') : undefined;
const USAGE =
  'usage: npm run bench [-- --quick] [--no-profile] [--scale] [--only scale|latency|e2e] [--emitter <path to bin.js>]\n' +
  '  --quick       shorter runs; leaves out the scale-out part unless --scale is given too\n' +
  '  --scale       include the scale-out part (1, 2, 3 emitter processes on one durable, 3-node cluster, R3 stream;\n' +
  '                in the full run by default)\n' +
  '  --only scale  run only the scale-out part; its figures replace "scale" in an existing bench-results/bench.json\n' +
  '  --only latency  run only the latency part (10,000/s and 2,000/s offered); replaces "latency" likewise\n' +
  '  --only e2e    raw consume + ack, then end to end with the spool on disk (compare builds with --emitter)\n';
if (argv.includes('--help')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (ONLY !== undefined && !(PARTS as readonly string[]).includes(ONLY)) {
  process.stderr.write(`--only: unknown part ${JSON.stringify(ONLY)} (parts: ${PARTS.join(', ')})\n${USAGE}`);
  process.exit(2);
}
/** the scale-out part: in the full run, with --scale, or with --only scale */
const SCALE = ONLY === 'scale' || argv.includes('--scale') || (!QUICK && ONLY === undefined);

const S = {
  events: QUICK ? 50_000 : 1_000_000,
  batchSize: 1000,
  intervalS: 1,
  concurrency: 4,
  sinkLimitS: QUICK ? 3 : 6,
  latencyRate: 10_000,
  latencyS: QUICK ? 10 : 20,
  latencyWarmS: 2,
  outageRate: 5_000,
  outageWarmS: QUICK ? 8 : 15,
  /** a supplementary latency run below the saturation point */
  lowLatencyRate: 2_000,
  lowLatencyS: QUICK ? 8 : 15,
  /** the e2e experiment with a pre-created consumer allowing more unacknowledged messages */
  bigAckPending: 8 * 1000,
  outageS: QUICK ? 15 : 60,
  outageRecoveryMaxS: QUICK ? 60 : 120,
  e2eTimeoutS: 600,
  /** scale-out: events pre-published into their own stream, shared by 1, 2, 3 emitter processes */
  scaleEvents: QUICK ? 60_000 : 200_000,
  /** scale-out: nats-server cluster nodes on loopback, and the replicas of the SCALE stream */
  scaleClusterNodes: 3,
  scaleStreamReplicas: 3,
  scaleProcesses: [1, 2, 3],
  /** in the 3-process run one process is SIGKILLed when this share of the events is delivered */
  scaleKillAt: 0.3,
  /**
   * ack_wait of the scale-out consumers (TRANSMITTER_NATS_ACK_WAIT_S; default 2 x interval + 60 s),
   * so that the killed process's unacked messages are redelivered within the run
   */
  scaleAckWaitS: 10,
};

const REPO = fileURLToPath(new URL('..', import.meta.url));
const OUT_DIR = join(REPO, 'bench-results');
const HERE = fileURLToPath(new URL('./bench/', import.meta.url));
const progress = new Progress();
const say = (line = '') => progress.log(line);
const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// cleanup: children are killed and temp dirs removed however the run ends

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];
atProcessEnd(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(parent: string, prefix: string): string {
  const dir = mkdtempSync(join(parent, prefix));
  tempDirs.push(dir);
  return dir;
}

/** `nats-server --version` ("nats-server: v2.9.10") as the server logs it ("2.9.10") */
function natsServerVersion(): string {
  try {
    const out = execFileSync('nats-server', ['--version'], { encoding: 'utf8', timeout: 5000 });
    return /v?(\d+\.\d+\.\S+)/.exec(out)?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once('exit', (code) => r(code)));
}

// ---------------------------------------------------------------------------------------------
// the sink (its own process)

type SinkCommandBody = SinkCommand extends infer C ? (C extends unknown ? Omit<C, 'id'> : never) : never;

class Sink {
  latest: SinkStats & { atMs: number } = {
    events: 0,
    distinct: 0,
    batches: 0,
    duplicateBatches: 0,
    refused: 0,
    wireBytes: 0,
    badBodies: 0,
    atMs: 0,
  };
  private nextId = 1;
  private readonly waiting = new Map<number, (r: LatencyReport | undefined) => void>();
  private readonly listeners = new Set<(s: Sink['latest']) => void>();

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {
    child.on('message', (m: SinkReply) => {
      if (m.type === 'stats') {
        this.latest = { ...m.stats, atMs: m.atMs };
        for (const l of this.listeners) l(this.latest);
      } else if (m.type === 'done') {
        this.waiting.get(m.id)?.(m.report);
        this.waiting.delete(m.id);
      }
    });
  }

  /** the sink process (its CPU shares the machine with the emitter) */
  get pid(): number | undefined {
    return this.child.pid;
  }

  static async start(): Promise<Sink> {
    const child = fork(join(HERE, 'sink.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.add(child);
    const port = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`sink exited (${code}) before listening`)));
      child.on('message', (m: SinkReply) => {
        if (m.type === 'listening') resolve(m.port);
      });
    });
    return new Sink(child, `http://127.0.0.1:${port}/ingest`);
  }

  private request(cmd: SinkCommandBody): Promise<LatencyReport | undefined> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.send({ ...cmd, id });
    });
  }

  /** Clear the counters; resolves once a fresh stats message has arrived. */
  async reset(): Promise<void> {
    await this.request({ cmd: 'reset' });
    await this.nextStats();
  }

  async mode(mode: SinkMode): Promise<void> {
    await this.request({ cmd: 'mode', mode });
  }

  async recordLatencyFrom(fromMs: number): Promise<void> {
    await this.request({ cmd: 'latency', fromMs });
  }

  async latencyReport(): Promise<LatencyReport> {
    return (await this.request({ cmd: 'latency-report' })) as LatencyReport;
  }

  onStats(listener: (s: Sink['latest']) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  nextStats(): Promise<Sink['latest']> {
    return new Promise((resolve) => {
      const off = this.onStats((s) => {
        off();
        resolve(s);
      });
    });
  }

  /** Resolves with the sink's clock time when `distinct` reaches `target`, or rejects after `timeoutS`. */
  until(target: number, timeoutS: number, onTick?: (s: Sink['latest']) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`sink has ${this.latest.distinct} of ${target} events after ${timeoutS} s`));
      }, timeoutS * 1000);
      const check = (s: Sink['latest']) => {
        onTick?.(s);
        if (s.distinct < target) return;
        clearTimeout(timer);
        off();
        resolve(s.atMs);
      };
      const off = this.onStats(check);
    });
  }

  async close(): Promise<void> {
    await Promise.race([this.request({ cmd: 'exit' }), sleep(1000)]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    await exited(this.child);
  }
}

// ---------------------------------------------------------------------------------------------
// the emitter under test (a child process)

interface EmitterRun {
  pid: number;
  port: number;
  logPath: string;
  waitReady(): Promise<{ atMs: number; cpuS: number }>;
  stop(): Promise<{ code: number | null; atMs: number }>;
  /** SIGKILL: no shutdown, no flush; resolves when the process is gone */
  kill(): Promise<void>;
}

const DIST_BIN = join(REPO, 'dist', 'src', 'bin.js');
let builtBin: string | undefined;

/**
 * dist/ when it is there; else a private esbuild copy of src/ (bench-results/build, one JS file per
 * TS file, so the CPU profile has real line numbers; tsx's output is one line per module); else tsx.
 */
function emitterCommand(): { args: string[]; what: string } {
  if (EMITTER_ARG) return { args: [EMITTER_ARG, 'run'], what: `node ${EMITTER_ARG} run (--emitter)` };
  try {
    statSync(DIST_BIN);
    return { args: [DIST_BIN, 'run'], what: 'node dist/src/bin.js run' };
  } catch {
    if (builtBin)
      return { args: [builtBin, 'run'], what: 'node bench-results/build/src/bin.js run (esbuild of src/)' };
    return {
      args: ['--import', 'tsx', join(REPO, 'src', 'bin.ts'), 'run'],
      what: 'node --import tsx src/bin.ts run',
    };
  }
}

async function startEmitter(opts: {
  label: string;
  nats: string;
  sinkUrl: string;
  stream: string;
  subjects: string;
  durable: string;
  spoolDir: string;
  logDir: string;
  env?: Record<string, string>;
  cpuProfDir?: string;
}): Promise<EmitterRun> {
  const port = await freePort();
  const env: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TRANSMITTER_')) env[k] = v;
  Object.assign(env, {
    TRANSMITTER_SERVER_HOST: '127.0.0.1',
    TRANSMITTER_SERVER_PORT: String(port),
    TRANSMITTER_NATS_URL: opts.nats,
    TRANSMITTER_NATS_STREAM: opts.stream,
    TRANSMITTER_NATS_SUBJECTS: opts.subjects,
    TRANSMITTER_NATS_DURABLE: opts.durable,
    TRANSMITTER_DESTINATION_URL: opts.sinkUrl,
    TRANSMITTER_ALLOW_INSECURE_HTTP: 'true',
    TRANSMITTER_COMPRESSION: 'gzip',
    TRANSMITTER_BATCH_SIZE: String(S.batchSize),
    TRANSMITTER_BATCH_INTERVAL_S: String(S.intervalS),
    TRANSMITTER_CONCURRENCY: String(S.concurrency),
    TRANSMITTER_SPOOL_DIR: opts.spoolDir,
    TRANSMITTER_LOG_LEVEL: 'warn',
    TRANSMITTER_PROBE_ID: 'bench-probe',
    TRANSMITTER_RUN_ID: 'bench-run',
    TRANSMITTER_SHUTDOWN_TIMEOUT_S: '5',
    ...opts.env,
  });
  const logPath = join(opts.logDir, `emitter-${opts.label}.log`);
  const logFd = openSync(logPath, 'a');
  const prof = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : [];
  const child = spawn(process.execPath, [...prof, ...emitterCommand().args], {
    cwd: REPO,
    env,
    stdio: ['ignore', logFd, logFd],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const pid = child.pid as number;
  const logTail = () => readFileSync(logPath, 'utf8').trim().split('\n').slice(-15).join('\n');
  return {
    pid,
    port,
    logPath,
    async waitReady() {
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`emitter exited (${child.exitCode}):\n${logTail()}`);
        try {
          const res = await fetch(`http://127.0.0.1:${port}/ready`);
          await res.arrayBuffer();
          if (res.status === 200) return { atMs: Date.now(), cpuS: cpuSeconds(pid) ?? NaN };
        } catch {
          // not listening yet
        }
        await sleep(20);
      }
      throw new Error(`emitter not ready within 60 s:\n${logTail()}`);
    },
    async stop() {
      const gone = exited(child);
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await gone;
      clearTimeout(force);
      return { code, atMs: Date.now() };
    },
    async kill() {
      const gone = exited(child);
      child.kill('SIGKILL');
      await gone;
    },
  };
}

interface Sample {
  t: number;
  atMs: number;
  delivered: number;
  rssMB: number;
  cpuS: number;
  spoolMB: number;
  /** V8 heap used (from the emitter's /metrics, when asked for) */
  heapMB?: number;
}

async function heapUsedMB(port: number): Promise<number | undefined> {
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
function sampler(pid: number, spoolDir: string, sink: Sink, t0: number, metricsPort?: number) {
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
function steadyRate(samples: Sample[], total: number, doneAtMs: number): number {
  const from = samples.find((s) => s.delivered >= 0.2 * total);
  if (!from || doneAtMs <= from.atMs) return NaN;
  return (total - from.delivered) / ((doneAtMs - from.atMs) / 1000);
}

/** Delivered events/s over a sliding 1 s window, for the chart. */
function chartPoints(samples: Sample[], withSpool = false): ChartPoint[] {
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

// ---------------------------------------------------------------------------------------------
// NATS helpers

async function ensureStream(nc: NatsConnection, name: string, subjects: string[]): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects, storage: StorageType.File });
}

async function streamCount(nc: NatsConnection, name: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  return (await jsm.streams.info(name)).state.messages;
}

/** JetStream publish with a window of 1000 outstanding acks. */
async function prepublish(nc: NatsConnection, subject: string, n: number): Promise<{ seconds: number }> {
  const js = jetstream(nc);
  const started = performance.now();
  const WINDOW = 1000;
  for (let i = 0; i < n; i += WINDOW) {
    const acks: Promise<unknown>[] = [];
    for (let k = i; k < Math.min(n, i + WINDOW); k++)
      acks.push(js.publish(subject, eventBytes(k, Date.now())));
    await Promise.all(acks);
    progress.set({ phase: 'publish', done: Math.min(n, i + WINDOW), total: n, unit: 'msgs' });
  }
  return { seconds: (performance.now() - started) / 1000 };
}

/**
 * Core-NATS publish at a fixed offered rate (the stream captures the subject) until stop();
 * `sent` counts what was published. Each event carries its publish time in `t`.
 */
function pacedPublisher(nc: NatsConnection, subject: string, rate: number) {
  const state = { sent: 0, stopped: false };
  const started = performance.now();
  const done = (async () => {
    while (!state.stopped) {
      const target = Math.floor(((performance.now() - started) / 1000) * rate);
      while (state.sent < target) {
        nc.publish(subject, eventBytes(state.sent, Date.now()));
        state.sent += 1;
      }
      await sleep(2);
    }
    await nc.flush();
  })();
  return {
    state,
    async stop() {
      state.stopped = true;
      await done;
      return state.sent;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// 1. raw limits

interface RawResult {
  eventsPerS: number;
  seconds: number;
  cpuSPerM: number;
}

async function rawConsume(
  natsUrl: string,
  stream: string,
  durable: string,
  n: number,
  parse: boolean,
): Promise<RawResult> {
  const nc = await connect({ servers: natsUrl, name: `bench-${durable}` });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.add(stream, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(60_000),
      max_ack_pending: Math.max(2 * S.batchSize, 1000), // as the emitter's consumer
    });
    const consumer = await jetstream(nc).consumers.get(stream, durable);
    const messages = await consumer.consume({ max_messages: Math.min(1000, S.batchSize) });
    const utf8 = new TextDecoder('utf-8', { fatal: true });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let k = 0;
    let sink = 0;
    const label = parse ? 'raw+parse' : 'raw ack';
    for await (const m of messages) {
      if (parse) sink += (JSON.parse(utf8.decode(m.data)) as { i: number }).i;
      m.ack();
      if (++k % 5000 === 0) progress.set({ phase: label, done: k, total: n, unit: 'msgs' });
      if (k >= n) break;
    }
    await nc.flush();
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    await messages.close();
    if (sink < 0) say('impossible'); // keep the parse from being optimised away
    return { eventsPerS: n / seconds, seconds, cpuSPerM: ((cpu.user + cpu.system) / 1e6 / n) * 1e6 };
  } finally {
    await nc.close();
  }
}

interface SinkLimitResult {
  batchesPerS: number;
  eventsPerS: number;
  wireMBps: number;
  batchBytes: number;
  statuses: Record<string, number>;
}

async function sinkLimit(sink: Sink, seconds: number): Promise<SinkLimitResult> {
  const bodies = Array.from({ length: 16 }, (_, k) =>
    gzipBatch(`limit-${k}`, k * S.batchSize + 1, S.batchSize, GZIP_LEVEL),
  );
  const url = new URL(sink.url);
  const pool = new Pool(url.origin, { connections: 4, pipelining: 1 });
  await sink.reset();
  const statuses: Record<string, number> = {};
  let n = 0;
  let bytes = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const body = bodies[n % bodies.length] as Buffer;
      const key = `limit-${n++}`;
      const res = await pool.request({
        path: url.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'idempotency-key': key },
        body,
      });
      await res.body.dump();
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      bytes += body.length;
      progress.set({
        phase: 'sink limit',
        done: performance.now() - started,
        total: seconds * 1000,
        unit: 'ms',
      });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const elapsed = (performance.now() - started) / 1000;
  await pool.close();
  const ok = statuses['200'] ?? 0;
  return {
    batchesPerS: ok / elapsed,
    eventsPerS: (ok * S.batchSize) / elapsed,
    wireMBps: bytes / 1e6 / elapsed,
    batchBytes: Math.round(bodies.reduce((a, b) => a + b.length, 0) / bodies.length),
    statuses,
  };
}

// ---------------------------------------------------------------------------------------------
// 2 + 5 (+ 6). end to end on pre-published messages

interface E2EResult {
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
  cpuPct: number;
  /** the loopback sink's CPU (gunzip, JSON.parse, counting) over the same run: it shares the cores */
  sinkCpuSPerM: number;
  peakRssMB: number;
  duplicates: number;
  exitCode: number | null;
  samples: Sample[];
  profile?: ProfileSummary;
}

interface Env {
  nats: NatsServerHandle;
  sink: Sink;
  logDir: string;
}

async function e2e(
  env: Env,
  label: string,
  durable: string,
  spoolParent: string,
  opts: { cpuProfDir?: string; maxAckPending?: number } = {},
): Promise<E2EResult> {
  const { sink } = env;
  const { cpuProfDir } = opts;
  await sink.reset();
  if (opts.maxAckPending) {
    // the emitter keeps an existing consumer whose ack_wait matches and whose max_ack_pending is larger
    const nc = await connect({ servers: env.nats.url });
    const { ackWaitMs } = consumerSettings(S.batchSize, S.intervalS * 1000);
    await (
      await jetstreamManager(nc)
    ).consumers.add('APPROVED', {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(ackWaitMs),
      max_ack_pending: opts.maxAckPending,
    });
    await nc.close();
  }
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
  });
  const ready = await em.waitReady();
  const sinkCpuFrom = sink.pid === undefined ? NaN : (cpuSeconds(sink.pid) ?? NaN);
  const sampling = sampler(em.pid, spoolDir, sink, ready.atMs);
  const doneAt = await sink.until(S.events, S.e2eTimeoutS, (s) => {
    const secs = (Date.now() - ready.atMs) / 1000;
    const mem = memoryMB(em.pid);
    progress.set({
      phase: `e2e ${label}`,
      done: s.distinct,
      total: S.events,
      unit: 'ev',
      detail: `${fmt(s.distinct / Math.max(0.001, secs))} ev/s  RSS ${fmt(mem?.rss ?? NaN)} MB`,
    });
  });
  const cpuDone = cpuSeconds(em.pid) ?? NaN;
  const sinkCpuDone = sink.pid === undefined ? NaN : (cpuSeconds(sink.pid) ?? NaN);
  const mem = memoryMB(em.pid);
  const stats = sink.latest;
  const samples = sampling.stop();
  const stopped = await em.stop();
  const seconds = (doneAt - ready.atMs) / 1000;
  let profile: ProfileSummary | undefined;
  if (cpuProfDir) {
    const files = readdirSync(cpuProfDir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => ({ f, size: statSync(join(cpuProfDir, f)).size }))
      .sort((a, b) => b.size - a.size);
    const main = files[0];
    if (main) {
      const kept = join(OUT_DIR, 'emitter-e2e.cpuprofile');
      copyFileSync(join(cpuProfDir, main.f), kept);
      // only the samples between "ready" and "sink has everything", counted back from the exit
      profile = summariseProfile(kept, 25, {
        fromEndMs: stopped.atMs - ready.atMs,
        toEndMs: stopped.atMs - doneAt,
      });
    }
  }
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
    cpuPct: ((cpuDone - ready.cpuS) / seconds) * 100,
    sinkCpuSPerM: ((sinkCpuDone - sinkCpuFrom) / S.events) * 1e6,
    peakRssMB: mem?.hwm ?? NaN,
    duplicates: stats.events - stats.distinct,
    exitCode: stopped.code,
    samples,
    profile,
  };
}

// ---------------------------------------------------------------------------------------------
// 3. latency at a fixed offered rate

interface LatencyResult extends LatencyReport {
  offeredRate: number;
  seconds: number;
  published: number;
  /** events/s delivered while publishing: below the offered rate means the emitter could not keep up */
  deliveredRate: number;
  cpuPct: number;
  peakRssMB: number;
  samples: Sample[];
}

async function latency(
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
      phase: `latency ${fmt(rate / 1000)}k/s`,
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

// ---------------------------------------------------------------------------------------------
// 4. outage and recovery

interface OutageResult {
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

async function outage(env: Env, nc: NatsConnection, spoolParent: string): Promise<OutageResult> {
  const { sink } = env;
  await ensureStream(nc, 'OUTAGE', ['out.>']);
  await sink.reset();
  const spoolDir = join(tempDir(spoolParent, 'bench-spool-outage-'), 'spool');
  // fast retries and a short breaker reset, so that recovery is noticed within ~2 s
  const retryEnv = {
    TRANSMITTER_RETRY_INITIAL_DELAY_S: '0.5',
    TRANSMITTER_RETRY_MAX_DELAY_S: '2',
    TRANSMITTER_RETRY_MAX_ATTEMPTS: '1000',
    TRANSMITTER_CIRCUIT_RESET_TIMEOUT_S: '2',
  };
  const em = await startEmitter({
    label: 'outage',
    nats: env.nats.url,
    sinkUrl: sink.url,
    stream: 'OUTAGE',
    subjects: 'out.>',
    durable: 'outage',
    spoolDir,
    logDir: env.logDir,
    env: retryEnv,
  });
  const ready = await em.waitReady();
  const sampling = sampler(em.pid, spoolDir, sink, ready.atMs, em.port);
  const pub = pacedPublisher(nc, 'out.bench', S.outageRate);
  // (sink time, delivered, published) at each sink stats message
  const trace: Array<{ atMs: number; delivered: number; published: number }> = [];
  const off = sink.onStats((s) =>
    trace.push({ atMs: s.atMs, delivered: s.distinct, published: pub.state.sent }),
  );
  const show = (phase: string, done: number, total: number) =>
    progress.set({
      phase,
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
  // caught up: the lag is back under two batches
  let caughtAt: number | undefined;
  const recDeadline = recAt + S.outageRecoveryMaxS * 1000;
  while (Date.now() < recDeadline) {
    const last = trace[trace.length - 1];
    if (last && last.atMs > recAt && last.published - last.delivered <= 2 * S.batchSize) {
      caughtAt = last.atMs;
      break;
    }
    show('outage: drain', (Date.now() - recAt) / 1000, S.outageRecoveryMaxS);
    await sleep(50);
  }
  await phase('outage: after', 3);
  const published = await pub.stop();
  const inStream = await streamCount(nc, 'OUTAGE');
  await sink.until(Math.min(published, inStream), 60);
  off();
  const mem = memoryMB(em.pid);
  const samples = sampling.stop();
  const duplicates = sink.latest.events - sink.latest.distinct;
  await em.stop();

  const during = samples.filter((s) => s.atMs >= outFrom && s.atMs <= recAt);
  const first = during[0] ?? (samples[0] as Sample);
  const lastOut = during[during.length - 1] ?? first;
  const rss = during.map((s) => s.rssMB);
  const firstDelivery = trace.find((p) => p.atMs > recAt && p.delivered > deliveredAtRec);
  const caught = caughtAt === undefined ? undefined : trace.find((p) => p.atMs === caughtAt);
  const drainSecs = firstDelivery && caught ? (caught.atMs - firstDelivery.atMs) / 1000 : NaN;
  const third = Math.max(1, Math.floor(during.length / 3));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const heaps = during.flatMap((s) => (s.heapMB === undefined ? [] : [s.heapMB]));
  return {
    offeredRate: S.outageRate,
    heapAtOutageStartMB: heaps[0],
    heapMaxMB: heaps.length > 0 ? Math.max(...heaps) : undefined,
    rssLateOverEarly: mean(rss.slice(-third)) / mean(rss.slice(0, third)),
    outageS: S.outageS,
    retryEnv,
    rssAtOutageStartMB: first.rssMB,
    rssMinMB: Math.min(...rss),
    rssMaxMB: Math.max(...rss),
    rssAtOutageEndMB: lastOut.rssMB,
    rssGrowthPct: ((Math.max(...rss) - first.rssMB) / first.rssMB) * 100,
    spoolAtOutageStartMB: first.spoolMB,
    spoolAtOutageEndMB: lastOut.spoolMB,
    spoolGrowthMBperMin: ((lastOut.spoolMB - first.spoolMB) / Math.max(1, lastOut.t - first.t)) * 60,
    backlogAtRecovery: publishedAtRec - deliveredAtRec,
    firstDeliveryAfterRecoveryS: firstDelivery ? (firstDelivery.atMs - recAt) / 1000 : NaN,
    catchUpS: caught ? (caught.atMs - recAt) / 1000 : NaN,
    drainRate:
      firstDelivery && caught && drainSecs > 0 ? (caught.delivered - deliveredAtRec) / drainSecs : NaN,
    peakRssMB: mem?.hwm ?? NaN,
    published,
    duplicates,
    samples,
    outageFromS: (outFrom - ready.atMs) / 1000,
    outageToS: (recAt - ready.atMs) / 1000,
  };
}

// ---------------------------------------------------------------------------------------------
// 7. scale-out: 1, 2, 3 emitter processes sharing one durable consumer, on a 3-node cluster

interface ScaleEnv {
  sink: Sink;
  logDir: string;
  cluster: NatsClusterHandle;
  /** connected to every node of the cluster */
  nc: NatsConnection;
}

interface ScaleRun {
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

async function itemsDelivered(port: number): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = /^batch_emitter_items_delivered_total\s+(\S+)/m.exec(text);
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

async function scaleRun(
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
        phase: `scale ${label}`,
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
      phase: `scale ${label}`,
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

/** where the scale-out part ran (bench.json "scale".topology) */
interface ScaleTopology {
  description: string;
  natsServer: string;
  /** nats-server processes on loopback, clustered with routes */
  clusterNodes: number;
  /** their server names */
  servers: string[];
  stream: string;
  /** num_replicas of the stream (its durables inherit it) */
  streamReplicas: number;
  /** the stream's RAFT group once created, before publishing */
  streamAtStart: ReplicaSet;
  /** the stream's RAFT group after the last run */
  streamAtEnd?: ReplicaSet;
  /** how many server URLs each emitter got in TRANSMITTER_NATS_URL */
  emitterNatsUrls: number;
}

interface ScaleResult {
  topology: ScaleTopology;
  events: number;
  ackWaitS: number;
  prepublishS: number;
  runs: ScaleRun[];
  note: string;
}

/**
 * Starts its own cluster (S.scaleClusterNodes nats-servers on loopback) and stream SCALE with
 * S.scaleStreamReplicas replicas, pre-publishes S.scaleEvents events, runs 1, 2, 3 processes and then
 * 3 with one killed, and stops the cluster.
 */
async function scaleOut(
  sink: Sink,
  logDir: string,
  spoolParent: string,
  nproc: number,
): Promise<ScaleResult> {
  const nodes = S.scaleClusterNodes;
  const replicas = S.scaleStreamReplicas;
  const cluster = await startNatsCluster(nodes, { name: 'bench' });
  const natsVersion = /Version:\s+(\S+)/.exec(cluster.nodes[0]?.logs() ?? '')?.[1] ?? 'unknown';
  const nc = await connect({
    servers: cluster.nodes.map((node) => node.url),
    name: 'bench-scale-publisher',
    noAsyncTraces: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 200,
  });
  try {
    const streamAtStart = await ensureReplicatedStream(nc, 'SCALE', ['scale.>'], replicas);
    const topology: ScaleTopology = {
      description:
        `${nodes}-node nats-server cluster on loopback, stream SCALE R${replicas}, ` +
        `durables R${replicas} (inherited; created by the emitters as they start), ` +
        `each emitter given all ${nodes} server URLs`,
      natsServer: natsVersion,
      clusterNodes: nodes,
      servers: cluster.names,
      stream: 'SCALE',
      streamReplicas: replicas,
      streamAtStart,
      emitterNatsUrls: cluster.nodes.length,
    };
    say(
      `scale: ${topology.description}; stream leader ${streamAtStart.leader}, ` +
        `${streamAtStart.current} of ${streamAtStart.replicas.length} followers current`,
    );
    const pub = await prepublish(nc, 'scale.bench', S.scaleEvents);
    say(
      `scale: pre-published ${fmt(S.scaleEvents)} messages into stream SCALE (R${replicas}) in ${pub.seconds.toFixed(1)} s; ` +
        `each run: a fresh durable shared by its processes, one spool each, ack_wait ${S.scaleAckWaitS} s`,
    );
    const env: ScaleEnv = { sink, logDir, cluster, nc };
    const runs: ScaleRun[] = [];
    const last = S.scaleProcesses[S.scaleProcesses.length - 1] as number;
    // k = 1, 2, 3 undisturbed, then k = 3 again with one process SIGKILLed and restarted
    const plan = [...S.scaleProcesses.map((k) => ({ k, kill: false })), { k: last, kill: true }];
    for (const { k, kill } of plan) {
      const one = runs[0]?.eventsPerS ?? 0;
      const run = await scaleRun(env, spoolParent, k, kill, one);
      runs.push(run);
      say(
        `scale, ${k} process${k > 1 ? 'es' : ''}${run.killed ? ' (one SIGKILLed + restarted)' : ''}: ` +
          `${fmt(run.eventsPerS)} ev/s (${run.xOfOne.toFixed(2)} x), lost ${fmt(run.lost)}, duplicates ${fmt(run.duplicates)}`,
      );
    }
    const after = await (await jetstreamManager(nc)).streams.info('SCALE').catch(() => undefined);
    if (after) topology.streamAtEnd = replicaSet(after.cluster);
    return {
      topology,
      events: S.scaleEvents,
      ackWaitS: S.scaleAckWaitS,
      prepublishS: pub.seconds,
      runs,
      note:
        `${nproc} cores: ${last} emitter processes (plus ${nodes} nats-servers, the sink and this script) on ${nproc} cores ` +
        `cannot scale linearly; the figures show how the stream is divided, not what ${last} machines would do`,
    };
  } finally {
    await nc.close().catch(() => undefined);
    await cluster.stop();
  }
}

function scaleTable(r: ScaleResult): string {
  const head = [
    'processes',
    'events/s aggregate',
    'after 20%',
    'x of 1 process',
    'emitters CPU',
    'machine busy',
    'lost',
    'duplicates',
  ];
  const body = r.runs.map((x) => [
    `${x.processes}${x.killed ? ' (1 SIGKILLed at 30%, restarted)' : ''}`,
    fmt(x.eventsPerS),
    fmt(x.steadyEventsPerS),
    `${x.xOfOne.toFixed(2)} x`,
    `${fmt(x.emittersCpuPct)}%`,
    `${fmt(x.machineBusyPct)}%`,
    fmt(x.lost),
    `${fmt(x.duplicates)}${x.duplicateBatches > 0 ? ` (+${fmt(x.duplicateBatches)} batch re-sent)` : ''}`,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(w[i] as number) : c.padStart(w[i] as number))).join(' | ')} |`;
  const lines = [line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...body.map(line)];
  const detail = r.runs.map(
    (x) =>
      `  ${x.processes}${x.killed ? ' (kill)' : ''}: ${fmt(x.seconds, 1)} s, delivered per process ${x.deliveredByProcess.map((d) => fmt(d)).join(' / ')}` +
      `${x.killed ? ' (the killed one: after its restart)' : ''}, start spread ${fmt(x.startSpreadS, 2)} s, ` +
      `peak RSS ${fmt(x.peakRssMB)} MB, consumer drained ${x.consumerDrained ? 'yes' : 'NO'} ` +
      `(R${copies(x.consumer)}, leader ${x.consumer.leader || 'none'}), ` +
      `exit codes ${x.exitCodes.join(',')}` +
      (x.killed
        ? `; killed at ${fmt(x.killedAtDelivered ?? NaN)} delivered (${fmt(x.killedAtS ?? NaN, 1)} s), restart ready at ${fmt(x.restartReadyS ?? NaN, 1)} s`
        : ''),
  );
  const t = r.topology;
  const stream = (x: ReplicaSet | undefined) =>
    x ? `leader ${x.leader || 'none'}, ${x.current} of ${x.replicas.length} followers current` : '?';
  return [
    `scale-out: ${fmt(r.events)} pre-published events, one durable consumer shared by the processes of a run, ` +
      `one spool each; events/s from the first process ready until the sink holds all ${fmt(r.events)}`,
    `topology: ${t.description} (nats-server ${t.natsServer}, servers ${t.servers.join(', ')}); ` +
      `stream at start: ${stream(t.streamAtStart)}; at the end: ${stream(t.streamAtEnd)}`,
    ...lines,
    ...detail,
    '  duplicates: event rows received twice in different batches; "batch re-sent": a batch posted again with ' +
      'an idempotency-key already seen (its rows are not counted again). emitters CPU: % of one core, summed; ' +
      'machine busy: % of all cores.',
    `note: ${r.note}; the killed run includes waiting for ack_wait (${r.ackWaitS} s) before the killed process's unacked messages are redelivered`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// report

interface Row {
  measure: string;
  value: string;
  target?: string;
  ok?: boolean;
}

function table(rows: Row[]): string {
  const w0 = Math.max(...rows.map((r) => r.measure.length), 7);
  const w1 = Math.max(...rows.map((r) => r.value.length), 5);
  const w2 = Math.max(...rows.map((r) => (r.target ?? '').length), 6);
  const line = (a: string, b: string, c: string, d: string) =>
    `| ${a.padEnd(w0)} | ${b.padStart(w1)} | ${c.padEnd(w2)} | ${d.padEnd(4)} |`;
  return [
    line('measure', 'value', 'target', 'ok'),
    `|${'-'.repeat(w0 + 2)}|${'-'.repeat(w1 + 2)}|${'-'.repeat(w2 + 2)}|------|`,
    ...rows.map((r) =>
      line(r.measure, r.value, r.target ?? '', r.ok === undefined ? '' : r.ok ? 'yes' : 'NO'),
    ),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// main

/** a run's figures for bench.json: samples without their wall-clock times */
function strip<T extends { samples: Sample[] }>(r: T) {
  return { ...r, samples: r.samples.map(({ atMs: _a, ...s }) => s) };
}

/** --only: keep the other parts of an earlier run's bench.json and replace only `part`. */
function mergePart(part: string, figures: Record<string, unknown>): void {
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

async function main(): Promise<number> {
  mkdirSync(OUT_DIR, { recursive: true });
  builtBin = await buildEmitter(REPO, join(OUT_DIR, 'build'));
  const loadStart = loadAverage();
  const root = tempDir(tmpdir(), 'batch-emitter-bench-');
  const shmParent = tempDir('/dev/shm', 'batch-emitter-bench-');
  const logDir = join(root, 'logs');
  mkdirSync(logDir);
  // --only scale needs no single server: the scale-out part starts its own cluster
  const nats = ONLY === 'scale' ? undefined : await startNats({ readyTimeoutMs: 10_000 });
  const natsVersion = nats ? (/Version:\s+(\S+)/.exec(nats.logs())?.[1] ?? 'unknown') : natsServerVersion();
  const machine = machineInfo(natsVersion, root);
  if (ONLY !== undefined)
    say(`batch-emitter bench${QUICK ? ' --quick' : ''} --only ${ONLY}; emitter: ${emitterCommand().what}`);
  else
    say(
      `batch-emitter bench${QUICK ? ' --quick' : ''}: ${fmt(S.events)} events of ~${EVENT_BYTES} B, batch ${S.batchSize}, gzip ${GZIP_LEVEL}, ` +
        `concurrency ${S.concurrency}, synced LevelDB spool, loopback sink; emitter: ${emitterCommand().what}`,
    );
  say(
    `machine: ${machine.nproc} x ${machine.model}, ${machine.memGB} GB, Linux ${machine.kernel}, Node ${machine.node}, nats-server ${natsVersion}; ` +
      `load average at start ${loadStart.map((v) => v.toFixed(2)).join(' ')}`,
  );
  const sink = await Sink.start();
  if (nats === undefined) {
    // --only scale
    const scale = await scaleOut(sink, logDir, root, machine.nproc);
    progress.stop();
    await sink.close();
    const loadEnd = loadAverage();
    process.stdout.write(`\n${scaleTable(scale)}\n`);
    process.stdout.write(
      `load average: start ${loadStart.map((v) => v.toFixed(2)).join(' ')}, end ${loadEnd.map((v) => v.toFixed(2)).join(' ')} ` +
        `(${machine.nproc} cores; other work on the machine skews every figure)\n`,
    );
    mergePart('scale', { ...scale, machine, loadAverage: { start: loadStart, end: loadEnd } });
    return 0;
  }
  const env: Env = { nats, sink, logDir };
  const nc = await connect({ servers: nats.url, name: 'bench-publisher', noAsyncTraces: true });
  if (ONLY === 'e2e') {
    await ensureStream(nc, 'APPROVED', ['approved.>']);
    await prepublish(nc, 'approved.bench', S.events);
    const raw = await rawConsume(nats.url, 'APPROVED', 'raw_ack', S.events, false);
    const disk = await e2e(env, 'disk', 'e2e_disk', root);
    progress.stop();
    await nc.close();
    await sink.close();
    await nats.stop();
    const loadEnd = loadAverage();
    process.stdout.write(
      `raw consume + ack: ${fmt(raw.eventsPerS)} ev/s (${fmt(raw.cpuSPerM, 1)} CPU s/1M)\n` +
        `end to end, spool on disk: ${fmt(disk.eventsPerS)} ev/s, ${fmt(disk.steadyEventsPerS)} after 20%; ` +
        `${fmt(disk.cpuSPerM, 1)} CPU s/1M (the sink: ${fmt(disk.sinkCpuSPerM, 1)}); peak RSS ${fmt(disk.peakRssMB)} MB\n` +
        `end to end / raw: ${(disk.eventsPerS / raw.eventsPerS).toFixed(2)} x (after 20%: ` +
        `${(disk.steadyEventsPerS / raw.eventsPerS).toFixed(2)} x)\n` +
        `load average: start ${loadStart.map((v) => v.toFixed(2)).join(' ')}, end ${loadEnd.map((v) => v.toFixed(2)).join(' ')}\n`,
    );
    mergePart('e2eDisk', { ...strip(disk), raw, machine, loadAverage: { start: loadStart, end: loadEnd } });
    return 0;
  }
  if (ONLY === 'latency') {
    const lat = await latency(env, nc, root, S.latencyRate, S.latencyS, 'lat');
    const low = await latency(env, nc, root, S.lowLatencyRate, S.lowLatencyS, 'low');
    progress.stop();
    await nc.close();
    await sink.close();
    await nats.stop();
    const loadEnd = loadAverage();
    for (const r of [lat, low])
      process.stdout.write(
        `latency at ${fmt(r.offeredRate)}/s, flush interval ${S.intervalS} s: p50 ${fmt(r.p50)} ms, p99 ${fmt(r.p99)} ms, ` +
          `max ${fmt(r.max)} ms (n=${fmt(r.n)}, delivered ${fmt(r.deliveredRate)}/s, emitter CPU ${fmt(r.cpuPct)}%)\n`,
      );
    process.stdout.write(
      `load average: start ${loadStart.map((v) => v.toFixed(2)).join(' ')}, end ${loadEnd.map((v) => v.toFixed(2)).join(' ')}\n`,
    );
    const loadAverages = { start: loadStart, end: loadEnd };
    mergePart('latency', { ...strip(lat), machine, loadAverage: loadAverages });
    mergePart('latencyLow', { ...strip(low), machine, loadAverage: loadAverages });
    return 0;
  }
  await ensureStream(nc, 'APPROVED', ['approved.>']);

  const pub = await prepublish(nc, 'approved.bench', S.events);
  say(
    `pre-published ${fmt(S.events)} messages in ${pub.seconds.toFixed(1)} s (${fmt(S.events / pub.seconds)} msg/s, JetStream publish, window 1000)`,
  );

  const rawAck = await rawConsume(nats.url, 'APPROVED', 'raw_ack', S.events, false);
  say(`raw consume + ack:          ${fmt(rawAck.eventsPerS)} msg/s`);
  const rawParse = await rawConsume(nats.url, 'APPROVED', 'raw_parse', S.events, true);
  say(`raw consume + parse + ack:  ${fmt(rawParse.eventsPerS)} msg/s`);
  const limit = await sinkLimit(sink, S.sinkLimitS);
  say(
    `sink limit:                 ${fmt(limit.batchesPerS)} batches/s (${fmt(limit.eventsPerS)} ev/s, ${fmt(limit.batchBytes)} B/batch)`,
  );

  const disk = await e2e(env, 'disk', 'e2e_disk', root);
  say(
    `e2e, spool on disk:         ${fmt(disk.eventsPerS)} ev/s, ${fmt(disk.cpuSPerM, 1)} CPU s/1M, peak RSS ${fmt(disk.peakRssMB)} MB`,
  );
  const shm = await e2e(env, 'tmpfs', 'e2e_tmpfs', shmParent);
  say(
    `e2e, spool on tmpfs:        ${fmt(shm.eventsPerS)} ev/s, ${fmt(shm.cpuSPerM, 1)} CPU s/1M, peak RSS ${fmt(shm.peakRssMB)} MB`,
  );

  const bigAck = await e2e(env, 'disk-ackpending', 'e2e_ackpending', root, {
    maxAckPending: S.bigAckPending,
  });
  say(`e2e, max_ack_pending ${fmt(S.bigAckPending)}:  ${fmt(bigAck.eventsPerS)} ev/s`);

  const lat = await latency(env, nc, root, S.latencyRate, S.latencyS, 'lat');
  say(
    `latency at ${fmt(lat.offeredRate)}/s:        p50 ${fmt(lat.p50)} ms, p99 ${fmt(lat.p99)} ms, max ${fmt(lat.max)} ms (n=${fmt(lat.n)}, delivered ${fmt(lat.deliveredRate)}/s)`,
  );
  const low = await latency(env, nc, root, S.lowLatencyRate, S.lowLatencyS, 'low');
  say(
    `latency at ${fmt(low.offeredRate)}/s:         p50 ${fmt(low.p50)} ms, p99 ${fmt(low.p99)} ms, max ${fmt(low.max)} ms (n=${fmt(low.n)}, delivered ${fmt(low.deliveredRate)}/s)`,
  );

  const out = await outage(env, nc, root);
  say(
    `outage ${out.outageS} s at ${fmt(out.offeredRate)}/s:     RSS ${fmt(out.rssAtOutageStartMB)} -> max ${fmt(out.rssMaxMB)} MB, ` +
      `spool ${fmt(out.spoolAtOutageStartMB, 1)} -> ${fmt(out.spoolAtOutageEndMB, 1)} MB, drain ${fmt(out.drainRate)} ev/s`,
  );

  const scale = SCALE ? await scaleOut(sink, logDir, root, machine.nproc) : undefined;

  let prof: E2EResult | undefined;
  if (PROFILE) {
    const profDir = join(root, 'cpuprof');
    mkdirSync(profDir);
    prof = await e2e(env, 'profiled', 'e2e_prof', root, { cpuProfDir: profDir });
    say(`e2e under --cpu-prof:       ${fmt(prof.eventsPerS)} ev/s`);
  }
  progress.stop();
  await nc.close();
  await sink.close();
  await nats.stop();
  const loadEnd = loadAverage();

  // ------------------------------------------------------------------ table
  const e2eOverRaw = disk.eventsPerS / rawAck.eventsPerS;
  const e2eOverSink = disk.eventsPerS / limit.eventsPerS;
  const peakRss = Math.max(
    disk.peakRssMB,
    shm.peakRssMB,
    bigAck.peakRssMB,
    lat.peakRssMB,
    low.peakRssMB,
    out.peakRssMB,
  );
  const p99Target = S.intervalS * 1000 + 100;
  const rows: Row[] = [
    { measure: 'raw JetStream consume + explicit ack (1 process)', value: `${fmt(rawAck.eventsPerS)} ev/s` },
    { measure: 'raw consume + JSON.parse + explicit ack', value: `${fmt(rawParse.eventsPerS)} ev/s` },
    {
      measure: 'raw consume (+parse) + ack: CPU s per 1M events',
      value: `${fmt(rawAck.cpuSPerM, 1)} (${fmt(rawParse.cpuSPerM, 1)}) s`,
    },
    {
      measure: `sink limit: gzip batches of ${S.batchSize}, undici pool 4`,
      value: `${fmt(limit.batchesPerS)} b/s = ${fmt(limit.eventsPerS)} ev/s`,
    },
    { measure: 'e2e, spool on disk: throughput', value: `${fmt(disk.eventsPerS)} ev/s` },
    {
      measure: 'e2e, spool on disk: throughput after 20% delivered',
      value: `${fmt(disk.steadyEventsPerS)} ev/s`,
    },
    {
      measure: 'e2e, spool on disk: MB/s (JSON in / gzip wire)',
      value: `${fmt(disk.inputMBps, 1)} / ${fmt(disk.wireMBps, 2)} MB/s`,
    },
    {
      measure: 'e2e, spool on disk: CPU s per 1M events (CPU %)',
      value: `${fmt(disk.cpuSPerM, 1)} s (${fmt(disk.cpuPct)}%)`,
    },
    {
      measure: 'e2e: CPU s per 1M events of the loopback sink (same cores)',
      value: `${fmt(disk.sinkCpuSPerM, 1)} s`,
    },
    {
      measure: 'e2e, spool on disk: peak RSS (VmHWM)',
      value: `${fmt(disk.peakRssMB)} MB`,
      target: '< 200 MB',
      ok: disk.peakRssMB < 200,
    },
    {
      measure: 'e2e / raw consume+ack',
      value: `${e2eOverRaw.toFixed(2)} x`,
      target: '>= 0.7 x',
      ok: e2eOverRaw >= 0.7,
    },
    {
      measure: 'e2e after 20% / raw consume+ack',
      value: `${(disk.steadyEventsPerS / rawAck.eventsPerS).toFixed(2)} x`,
      target: '>= 0.7 x',
      ok: disk.steadyEventsPerS / rawAck.eventsPerS >= 0.7,
    },
    { measure: 'e2e / sink limit', value: `${e2eOverSink.toFixed(2)} x` },
    {
      measure: 'e2e CPU per event / raw consume+parse+ack CPU',
      value: `${(disk.cpuSPerM / rawParse.cpuSPerM).toFixed(1)} x`,
    },
    { measure: 'e2e, spool on tmpfs ("in memory"): throughput', value: `${fmt(shm.eventsPerS)} ev/s` },
    {
      measure: 'e2e, spool on tmpfs: throughput after 20% delivered',
      value: `${fmt(shm.steadyEventsPerS)} ev/s`,
    },
    { measure: 'e2e, spool on tmpfs: CPU s per 1M events', value: `${fmt(shm.cpuSPerM, 1)} s` },
    {
      measure: 'e2e, spool on tmpfs: peak RSS',
      value: `${fmt(shm.peakRssMB)} MB`,
      target: '< 200 MB',
      ok: shm.peakRssMB < 200,
    },
    {
      measure: 'durability cost: disk / tmpfs throughput',
      value: `${(disk.eventsPerS / shm.eventsPerS).toFixed(2)} x`,
    },
    {
      measure: `experiment: e2e disk, consumer max_ack_pending ${fmt(S.bigAckPending)}`,
      value: `${fmt(bigAck.eventsPerS)} ev/s (${(bigAck.eventsPerS / disk.eventsPerS).toFixed(2)} x)`,
    },
    {
      measure: `latency publish->delivered p50 at ${fmt(lat.offeredRate)}/s`,
      value: `${fmt(lat.p50)} ms`,
    },
    {
      measure: `latency p99 (flush interval ${S.intervalS} s)`,
      value: `${fmt(lat.p99)} ms`,
      target: `<= ${p99Target} ms`,
      ok: lat.p99 <= p99Target,
    },
    { measure: 'latency max', value: `${fmt(lat.max)} ms` },
    {
      measure: `delivered rate while offering ${fmt(lat.offeredRate)}/s`,
      value: `${fmt(lat.deliveredRate)} ev/s`,
      target: '= offered',
      ok: lat.deliveredRate >= 0.95 * lat.offeredRate,
    },
    { measure: `emitter CPU at ${fmt(lat.offeredRate)}/s offered`, value: `${fmt(lat.cpuPct)}% of a core` },
    {
      measure: `supplementary: latency p50 / p99 / max at ${fmt(low.offeredRate)}/s`,
      value: `${fmt(low.p50)} / ${fmt(low.p99)} / ${fmt(low.max)} ms`,
      target: `p99 <= ${p99Target} ms`,
      ok: low.p99 <= p99Target,
    },
    { measure: `emitter CPU at ${fmt(low.offeredRate)}/s offered`, value: `${fmt(low.cpuPct)}% of a core` },
    {
      measure: `outage ${out.outageS} s (503) at ${fmt(out.offeredRate)}/s: RSS start -> max`,
      value: `${fmt(out.rssAtOutageStartMB)} -> ${fmt(out.rssMaxMB)} MB`,
    },
    {
      measure: 'outage: RSS growth during outage (max / start)',
      value: `${fmt(out.rssGrowthPct, 1)}%`,
      target: 'within 20%',
      ok: out.rssGrowthPct <= 20,
    },
    { measure: 'outage: RSS last third / first third', value: `${out.rssLateOverEarly.toFixed(2)} x` },
    {
      measure: 'outage: V8 heap used start -> max',
      value: `${fmt(out.heapAtOutageStartMB ?? NaN)} -> ${fmt(out.heapMaxMB ?? NaN)} MB`,
    },
    {
      measure: 'outage: spool growth',
      value: `${fmt(out.spoolAtOutageStartMB, 1)} -> ${fmt(out.spoolAtOutageEndMB, 1)} MB (${fmt(out.spoolGrowthMBperMin, 1)} MB/min)`,
    },
    { measure: 'outage: backlog at recovery', value: `${fmt(out.backlogAtRecovery)} ev` },
    {
      measure: 'outage: first delivery after recovery',
      value: `${fmt(out.firstDeliveryAfterRecoveryS, 2)} s`,
    },
    { measure: 'outage: caught up after', value: `${fmt(out.catchUpS, 2)} s` },
    {
      measure: 'outage: drain rate after recovery',
      value: `${fmt(out.drainRate)} ev/s (${(out.drainRate / out.offeredRate).toFixed(1)} x offered)`,
      target: `>= 3 x offered`,
      ok: out.drainRate >= 3 * out.offeredRate,
    },
    { measure: 'peak RSS over all runs', value: `${fmt(peakRss)} MB`, target: '< 200 MB', ok: peakRss < 200 },
  ];
  const printed = table(rows);
  process.stdout.write(`\n${printed}\n`);
  process.stdout.write(
    `load average: start ${loadStart.map((v) => v.toFixed(2)).join(' ')}, end ${loadEnd.map((v) => v.toFixed(2)).join(' ')} ` +
      `(${machine.nproc} cores; other work on the machine skews every figure)\n`,
  );
  process.stdout.write(
    `spool: disk = ${root} (${machine.spoolDiskFs}), tmpfs = ${shmParent}; both LevelDB with sync writes. ` +
      `Outage = sink answers 503; retry 0.5 s..2 s, breaker reset 2 s.\n`,
  );
  if (scale) process.stdout.write(`\n${scaleTable(scale)}\n`);
  if (prof?.profile) process.stdout.write(`\n${formatProfile(prof.profile)}\n`);

  // ------------------------------------------------------------------ files
  const results = {
    at: new Date().toISOString(),
    quick: QUICK,
    settings: S,
    eventBytes: EVENT_BYTES,
    gzipLevel: GZIP_LEVEL,
    emitter: emitterCommand().what,
    machine,
    loadAverage: { start: loadStart, end: loadEnd },
    raw: { consumeAck: rawAck, consumeParseAck: rawParse, sinkLimit: limit },
    profiledRunNote: 'the profiled run is slower (sampling overhead); its figures are not in the table',
    e2eDisk: strip(disk),
    e2eTmpfs: strip(shm),
    e2eBigAckPending: strip(bigAck),
    latency: strip(lat),
    latencyLow: strip(low),
    outage: strip(out),
    scale,
    profiledRun: prof ? { ...strip(prof), profile: prof.profile } : undefined,
    ratios: {
      e2eOverRawConsumeAck: e2eOverRaw,
      e2eOverSinkLimit: e2eOverSink,
      diskOverTmpfs: disk.eventsPerS / shm.eventsPerS,
    },
    table: rows,
  };
  writeFileSync(join(OUT_DIR, 'bench.json'), `${JSON.stringify(results, null, 2)}\n`);
  const panels: ChartPanel[] = [
    {
      title: `e2e, spool on disk: ${fmt(S.events)} pre-published events`,
      points: chartPoints(disk.samples),
      reference: { rate: rawAck.eventsPerS, label: 'raw consume+ack' },
    },
    {
      title: 'e2e, spool on tmpfs',
      points: chartPoints(shm.samples),
      reference: { rate: rawAck.eventsPerS, label: 'raw consume+ack' },
    },
    {
      title: `latency run: ${fmt(lat.offeredRate)} ev/s offered`,
      points: chartPoints(lat.samples),
      reference: { rate: lat.offeredRate, label: 'offered' },
    },
    {
      title: `latency run: ${fmt(low.offeredRate)} ev/s offered`,
      points: chartPoints(low.samples),
      reference: { rate: low.offeredRate, label: 'offered' },
    },
    {
      title: `outage: ${out.outageS} s of 503 at ${fmt(out.offeredRate)} ev/s offered`,
      points: chartPoints(out.samples, true),
      shade: { from: out.outageFromS, to: out.outageToS, label: 'sink 503' },
      reference: { rate: out.offeredRate, label: 'offered' },
    },
  ];
  writeFileSync(
    join(OUT_DIR, 'bench.svg'),
    renderChart(
      `batch-emitter bench${QUICK ? ' (--quick)' : ''}: throughput and RSS over time`,
      `${machine.nproc} x ${machine.model}, Node ${machine.node}, nats-server ${natsVersion}, load ${loadStart[0].toFixed(2)} -> ${loadEnd[0].toFixed(2)}, ${results.at}`,
      panels,
    ),
  );
  process.stdout.write(
    `\nwrote ${join('bench-results', 'bench.json')}, ${join('bench-results', 'bench.svg')}${prof?.profile ? `, ${join('bench-results', 'emitter-e2e.cpuprofile')}` : ''}\n`,
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    progress.stop();
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
