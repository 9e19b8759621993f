/** Part 7, the scale-out: its own 3-node cluster and R3 stream, runs of 1, 2, 3 processes and a kill. */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startNatsCluster } from '../../harness/nats.js';
import { ensureReplicatedStream, replicaSet, type ReplicaSet } from '../../harness/replicated.js';
import { fmt, say } from './context.js';
import { prepublish } from './nats-load.js';
import { scaleRun, type ScaleEnv, type ScaleRun } from './scale-run.js';
import { S } from './settings.js';
import type { Sink } from './sink-client.js';

export interface ScaleTopology {
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

export interface ScaleResult {
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
export async function scaleOut(
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
