import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { cp, rename, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../harness/emitter-probe.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { spawnEmitter, type EmitterProcess } from '../../harness/process.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { deliveredKeys, tempDir } from '../../harness/workload.js';
import { testEnv } from '../support/env.js';

/**
 * Attack: the ack gate and the pull session under a running emitter (a real process, a real
 * nats-server), the way an operator or the world would go at them.
 *
 * 1. APPROVED and the durable deleted and re-created (same names) again and again under load,
 *    messages published to each new stream at once while the emitter still has batches, and so
 *    acks, of the old one in flight. An ack subject names no incarnation: an old message's ack that
 *    reached the new stream would ack the new message of that sequence. Every ack carries its
 *    message's stream timestamp (the ack subject's 8th token), so an ack that reached a stream
 *    created after its message is seen here, and counted: the ack gate sends an ack only after a
 *    look at the stream finds its incarnation, but a stream replaced between that look's answer
 *    and the ack's arrival still takes it (0 such acks in unloaded runs; 50-150 of ~6,000 in 3 of
 *    10 runs with two busy loops on the 2 cores, each run losing nothing; 1,060 in one unloaded run
 *    with the gate disabled). Everything published to the last stream, and everything the emitter
 *    acknowledged on any stream, must reach the sink.
 * 2. SIGTERM just after the operator re-created the stream and publishing to it began, then a new
 *    emitter on the same spool: nothing published to the new stream is lost.
 * 3. nats-server restarted (same store) while intake is paused on a full spool (the handler holds
 *    a message, more wait in the pull session): everything arrives once the sink is back, with no
 *    stall.
 * 4. nats-server's store rolled back to an earlier copy (a volume snapshot restored): the stream
 *    keeps its name and creation time, so its incarnation, and gives the sequences it lost to new
 *    messages, which the sequence index must not take for the old ones.
 */

const STREAM = 'APPROVED';

let nats: NatsServerHandle;
let sink: Sink;
let admin: NatsConnection;

beforeAll(async () => {
  [nats, sink] = await Promise.all([startNats(), startSink()]);
  admin = await connect({ servers: nats.url });
  // a sink a little slow: batches queue up in the spool while acks go on
  sink.respondWith(async () => {
    await new Promise((r) => setTimeout(r, 15));
    return { status: 200, body: { ok: true } };
  });
});

afterAll(async () => {
  await admin?.close();
  await Promise.all([nats?.stop(), sink?.close()]);
});

/** ISO time with nanoseconds (as JetStream says `created`) in nanoseconds since the epoch. */
function isoNanos(iso: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(iso);
  if (!m) throw new Error(`not an ISO time: ${iso}`);
  const seconds = BigInt(Date.parse(`${m[1]}Z`)) / 1000n;
  const fraction = BigInt(((m[2] ?? '') + '000000000').slice(0, 9));
  return seconds * 1_000_000_000n + fraction;
}

interface Epoch {
  /** the stream's creation time, ns */
  createdNs: bigint;
  /** when the stream was deleted (ms), if it was */
  deletedMs?: number;
  /**
   * Where its creation and deletion fall among the acks the admin connection saw (`arrivals`):
   * the server answers a request and forwards an ack on that one connection in the order it did
   * them, so an ack that arrives after the creation's answer reached the server after the stream
   * was there. (The test process's own clock is not used for this: a loaded machine delays its
   * callbacks, and an ack sent well before a re-creation would look like a late one.)
   */
  createdOrder: number;
  deletedOrder?: number;
  /** stream sequence -> key, for publishes the stream acknowledged */
  published: Map<number, string>;
}

function envFor(spoolDir: string, durable: string): Record<string, string> {
  return testEnv({
    natsUrl: nats.url,
    sinkUrl: sink.url,
    spoolDir,
    extra: {
      TRANSMITTER_NATS_DURABLE: durable,
      TRANSMITTER_BATCH_SIZE: '50',
      TRANSMITTER_BATCH_INTERVAL_S: '0.1',
      TRANSMITTER_NATS_ACK_WAIT_S: '3',
      TRANSMITTER_SHUTDOWN_TIMEOUT_S: '3',
    },
  });
}

/** The keys the sink has received so far (incrementally). */
function deliveries(): { has(key: string): boolean; size(): number } {
  const got = new Set<string>();
  let seen = 0;
  const refresh = () => {
    for (; seen < sink.requests.length; seen++) {
      const r = sink.requests[seen];
      if (r) for (const k of deliveredKeys([r])) got.add(k);
    }
  };
  return {
    has: (key) => (refresh(), got.has(key)),
    size: () => (refresh(), got.size),
  };
}

/** Delete APPROVED, re-create it and the durable as an operator would; the new stream's epoch. */
/** Acks the admin connection has seen so far (see Epoch.createdOrder). */
let arrivals = 0;

async function recreate(durable: string, old: Epoch): Promise<Epoch> {
  const jsm = await jetstreamManager(admin);
  old.deletedMs = Date.now();
  await jsm.streams.delete(STREAM);
  old.deletedOrder = arrivals;
  // the emitter may have re-created it first (the same config: idempotent)
  const info = await jsm.streams.add({ name: STREAM, subjects: ['approved.>'], storage: StorageType.File });
  const createdOrder = arrivals;
  await jsm.consumers
    .add(STREAM, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(3000),
      max_ack_pending: 1000,
    })
    .catch(() => undefined);
  return {
    createdNs: isoNanos(info.created),
    createdOrder,
    published: new Map<number, string>(),
  };
}

/** The stream as it is now as the first epoch, and findings published to whichever is current. */
async function loadOnStream(prefix: string) {
  const first = await (await jetstreamManager(admin)).streams.info(STREAM);
  const epochs: Epoch[] = [{ createdNs: isoNanos(first.created), createdOrder: 0, published: new Map() }];
  const current = () => epochs[epochs.length - 1] as Epoch;
  const pubNc = await connect({ servers: nats.url });
  return { epochs, current, pubNc, load: new Load(pubNc, prefix, current, 2500) };
}

/** Publishing findings (unique keys) at about `ratePerS`, paused while the stream is replaced. */
class Load {
  private n = 0;
  private stopped = false;
  private paused?: Promise<void>;
  private resume?: () => void;
  private idle?: () => void;
  private running: Promise<void>;
  failed = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    private epoch: () => Epoch,
    ratePerS: number,
  ) {
    this.running = this.loop(ratePerS);
  }

  private async loop(ratePerS: number): Promise<void> {
    const js = jetstream(this.nc, { timeout: 2000 });
    const enc = new TextEncoder();
    const window = 20;
    while (!this.stopped) {
      if (this.paused) {
        this.idle?.();
        await this.paused;
        continue;
      }
      const epoch = this.epoch();
      const started = Date.now();
      await Promise.all(
        Array.from({ length: window }, async () => {
          const id = `${this.prefix}${this.n++}`;
          const data = { id, severity: 'low', note: 'x'.repeat(100) };
          try {
            const ack = await js.publish('approved.finding', enc.encode(JSON.stringify(data)));
            epoch.published.set(ack.seq, `v:${id}`);
          } catch {
            this.failed++;
          }
        }),
      );
      const due = (window / ratePerS) * 1000 - (Date.now() - started);
      if (due > 0) await new Promise((r) => setTimeout(r, due));
    }
  }

  /** Resolves once no publish is in flight; publishing waits until the returned resume() */
  async pause(): Promise<() => void> {
    this.paused = new Promise<void>((r) => (this.resume = r));
    await new Promise<void>((r) => (this.idle = r));
    return () => {
      this.paused = undefined;
      this.resume?.();
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.resume?.();
    await this.running;
  }
}

interface AckSeen {
  seq: number;
  /** the acked message's stream timestamp, ns */
  tsNs: bigint;
  atMs: number;
  /** its place among the acks the admin connection saw */
  order: number;
}

async function consumerInfo(durable: string): Promise<{ unacked: number; redelivered: number } | undefined> {
  try {
    const info = await (await jetstreamManager(admin, { timeout: 2000 })).consumers.info(STREAM, durable);
    return { unacked: info.num_pending + info.num_ack_pending, redelivered: info.num_redelivered };
  } catch {
    return undefined;
  }
}

/** Every ack of the durable as it reaches the server. */
function watchAcks(durable: string): AckSeen[] {
  const seen: AckSeen[] = [];
  admin.subscribe(`$JS.ACK.${STREAM}.${durable}.>`, {
    callback: (_err, msg) => {
      const body = msg.string();
      if (body !== '+ACK' && body !== '+TERM') return;
      // $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
      const t = msg.subject.split('.');
      if (t.length < 9) return;
      seen.push({ seq: Number(t[5]), tsNs: BigInt(t[7] as string), atMs: Date.now(), order: ++arrivals });
    },
  });
  return seen;
}

/**
 * Acks that reached a stream created after their message (the gate let them through), and
 * messages the emitter acknowledged on their own stream that never reached the sink.
 */
function judge(
  epochs: Epoch[],
  acks: AckSeen[],
  got: { has(key: string): boolean },
): { stale: AckSeen[]; ackedLost: string[]; perEpoch: string[] } {
  const stale = acks.filter((a) => {
    const at = [...epochs].reverse().find((e) => e.createdOrder < a.order);
    return at !== undefined && a.tsNs < at.createdNs && (at.deletedOrder ?? Infinity) >= a.order;
  });
  const ackedLost: string[] = [];
  for (const e of epochs) {
    for (const a of acks) {
      if (a.tsNs < e.createdNs || a.atMs > (e.deletedMs ?? Infinity)) continue;
      const key = e.published.get(a.seq);
      if (key !== undefined && !got.has(key)) ackedLost.push(key);
    }
  }
  const perEpoch = epochs.map((e) => {
    const keys = [...e.published.values()];
    return `${keys.length} published, ${keys.filter((k) => !got.has(k)).length} gone`;
  });
  return { stale, ackedLost, perEpoch };
}

describe('ack gate and pull session under a running emitter', () => {
  let emitter: EmitterProcess | undefined;
  afterAll(() => emitter?.kill('SIGKILL'));

  it('stream and durable re-created 6 times under load: nothing acknowledged or published to the last stream lost', async () => {
    const durable = 'gate';
    const spool = await tempDir('ack-gate');
    sink.clear();
    const acks = watchAcks(durable);
    emitter = spawnEmitter(envFor(spool.path, durable));
    await emitter.ready;
    const { epochs, current, pubNc, load } = await loadOnStream('g');
    const got = deliveries();
    try {
      for (let round = 0; round < 6; round++) {
        const epoch = current();
        // acks of this stream going on (the emitter has taken it up), and more in flight
        await until(
          () => acks.some((a) => a.tsNs >= epoch.createdNs) && epoch.published.size >= 1500,
          20_000,
          `round ${round}: the emitter acking the stream`,
        );
        const resume = await load.pause();
        const next = await recreate(durable, epoch);
        epochs.push(next);
        resume();
      }
      // the last stream: a little more load, then every message of it must arrive
      const last = current();
      await until(() => last.published.size >= 3000, 20_000, 'publishing to the last stream');
      await load.stop();
      const lastKeys = [...last.published.values()];
      await until(() => lastKeys.every((k) => got.has(k)), 40_000, 'the last stream delivered').catch(
        () => undefined,
      );
      const lostLast = lastKeys.filter((k) => !got.has(k));

      const { stale, ackedLost, perEpoch } = judge(epochs, acks, got);
      console.log(
        `[ack-gate attack] epochs: ${perEpoch.join(' | ')}; acks seen ${acks.length}, reaching a later stream ${stale.length}; ` +
          `acknowledged and lost ${ackedLost.length}; last stream lost ${lostLast.length}/${lastKeys.length}; publishes failed ${load.failed}`,
      );
      expect(ackedLost).toEqual([]);
      expect(lostLast).toEqual([]);
      const logs = emitter.output();
      expect(logs).toMatch(
        /acks of a stream that was deleted or re-created not sent|was deleted and re-created/,
      );
      expect(await emitter.stop()).toBe(0);
    } finally {
      await load.stop();
      await pubNc.close();
      emitter.kill('SIGKILL');
      await spool.remove();
    }
  }, 120_000);

  it('SIGTERM just after the stream is re-created under load, then a new emitter on the spool: nothing of the new stream lost', async () => {
    const durable = 'gate2';
    const spool = await tempDir('ack-gate-term');
    sink.clear();
    const acks = watchAcks(durable);
    const env = envFor(spool.path, durable);
    let proc = spawnEmitter(env);
    emitter = proc;
    await proc.ready;
    // the stream the first test left (its durable is another one)
    const { epochs, current, pubNc, load } = await loadOnStream('t');
    const got = deliveries();
    try {
      const old = current();
      await until(
        () => acks.some((a) => a.tsNs >= old.createdNs) && old.published.size >= 1500,
        20_000,
        'the emitter acking the stream',
      );
      const resume = await load.pause();
      epochs.push(await recreate(durable, old));
      resume();
      const next = current();
      // the new stream's first messages out, the emitter's old acks and batches still in flight
      await until(() => next.published.size >= 100, 10_000, 'publishing to the new stream');
      proc.kill('SIGTERM');
      const code = await proc.exited;
      await until(() => next.published.size >= 2000, 20_000, 'publishing to the new stream');
      await load.stop();
      proc = spawnEmitter(env);
      emitter = proc;
      await proc.ready;
      const keys = [...next.published.values()];
      await until(() => keys.every((k) => got.has(k)), 40_000, 'the new stream delivered').catch(
        () => undefined,
      );
      const lost = keys.filter((k) => !got.has(k));
      const { stale, ackedLost, perEpoch } = judge(epochs, acks, got);
      console.log(
        `[ack-gate SIGTERM] exit ${code}; epochs: ${perEpoch.join(' | ')}; acks ${acks.length}, reaching a later stream ${stale.length}; ` +
          `acknowledged and lost ${ackedLost.length}; new stream lost ${lost.length}/${keys.length}`,
      );
      expect(code).toBe(0);
      expect(ackedLost).toEqual([]);
      expect(lost).toEqual([]);
      expect(await proc.stop()).toBe(0);
    } finally {
      await load.stop();
      await pubNc.close();
      proc.kill('SIGKILL');
      await spool.remove();
    }
  }, 120_000);

  it('nats-server restarted (same store) while intake is paused on a full spool: all delivered once the sink is back, no stall', async () => {
    const durable = 'gate3';
    const spool = await tempDir('ack-gate-restart');
    sink.clear();
    const env = {
      ...envFor(spool.path, durable),
      TRANSMITTER_COMPRESSION: 'none',
      TRANSMITTER_SPOOL_MAX_BYTES: String(1024 * 1024),
    };
    await sink.down();
    const proc = spawnEmitter(env);
    emitter = proc;
    await proc.ready;
    const pubNc = await connect({ servers: nats.url });
    const keys: string[] = [];
    try {
      const js = jetstream(pubNc);
      const enc = new TextEncoder();
      for (let i = 0; i < 9000; i += 500) {
        await Promise.all(
          Array.from({ length: 500 }, (_, j) => {
            const id = `r${i + j}`;
            keys.push(`v:${id}`);
            return js.publish(
              'approved.finding',
              enc.encode(JSON.stringify({ id, severity: 'low', note: 'y'.repeat(150) })),
            );
          }),
        );
      }
      await until(
        () => proc.output().includes('"reason":"spool_full","msg":"intake paused"'),
        30_000,
        'intake paused on a full spool',
      );
      // the handler holds a message; more wait in the pull session; the server goes away and back
      await nats.restart();
      // past the pulls' life and a heartbeat check, with the handler still held
      await until(() => /NATS reconnect/.test(proc.output()), 20_000, 'the emitter reconnected');
      await new Promise((r) => setTimeout(r, 6_000));
      await sink.up();
      const upAt = Date.now();
      const got = deliveries();
      await until(() => keys.every((k) => got.has(k)), 60_000, 'all delivered').catch(() => undefined);
      const lost = keys.filter((k) => !got.has(k));
      const times = [upAt, ...sink.requests.map((r) => r.receivedAt).filter((t) => t >= upAt)];
      let maxGap = 0;
      for (let i = 1; i < times.length; i++)
        maxGap = Math.max(maxGap, (times[i] as number) - (times[i - 1] as number));
      const state = await consumerInfo(durable);
      console.log(
        `[ack-gate restart] delivered ${keys.length - lost.length}/${keys.length} in ${Date.now() - upAt} ms after the sink came back; ` +
          `longest wait between sink requests ${maxGap} ms; consumer ${JSON.stringify(state)}`,
      );
      expect(lost).toEqual([]);
      expect(maxGap).toBeLessThan(10_000);
      await until(async () => (await consumerInfo(durable))?.unacked === 0, 15_000, 'every message acked');
      expect(await proc.stop()).toBe(0);
    } finally {
      await pubNc.close();
      proc.kill('SIGKILL');
      await sink.up().catch(() => undefined);
      await spool.remove();
    }
  }, 150_000);

  it("nats-server's store rolled back to an earlier copy under the running emitter (same stream, its sequences reused): nothing published after lost", async () => {
    const durable = 'gate4';
    const spool = await tempDir('ack-gate-rollback');
    sink.clear();
    const proc = spawnEmitter(envFor(spool.path, durable));
    emitter = proc;
    await proc.ready;
    const pubNc = await connect({ servers: nats.url });
    const got = deliveries();
    const publish = async (prefix: string, n: number): Promise<string[]> => {
      const js = jetstream(pubNc, { timeout: 5000 });
      const enc = new TextEncoder();
      const keys = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
      for (;;) {
        try {
          await (await jetstreamManager(pubNc, { timeout: 2000 })).streams.info(STREAM);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await Promise.all(
        keys.map((id) =>
          js.publish('approved.finding', enc.encode(JSON.stringify({ id, severity: 'low', note: 'z' }))),
        ),
      );
      return keys.map((id) => `v:${id}`);
    };
    const settled = async (keys: string[], what: string) => {
      await until(() => keys.every((k) => got.has(k)), 30_000, what);
      await until(async () => (await consumerInfo(durable))?.unacked === 0, 15_000, `${what}: acked`);
    };
    const backup = `${nats.storeDir}.backup`;
    try {
      await settled(await publish('before', 500), 'the first messages');
      // a copy of the server's store (a volume snapshot), taken with the server stopped
      await nats.stop();
      await cp(nats.storeDir, backup, { recursive: true });
      await nats.restart();
      await settled(await publish('lost-in-rollback', 500), 'the messages after the copy');
      // the store rolled back to the copy: the same stream (its creation time too), 500 sequences back
      await nats.stop();
      await rm(nats.storeDir, { recursive: true, force: true });
      await rename(backup, nats.storeDir);
      await nats.restart();
      const after = await publish('after', 500);
      await until(() => after.every((k) => got.has(k)), 20_000, 'the messages after the rollback').catch(
        () => undefined,
      );
      const lost = after.filter((k) => !got.has(k));
      console.log(`[ack-gate rollback] published after the rollback ${after.length}, lost ${lost.length}`);
      expect(lost).toEqual([]);
      expect(await proc.stop()).toBe(0);
    } finally {
      await pubNc.close();
      proc.kill('SIGKILL');
      await rm(backup, { recursive: true, force: true });
      await spool.remove();
    }
  }, 120_000);
});
