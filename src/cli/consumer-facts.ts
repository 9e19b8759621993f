import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { loadConfig, type NatsConfig } from '../config/index.js';
import { natsConnectionOptions } from '../ingress/nats-connect.js';
import type { ConsumerFacts } from '../observe/trace/story.js';

/**
 * The durable consumer's counts for a trace of a stopped emitter: asked of NATS with the
 * service's own settings (the whole TRANSMITTER_* configuration it runs with). Without a usable
 * configuration, with TRANSMITTER_NATS_URL=none, or when NATS does not answer, there are none.
 */

const CONNECT_TIMEOUT_MS = 3000;

export function consumerFactsFromEnv(
  env: NodeJS.ProcessEnv,
): (() => Promise<ConsumerFacts | undefined>) | undefined {
  let nats: NatsConfig | undefined;
  try {
    nats = loadConfig(env).nats;
  } catch {
    return undefined;
  }
  return nats && (() => askConsumer(nats));
}

async function askConsumer(config: NatsConfig): Promise<ConsumerFacts | undefined> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      ...(await natsConnectionOptions(config, 'batch-emitter-trace')),
      timeout: CONNECT_TIMEOUT_MS,
      reconnect: false,
    });
  } catch {
    return undefined;
  }
  try {
    const info = await (await jetstreamManager(nc)).consumers.info(config.stream, config.durable);
    return {
      pending: info.num_pending,
      ackPending: info.num_ack_pending,
      ackFloor: info.ack_floor.stream_seq,
    };
  } catch {
    return undefined;
  } finally {
    await nc.close().catch(() => undefined);
  }
}
