import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { atProcessEnd } from '../../harness/cleanup.js';
import { startSink, type Sink, type SinkReply, type SinkRequest } from '../../harness/sink.js';
import { deliveredKeys, type Published } from '../../harness/workload.js';

/**
 * Shared parts of the chaos scenarios: a seeded random source, the emitter as a real
 * child process, a loopback sink that can misbehave and remembers what it *stored*, a JetStream
 * publisher that retries (with Nats-Msg-Id, so a retried publish is never a second message), and
 * the accounting (published / delivered unique / lost / duplicates by idempotency-key).
 */

export const REPO = fileURLToPath(new URL('../..', import.meta.url));

// ---------------------------------------------------------------- results

export type Profile = 'full' | 'quick' | 'ci';

export interface ScenarioResult {
  name: string;
  published: number;
  deliveredUnique: number;
  lost: number;
  /** items delivered more than once */
  duplicates: number;
  /** ... of which every delivery carried the same idempotency-key (a re-sent batch) */
  dupSameKey: number;
  /** ... of which the deliveries carried different idempotency-keys (the item was in two batches) */
  dupDiffKey: number;
  /** items of batches deliberately corrupted (counted apart, not as lost) */
  quarantined: number;
  /** set when the scenario could not run here (with the reason) */
  skipped?: string;
  /** checks of behaviour (not counts) that failed: misbehaviour worth a bug report */
  failures: string[];
  notes: string[];
  durationMs: number;
}

export interface Tally {
  published: number;
  deliveredUnique: number;
  lost: number;
  lostSample: string[];
  duplicates: number;
  dupSameKey: number;
  dupDiffKey: number;
  quarantined: number;
  /** delivered keys that were never published (should be 0) */
  unexpected: number;
}

/**
 * Count what the receiver stored against what was published. `stored` are the requests the sink
 * committed (answered 2xx, or read and then lost the answer on purpose). Items of `quarantined`
 * that never arrived are counted apart, not as lost.
 */
export function tally(
  published: Iterable<string>,
  stored: SinkRequest[],
  quarantined: ReadonlySet<string> = new Set(),
): Tally {
  const wanted = new Set(published);
  const carriers = new Map<string, string[]>();
  for (const r of stored) {
    const idem = String(r.headers['idempotency-key'] ?? '');
    for (const key of new Set(deliveredKeys([r]))) {
      const list = carriers.get(key);
      if (list) list.push(idem);
      else carriers.set(key, [idem]);
    }
  }
  let deliveredUnique = 0;
  let duplicates = 0;
  let dupSameKey = 0;
  let dupDiffKey = 0;
  let unexpected = 0;
  let quarantinedMissing = 0;
  const lostKeys: string[] = [];
  for (const [key, ids] of carriers) {
    if (!wanted.has(key)) {
      unexpected += 1;
      continue;
    }
    if (ids.length > 1) {
      duplicates += 1;
      if (new Set(ids).size === 1) dupSameKey += 1;
      else dupDiffKey += 1;
    }
  }
  for (const key of wanted) {
    if (carriers.has(key)) deliveredUnique += 1;
    else if (quarantined.has(key)) quarantinedMissing += 1;
    else lostKeys.push(key);
  }
  return {
    published: wanted.size,
    deliveredUnique,
    lost: lostKeys.length,
    lostSample: lostKeys.slice(0, 5),
    duplicates,
    dupSameKey,
    dupDiffKey,
    quarantined: quarantinedMissing,
    unexpected,
  };
}

/** Build a result row from a tally, with the standard notes. */
export function resultFrom(
  name: string,
  t: Tally,
  startedMs: number,
  notes: string[],
  failures: string[],
): ScenarioResult {
  const extra: string[] = [];
  if (t.lost > 0) extra.push(`LOST e.g. ${t.lostSample.join(', ')}`);
  if (t.unexpected > 0) extra.push(`${t.unexpected} delivered keys never published`);
  return {
    name,
    published: t.published,
    deliveredUnique: t.deliveredUnique,
    lost: t.lost,
    duplicates: t.duplicates,
    dupSameKey: t.dupSameKey,
    dupDiffKey: t.dupDiffKey,
    quarantined: t.quarantined,
    failures,
    notes: [...extra, ...notes],
    durationMs: Date.now() - startedMs,
  };
}

/** A row with nothing counted: for a scenario that was skipped or did not get to count. */
export function uncountedResult(
  name: string,
  startedMs: number,
  outcome: Pick<ScenarioResult, 'failures' | 'notes' | 'skipped'>,
): ScenarioResult {
  return {
    name,
    published: 0,
    deliveredUnique: 0,
    lost: 0,
    duplicates: 0,
    dupSameKey: 0,
    dupDiffKey: 0,
    quarantined: 0,
    ...outcome,
    durationMs: Date.now() - startedMs,
  };
}

export function skippedResult(name: string, why: string, startedMs: number): ScenarioResult {
  return uncountedResult(name, startedMs, { skipped: why, failures: [], notes: [`SKIPPED: ${why}`] });
}

// ---------------------------------------------------------------- time and randomness

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `pred` until it holds; throws naming `what` when `timeoutMs` passes first. */
export async function waitUntil(
  pred: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string | (() => string),
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > deadline) {
      const told = typeof what === 'string' ? what : what();
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${told}`);
    }
    await sleep(everyMs);
  }
}

/** Like waitUntil, but answers false instead of throwing. */
export async function eventually(
  pred: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 100,
): Promise<boolean> {
  try {
    await waitUntil(pred, timeoutMs, '', everyMs);
    return true;
  } catch {
    return false;
  }
}

/** mulberry32: a small seeded generator, so a run can be repeated with --seed. */
export class Rng {
  private state: number;
  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** integer in [lo, hi] */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(values: readonly T[]): T {
    return values[Math.floor(this.next() * values.length)] as T;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

export async function tempDir(name: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `be-chaos-${name}-`));
  atProcessEnd(() => rmSync(path, { recursive: true, force: true }));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

// ---------------------------------------------------------------- the emitter process

const liveEmitters = new Set<ChildProcess>();
atProcessEnd(() => {
  for (const child of liveEmitters) child.kill('SIGKILL');
});

export interface EmitterProc {
  readonly child: ChildProcess;
  /** resolves with the HTTP server URL from the "running" log line; rejects if the process exits first */
  readonly running: Promise<string>;
  /** the exit code or the signal name */
  readonly exited: Promise<number | string>;
  readonly isRunning: boolean;
  readonly hasExited: boolean;
  /** the HTTP server URL once known */
  readonly httpUrl: string | undefined;
  /** the last ~256 KB of stdout + stderr */
  logs(): string;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, SIGKILL after `graceMs`; resolves with the exit code or signal */
  stop(graceMs?: number): Promise<number | string>;
}

/** The TRANSMITTER_* environment of an emitter under chaos: fast batches and retries. */
export function chaosEnv(opts: {
  natsUrl: string;
  sinkUrl: string;
  spoolDir: string;
  durable?: string;
  extra?: Record<string, string>;
}): Record<string, string> {
  return {
    TRANSMITTER_NATS_URL: opts.natsUrl,
    TRANSMITTER_NATS_DURABLE: opts.durable ?? 'chaos',
    TRANSMITTER_DESTINATION_URL: opts.sinkUrl,
    TRANSMITTER_ALLOW_INSECURE_HTTP: 'true',
    TRANSMITTER_SPOOL_DIR: opts.spoolDir,
    TRANSMITTER_SERVER_HOST: '127.0.0.1',
    TRANSMITTER_SERVER_PORT: '0',
    TRANSMITTER_BATCH_SIZE: '200',
    TRANSMITTER_BATCH_INTERVAL_S: '0.2',
    TRANSMITTER_REQUEST_TIMEOUT_S: '5',
    TRANSMITTER_RETRY_INITIAL_DELAY_S: '0.05',
    TRANSMITTER_RETRY_MAX_DELAY_S: '0.5',
    TRANSMITTER_CIRCUIT_RESET_TIMEOUT_S: '0.2',
    TRANSMITTER_NATS_ACK_WAIT_S: '3',
    TRANSMITTER_SHUTDOWN_TIMEOUT_S: '5',
    TRANSMITTER_PROBE_ID: 'probe-chaos',
    TRANSMITTER_RUN_ID: 'run-chaos',
    TRANSMITTER_LOG_LEVEL: process.env.CHAOS_EMITTER_LOG_LEVEL ?? 'info',
    ...opts.extra,
  };
}

/** `node --import tsx src/bin.ts run` with exactly `env` (plus PATH and HOME). */
export function startEmitter(env: Record<string, string>): EmitterProc {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/bin.ts', 'run'], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveEmitters.add(child);
  let log = '';
  let pending = '';
  let httpUrl: string | undefined;
  let exitedFlag = false;
  let markRunning: (url: string) => void = () => undefined;
  let failRunning: (e: Error) => void = () => undefined;
  const running = new Promise<string>((resolve, reject) => {
    markRunning = resolve;
    failRunning = reject;
  });
  running.catch(() => undefined); // a killed process may never run: not an unhandled rejection
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    log += text;
    if (log.length > 512 * 1024) log = log.slice(-256 * 1024);
    if (httpUrl !== undefined) return;
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.includes('"msg":"running"')) continue;
      try {
        const parsed = JSON.parse(line) as { http?: string };
        if (parsed.http) {
          httpUrl = parsed.http;
          markRunning(parsed.http);
        }
      } catch {
        // not JSON
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      liveEmitters.delete(child);
      exitedFlag = true;
      const logDir = process.env.CHAOS_LOG_DIR;
      if (logDir) {
        try {
          writeFileSync(join(logDir, `emitter-${Date.now()}-${child.pid}.log`), log);
        } catch {
          // best effort
        }
      }
      const how = code ?? signal ?? -1;
      failRunning(new Error(`emitter exited (${how}) before running:\n${log.slice(-3000)}`));
      resolve(how);
    }),
  );
  return {
    child,
    running,
    exited,
    get isRunning() {
      return httpUrl !== undefined && !exitedFlag;
    },
    get hasExited() {
      return exitedFlag;
    },
    get httpUrl() {
      return httpUrl;
    },
    logs: () => log,
    kill: (signal) => {
      if (!exitedFlag) child.kill(signal);
    },
    async stop(graceMs = 15_000) {
      if (exitedFlag) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const how = await exited;
      clearTimeout(timer);
      return how;
    },
  };
}

/** GET a JSON endpoint of the emitter's HTTP server. */
export async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as unknown };
  } catch {
    return { status: res.status, body: text };
  }
}

/** Log lines of one level or above with their messages, e.g. to report errors seen. */
export function logMessages(logs: string, minLevel = 50): string[] {
  const out: string[] = [];
  for (const line of logs.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const l = JSON.parse(line) as { level?: number; msg?: string; err?: string };
      if ((l.level ?? 0) >= minLevel) out.push(l.err ? `${l.msg}: ${l.err}` : String(l.msg));
    } catch {
      // a cut line
    }
  }
  return out;
}

// ---------------------------------------------------------------- the sink

/** What the receiver does with one request whose body decoded. */
export type Decision =
  /** store it and answer 200 (after `delayMs`) */
  | { kind: 'ok'; delayMs?: number }
  /** refuse with a status (not stored) */
  | { kind: 'status'; status: number; headers?: Record<string, string>; delayMs?: number }
  /** destroy the connection without storing it */
  | { kind: 'reset' }
  /** store it (the body was read and accepted), then destroy the socket before answering */
  | { kind: 'accept-reset' }
  /** never answer, store nothing */
  | { kind: 'hang' };

export type FaultPolicy = (req: SinkRequest, index: number) => Decision;

export interface ChaosSink {
  readonly url: string;
  readonly sink: Sink;
  /** requests the receiver stored (what "delivered" counts) */
  readonly stored: SinkRequest[];
  /** requests refused because the body did not gunzip or parse */
  readonly undecodable: SinkRequest[];
  /** counts of decisions taken, by kind/status */
  readonly decisions: Map<string, number>;
  setPolicy(policy: FaultPolicy | undefined): void;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A loopback receiver that behaves like a real one: a body that does not gunzip or parse as a
 * JSON object is refused with 400; a stored request counts as delivered even when its answer is
 * lost afterwards (slow answer to a killed client, `accept-reset`).
 */
export async function startChaosSink(): Promise<ChaosSink> {
  const sink = await startSink();
  const stored: SinkRequest[] = [];
  const undecodable: SinkRequest[] = [];
  const decisions = new Map<string, number>();
  let policy: FaultPolicy | undefined;
  const count = (label: string) => decisions.set(label, (decisions.get(label) ?? 0) + 1);
  sink.respondWith(async (req, index): Promise<SinkReply> => {
    if (req.bodyError !== undefined || !req.body || typeof req.body !== 'object') {
      undecodable.push(req);
      count('400 undecodable');
      return { status: 400, body: { error: req.bodyError ?? 'body is not a JSON object' } };
    }
    const d: Decision = policy ? policy(req, index) : { kind: 'ok' };
    switch (d.kind) {
      case 'ok':
        stored.push(req);
        count(d.delayMs ? 'slow 200' : '200');
        if (d.delayMs) await sleep(d.delayMs);
        return { status: 200, body: { ok: true } };
      case 'status':
        count(String(d.status));
        if (d.delayMs) await sleep(d.delayMs);
        return { status: d.status, ...(d.headers ? { headers: d.headers } : {}), body: { error: 'chaos' } };
      case 'reset':
        count('reset');
        return 'reset';
      case 'accept-reset':
        stored.push(req);
        count('accept+reset');
        return 'reset';
      case 'hang':
        count('hang');
        return 'hang';
    }
  });
  return {
    url: `${sink.url}/ingest`,
    sink,
    stored,
    undecodable,
    decisions,
    setPolicy: (p) => (policy = p),
    down: () => sink.down(),
    up: () => sink.up(),
    close: () => sink.close(),
  };
}

export function describeDecisions(decisions: Map<string, number>): string {
  return [...decisions]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} x${n}`)
    .join(', ');
}

// ---------------------------------------------------------------- publishing and JetStream

export interface RawPublished {
  subject: string;
  payload: Uint8Array;
  /** the item key when the message is a good one (counted as published once acked) */
  key?: string;
  msgId: string;
}

export function toRaw(messages: Published[]): RawPublished[] {
  const enc = new TextEncoder();
  return messages.map((m) => ({
    subject: m.subject,
    payload: enc.encode(JSON.stringify(m.data)),
    key: m.key,
    msgId: m.key,
  }));
}

/**
 * A JetStream publisher that retries every publish until acknowledged or its deadline, with the
 * item key as Nats-Msg-Id: the stream drops a retried copy, so each item is one stream message.
 */
export class Publisher {
  /** keys acknowledged by JetStream (what "published" counts) */
  readonly published = new Set<string>();
  /** keys given up on (never acknowledged before the deadline) */
  readonly failed = new Set<string>();
  /** per acknowledged key: its stream sequence and when the ack arrived (epoch ms) */
  readonly acks = new Map<string, { seq: number; atMs: number }>();
  retries = 0;
  private readonly js: JetStreamClient;

  private constructor(readonly nc: NatsConnection) {
    this.js = jetstream(nc, { timeout: 2000 });
  }

  static async connect(servers: string[]): Promise<Publisher> {
    const nc = await connect({
      servers,
      name: 'chaos-publisher',
      maxReconnectAttempts: -1,
      reconnectTimeWait: 200,
      timeout: 5000,
    });
    return new Publisher(nc);
  }

  /** Publish in windows of `window`, at most `ratePerS` per second when given. */
  async publish(
    messages: RawPublished[],
    opts: { window?: number; ratePerS?: number; deadlineMs?: number } = {},
  ): Promise<void> {
    const window = opts.window ?? 200;
    const deadline = Date.now() + (opts.deadlineMs ?? 120_000);
    const started = Date.now();
    for (let i = 0; i < messages.length; i += window) {
      await Promise.all(messages.slice(i, i + window).map((m) => this.one(m, deadline)));
      if (opts.ratePerS) {
        const due = started + ((i + window) / opts.ratePerS) * 1000;
        if (due > Date.now()) await sleep(due - Date.now());
      }
    }
  }

  private async one(m: RawPublished, deadline: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const ack = await this.js.publish(m.subject, m.payload, { msgID: m.msgId, timeout: 2000 });
        if (m.key !== undefined) this.published.add(m.key);
        if (m.key !== undefined) this.acks.set(m.key, { seq: ack.seq, atMs: Date.now() });
        return;
      } catch {
        if (Date.now() > deadline) {
          if (m.key !== undefined) this.failed.add(m.key);
          return;
        }
        this.retries += 1;
        await sleep(Math.min(1000, 100 * (attempt + 1)));
      }
    }
  }

  async close(): Promise<void> {
    await this.nc.drain().catch(() => this.nc.close());
  }
}

/** The durable consumer's counters, or undefined while JetStream does not answer. */
export async function consumerState(
  nc: NatsConnection,
  stream: string,
  durable: string,
): Promise<{ pending: number; ackPending: number; redelivered: number } | undefined> {
  try {
    const jsm = await jetstreamManager(nc, { timeout: 2000 });
    const info = await jsm.consumers.info(stream, durable);
    return { pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered };
  } catch {
    return undefined;
  }
}

/** Wait until every published item is stored by the sink (or the deadline passes). */
export async function drained(
  published: ReadonlySet<string>,
  sink: ChaosSink,
  timeoutMs: number,
  except: ReadonlySet<string> = new Set(),
): Promise<boolean> {
  let seenRequests = -1;
  const got = new Set<string>();
  return eventually(() => {
    if (sink.stored.length !== seenRequests) {
      for (const r of sink.stored.slice(Math.max(0, seenRequests))) {
        for (const k of deliveredKeys([r])) got.add(k);
      }
      seenRequests = sink.stored.length;
    }
    for (const k of published) if (!got.has(k) && !except.has(k)) return false;
    return true;
  }, timeoutMs);
}
