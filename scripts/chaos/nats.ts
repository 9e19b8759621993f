import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startNats, startNatsCluster } from '../../harness/nats.js';
import { ensureReplicatedStream } from '../../harness/replicated.js';
import { sampleMessages } from '../../harness/workload.js';
import {
  chaosEnv,
  consumerState,
  drained,
  eventually,
  getJson,
  logMessages,
  Publisher,
  resultFrom,
  sleep,
  startChaosSink,
  startEmitter,
  tally,
  tempDir,
  toRaw,
  type ChaosSink,
  type ScenarioResult,
} from './common.js';

/**
 * Scenario 2: the broker goes away under load.
 * 2a: a single nats-server is stopped (SIGTERM, or SIGKILL in the full run) mid-stream and
 *     restarted on the same port and store; publishing goes on (the publisher retries).
 * 2b: a 3-node cluster on loopback, stream APPROVED with 3 replicas (created here, before the
 *     emitter starts), TRANSMITTER_NATS_URL listing all three; the stream leader is killed with
 *     SIGKILL mid-stream and stays down.
 */

interface Run {
  proc: ReturnType<typeof startEmitter>;
  pub: Publisher;
  sink: ChaosSink;
  started: number;
  notes: string[];
  failures: string[];
}

/** Stop the emitter, then count what the sink holds against what was published. */
async function finish(name: string, r: Run): Promise<ScenarioResult> {
  const { proc, pub, notes, failures } = r;
  await sleep(300);
  const code = await proc.stop();
  if (code !== 0) failures.push(`emitter exited ${code} on SIGTERM`);
  const errors = logMessages(proc.logs());
  if (errors.length > 0) notes.push(`logged errors: ${[...new Set(errors)].slice(0, 3).join('; ')}`);
  if (pub.failed.size > 0) notes.push(`${pub.failed.size} publishes never acknowledged (not counted)`);
  notes.push(`publisher retried ${pub.retries} publishes`);
  const t = tally(pub.published, r.sink.stored);
  if (t.duplicates > 0)
    notes.push(`duplicates: ${t.dupSameKey} same idempotency-key, ${t.dupDiffKey} in two batches`);
  return resultFrom(name, t, r.started, notes, failures);
}

export interface NatsRestartParams {
  messages: number;
  ratePerS: number;
  /** outages, alternately SIGTERM and SIGKILL of the server */
  outages: number;
  /** how long the server stays down */
  downMs: number;
  drainTimeoutMs: number;
}

interface ReadyBody {
  failing?: string[];
}

export async function natsRestartScenario(p: NatsRestartParams): Promise<ScenarioResult> {
  const started = Date.now();
  const [nats, sink, spool] = await Promise.all([startNats(), startChaosSink(), tempDir('nats')]);
  const notes: string[] = [];
  const failures: string[] = [];
  const proc = startEmitter(chaosEnv({ natsUrl: nats.url, sinkUrl: sink.url, spoolDir: spool.path }));
  let pub: Publisher | undefined;
  try {
    const http = await proc.running;
    pub = await Publisher.connect([nats.url]);
    const publishing = pub.publish(toRaw(sampleMessages(p.messages, 'natsrestart')), {
      window: 100,
      ratePerS: p.ratePerS,
      deadlineMs: 120_000,
    });
    const spacing = ((p.messages / p.ratePerS) * 1000) / (p.outages + 1);
    for (let i = 0; i < p.outages; i++) {
      await sleep(spacing * 0.7);
      const kill = i % 2 === 1;
      if (kill) await nats.kill();
      else await nats.stop();
      const sawDown = await eventually(async () => {
        const r = await getJson(`${http}/ready`).catch(() => undefined);
        const failing = (r?.body as ReadyBody | undefined)?.failing ?? [];
        return r?.status === 503 && failing.includes('nats_connected');
      }, p.downMs + 2000);
      await sleep(Math.max(0, p.downMs));
      await nats.restart();
      notes.push(
        `outage ${i + 1}: ${kill ? 'SIGKILL' : 'SIGTERM'}, ~${p.downMs} ms down, /ready ${sawDown ? 'said nats_connected failing' : 'never showed the outage'}`,
      );
      if (!sawDown) failures.push(`outage ${i + 1}: /ready did not report nats_connected failing`);
      const back = await eventually(
        async () => (await getJson(`${http}/ready`).catch(() => undefined))?.status === 200,
        20_000,
      );
      if (!back) failures.push(`outage ${i + 1}: /ready not 200 within 20 s after the restart`);
    }
    await publishing;
    const ok = await drained(pub.published, sink, p.drainTimeoutMs);
    if (!ok) {
      failures.push(`not everything delivered within ${p.drainTimeoutMs} ms`);
      const nc = await connect({ servers: nats.url });
      const st = await consumerState(nc, 'APPROVED', 'chaos');
      notes.push(`consumer at the deadline: ${JSON.stringify(st)}`);
      await nc.close();
    }
    const name = `2a nats restart x${p.outages}`;
    return await finish(name, { proc, pub, sink, started, notes, failures });
  } finally {
    proc.kill('SIGKILL');
    await pub?.close();
    await Promise.all([nats.stop(), sink.close()]);
    await spool.remove();
  }
}

export interface NatsClusterParams {
  messages: number;
  ratePerS: number;
  drainTimeoutMs: number;
}

export async function natsClusterScenario(p: NatsClusterParams): Promise<ScenarioResult> {
  const started = Date.now();
  const [cluster, sink, spool] = await Promise.all([
    startNatsCluster(3, { name: 'chaos' }),
    startChaosSink(),
    tempDir('cluster'),
  ]);
  const urls = cluster.nodes.map((n) => n.url);
  const notes: string[] = [];
  const failures: string[] = [];
  let pub: Publisher | undefined;
  let proc: ReturnType<typeof startEmitter> | undefined;
  const admin = await connect({ servers: urls, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  try {
    // the meta leader is elected a moment after the nodes are up: retried until the stream has one
    const { leader } = await ensureReplicatedStream(admin, 'APPROVED', ['approved.>'], 3);
    proc = startEmitter(chaosEnv({ natsUrl: cluster.urls, sinkUrl: sink.url, spoolDir: spool.path }));
    await proc.running;
    const consumer = await (
      await jetstreamManager(admin, { timeout: 3000 })
    ).consumers
      .info('APPROVED', 'chaos')
      .catch(() => undefined);
    notes.push(
      `consumer replicas ${(consumer?.cluster?.replicas?.length ?? 0) + (consumer?.cluster?.leader ? 1 : 0)}`,
    );
    pub = await Publisher.connect(urls);
    const publishing = pub.publish(toRaw(sampleMessages(p.messages, 'cluster')), {
      window: 100,
      ratePerS: p.ratePerS,
      deadlineMs: 120_000,
    });
    await sleep(((p.messages / p.ratePerS) * 1000) / 3);
    const victim = cluster.node(leader) ?? cluster.nodes[0];
    await victim?.kill();
    notes.push(`R3 stream; killed the stream leader ${leader} (SIGKILL) mid-stream, left down`);
    await publishing;
    const ok = await drained(pub.published, sink, p.drainTimeoutMs);
    if (!ok) {
      failures.push(`not everything delivered within ${p.drainTimeoutMs} ms`);
      const st = await consumerState(admin, 'APPROVED', 'chaos');
      notes.push(`consumer at the deadline: ${JSON.stringify(st)}`);
    }
    const jsm = await jetstreamManager(admin, { timeout: 3000 }).catch(() => undefined);
    const after = await jsm?.streams.info('APPROVED').catch(() => undefined);
    if (after) notes.push(`new stream leader ${after.cluster?.leader ?? '?'}`);
    return await finish('2b nats cluster, node killed', { proc, pub, sink, started, notes, failures });
  } finally {
    proc?.kill('SIGKILL');
    await pub?.close();
    await admin.close().catch(() => undefined);
    await Promise.all([cluster.kill(), sink.close()]);
    await spool.remove();
  }
}
