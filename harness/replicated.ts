import { jetstreamManager, StorageType, type ClusterInfo } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

/**
 * Replicated JetStream assets on a {@link startNatsCluster} cluster: right after the nodes are
 * ready the JetStream meta leader is not elected yet, so creating a stream fails or times out for a
 * moment; these helpers retry until the asset's RAFT group has a leader and current followers.
 */

/** a clustered stream's or consumer's RAFT group */
export interface ReplicaSet {
  /** server name of the leader ('' while there is none) */
  leader: string;
  /** server names of the followers */
  replicas: string[];
  /** how many followers are current (caught up with the leader) */
  current: number;
}

export function replicaSet(c: ClusterInfo | undefined): ReplicaSet {
  const replicas = c?.replicas ?? [];
  return {
    leader: c?.leader ?? '',
    replicas: replicas.map((r) => r.name),
    current: replicas.filter((r) => r.current).length,
  };
}

/** leader + followers: the replicas that hold the data */
export const copies = (r: ReplicaSet): number => (r.leader ? 1 : 0) + r.replicas.length;

/**
 * Retries `probe` (which creates the asset if need be and returns its cluster info) until the asset
 * has a leader and `replicas - 1` current followers.
 */
export async function untilReplicated(
  what: string,
  replicas: number,
  probe: () => Promise<ClusterInfo | undefined>,
  timeoutS = 30,
): Promise<ReplicaSet> {
  const deadline = Date.now() + timeoutS * 1000;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const set = replicaSet(await probe());
      last = `leader ${set.leader || 'none'}, ${set.current} of ${set.replicas.length} followers current`;
      if (set.leader && set.current === replicas - 1) return set;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} (R${replicas}) not ready within ${timeoutS} s: ${last}`);
}

/** A file stream with `replicas` replicas, once it has a leader and current followers. */
export function ensureReplicatedStream(
  nc: NatsConnection,
  name: string,
  subjects: string[],
  replicas: number,
): Promise<ReplicaSet> {
  return untilReplicated(`stream ${name}`, replicas, async () => {
    const jsm = await jetstreamManager(nc, { timeout: 3000 });
    await jsm.streams.add({ name, subjects, storage: StorageType.File, num_replicas: replicas });
    return (await jsm.streams.info(name)).cluster;
  });
}
